/**
 * @module tensor/ops/rope
 * Rotary position embedding, rotate-half convention (HF apply_rotary_pos_emb):
 * y = x·cos + rotate_half(x)·sin with rotate_half(x) = cat(−x₂, x₁), angles pos·inv_freq where
 * inv_freq[i] = 1 / theta^(2i/D) computed in float32 as HF's default rope init. Positions are int32
 * per token (left padding: position_ids = max(cumsum(mask) − 1, 0)); the native kernel rejects
 * negative ones. Backward rotates dy by −angle. Native kernels: native/cpu/rope.cc.
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

/** x [B, T, H, D] float32 (D even), positions int32 [B, T] → y [B, T, H, D]. */
export function rope(x: Tensor, positions: Tensor, theta: number): Tensor {
  const name = 'rope';
  const be = check.backend(name, ['x', x], ['positions', positions]);
  check.dtype(name, 'x', x, 'float32');
  check.dtype(name, 'positions', positions, 'int32');
  check.rank(name, 'x', x, 4);
  check.rank(name, 'positions', positions, 2);
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (positions.shape[0] !== B || positions.shape[1] !== T) {
    check.fail(
      name,
      `x ${shapeStr(x.shape)} vs positions ${shapeStr(positions.shape)}: expected positions [${B},${T}]`,
    );
  }
  if (D % 2 !== 0) check.fail(name, `x ${shapeStr(x.shape)}: head dim ${D} must be even`);
  if (!(Number.isFinite(theta) && theta > 0)) check.fail(name, `theta must be a finite number > 0, got ${theta}`);
  const y = Tensor.empty(x.shape, 'float32', false, be);
  be.ropeForward(y.deviceBuffer, x.deviceBuffer, positions.deviceBuffer, B, T, H, D, theta);
  if (!needsGrad(x)) return y;
  return record(name, [x], y, (dy) => {
    check.live(`${name} backward`, ['positions', positions]);
    const dx = Tensor.empty(x.shape, 'float32', false, be);
    be.ropeBackward(dx.deviceBuffer, dy.deviceBuffer, positions.deviceBuffer, B, T, H, D, theta);
    return [dx];
  });
}
