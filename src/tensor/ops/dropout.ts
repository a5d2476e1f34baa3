/**
 * @module tensor/ops/dropout
 * Inverted dropout, seeded: out = mask ⊙ x / (1 − p) with the mask of element i a pure function
 * of (seed, i) (native/cpu/dropout.cc), so a run is reproducible, backward recomputes the mask
 * instead of storing it, and the same seed gives the same mask on any thread count. p = 0 (or
 * gradient recording off is the caller's business: LoRA applies it only in training) is the identity.
 */
import { Tensor } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

/** The largest seed the kernel takes exactly (seeds travel as JS numbers). */
export const MAX_DROPOUT_SEED = Number.MAX_SAFE_INTEGER;

export function checkDropout(name: string, p: number, seed: number): void {
  if (!(p >= 0 && p < 1)) check.fail(name, `dropout probability must be in [0, 1), got ${p}`);
  if (!Number.isSafeInteger(seed) || seed < 0)
    check.fail(name, `dropout seed must be an integer in [0, 2^53), got ${seed}`);
}

/** x float32 → dropout(x) (a new tensor; x itself when p = 0). */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  const name = 'dropout';
  const be = check.backend(name, ['x', x]);
  check.dtype(name, 'x', x, 'float32');
  checkDropout(name, p, seed);
  if (p === 0) return x;
  const out = Tensor.empty(x.shape, 'float32', false, be);
  be.dropoutForward(out.deviceBuffer, x.deviceBuffer, x.size, p, seed);
  if (!needsGrad(x)) return out;
  return record(name, [x], out, (dout) => {
    const dx = Tensor.empty(x.shape, 'float32', false, be);
    be.dropoutBackward(dx.deviceBuffer, dout.deviceBuffer, x.size, p, seed);
    return [dx];
  });
}
