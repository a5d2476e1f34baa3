/**
 * @module tensor/ops/reshape
 * reshape(x, shape): a view over the same storage (no copy); its backward views dy back to
 * x's shape. (Tensor.view() is the untracked variant.)
 */
import type { Tensor } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  check.live('reshape', ['x', x]);
  const y = x.view(shape);
  if (!needsGrad(x)) return y;
  return record('reshape', [x], y, (dy) => [dy.view(x.shape)]);
}
