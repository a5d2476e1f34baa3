/**
 * @module tensor/ops/add
 * Residual add: out = a + b (same shapes). Backward passes dy to both inputs unchanged.
 */
import { Tensor } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

export function add(a: Tensor, b: Tensor): Tensor {
  const be = check.backend('add', ['a', a], ['b', b]);
  check.dtype('add', 'a', a, 'float32');
  check.dtype('add', 'b', b, 'float32');
  check.sameShape('add', ['a', a], ['b', b]);
  const out = Tensor.empty(a.shape, 'float32', false, be);
  be.addForward(out.deviceBuffer, a.deviceBuffer, b.deviceBuffer, a.size);
  if (!needsGrad(a, b)) return out;
  return record('add', [a, b], out, (dy) => [dy, dy]);
}
