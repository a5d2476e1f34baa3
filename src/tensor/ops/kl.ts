/**
 * @module tensor/ops/kl
 * What TRPO's trust region needs from a softmax policy (native/cpu/kl.cc), without gradient:
 *
 *   klDivergence(p [N,V], q [N,V], τ) -> [N]   KL(softmax(p/τ) ‖ softmax(q/τ)) per row
 *   klHvp(z [N,V], u [N,V], τ)       -> [N,V]  (diag(p) − p pᵀ) u per row, p = softmax(z/τ)
 *
 * klHvp is the Hessian of KL(p_old ‖ softmax(z/τ)) in z/τ at the old logits: the Fisher of a
 * categorical distribution in its natural parameters. With J = ∂(logits/τ)/∂θ the Fisher of the
 * mean token KL is (1/N) Σ Jᵀ (diag(p) − p pᵀ) J, the Gauss–Newton form src/rl/update.ts uses.
 * Both take explicit logits (a few hundred sampled tokens at a time, so [N, V] is small).
 */
import { Tensor, shapeStr } from '../tensor.ts';
import * as check from '../check.ts';

function dims(name: string, a: [string, Tensor], b: [string, Tensor], temperature: number): [number, number] {
  for (const [n, t] of [a, b]) {
    check.dtype(name, n, t, 'float32');
    check.rank(name, n, t, 2);
  }
  check.sameShape(name, a, b);
  if (!(temperature > 0) || !Number.isFinite(temperature))
    check.fail(name, `temperature must be a positive finite number, got ${temperature}`);
  const [N, V] = a[1].shape as [number, number];
  if (V === 0) check.fail(name, `${a[0]} ${shapeStr(a[1].shape)} has an empty vocabulary`);
  return [N, V];
}

/** KL(softmax(p/τ) ‖ softmax(q/τ)) per row of two logit matrices [N, V] → [N] (no gradient). */
export function klDivergence(p: Tensor, q: Tensor, temperature = 1): Tensor {
  const name = 'klDivergence';
  const be = check.backend(name, ['p', p], ['q', q]);
  const [N, V] = dims(name, ['p', p], ['q', q], temperature);
  const out = Tensor.empty([N], 'float32', false, be);
  be.klForward(out.deviceBuffer, p.deviceBuffer, q.deviceBuffer, N, V, temperature);
  return out;
}

/** (diag(p) − p pᵀ) u per row, p = softmax(logits/τ); logits, u [N, V] → [N, V] (no gradient). */
export function klHvp(logits: Tensor, u: Tensor, temperature = 1): Tensor {
  const name = 'klHvp';
  const be = check.backend(name, ['logits', logits], ['u', u]);
  const [N, V] = dims(name, ['logits', logits], ['u', u], temperature);
  const out = Tensor.empty([N, V], 'float32', false, be);
  be.klHvp(out.deviceBuffer, logits.deviceBuffer, u.deviceBuffer, N, V, temperature);
  return out;
}
