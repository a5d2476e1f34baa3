/**
 * @module tensor/ops/rmsnorm
 * RMSNorm as Hugging Face Qwen2RMSNorm / LlamaRMSNorm: y = w * (x * rsqrt(mean(x²) + eps)) over the
 * last dim (mean accumulated in double, result float32). Also Qwen3's per-head q_norm / k_norm
 * (x [B,T,H,D], w [D]). Native kernels: native/cpu/rmsnorm.cc (forward saves rstd per row).
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

/** x [..., C] float32, weight [C] float32 → y [..., C]. */
export function rmsnorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const name = 'rmsnorm';
  const be = check.backend(name, ['x', x], ['weight', weight]);
  check.dtype(name, 'x', x, 'float32');
  check.dtype(name, 'weight', weight, 'float32');
  check.rank(name, 'weight', weight, 1);
  if (x.shape.length < 1) check.fail(name, `x ${shapeStr(x.shape)} must have rank ≥ 1`);
  const C = weight.shape[0]!;
  if (x.shape[x.shape.length - 1] !== C) {
    check.fail(
      name,
      `x ${shapeStr(x.shape)} vs weight ${shapeStr(weight.shape)}${weight.name ? ` (${weight.name})` : ''}: last dims differ`,
    );
  }
  if (!(Number.isFinite(eps) && eps >= 0)) check.fail(name, `eps must be a finite number ≥ 0, got ${eps}`);
  const N = x.size / C;
  const y = Tensor.empty(x.shape, 'float32', false, be);
  const rstd = Tensor.empty([N], 'float32', false, be); // saved for backward: rsqrt(mean(x²) + eps) per row
  be.rmsnormForward(y.deviceBuffer, rstd.deviceBuffer, x.deviceBuffer, weight.deviceBuffer, N, C, eps);
  if (!needsGrad(x, weight)) {
    rstd.dispose();
    return y;
  }
  return record(name, [x, weight], y, (dy) => {
    check.live(`${name} backward`, ['x', x], ['weight', weight], ['rstd', rstd]);
    const dx = x.requiresGrad ? Tensor.empty(x.shape, 'float32', false, be) : null;
    const dw = weight.requiresGrad ? Tensor.empty(weight.shape, 'float32', false, be) : null;
    be.rmsnormBackward(
      dx ? dx.deviceBuffer : null,
      dw ? dw.deviceBuffer : null,
      dy.deviceBuffer,
      x.deviceBuffer,
      weight.deviceBuffer,
      rstd.deviceBuffer,
      N,
      C,
    );
    return [dx, dw];
  });
}
