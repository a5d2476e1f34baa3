/**
 * @module rl/algorithms/cg
 * Conjugate gradient for (A + λI) x = b with A symmetric positive semi-definite, given only the
 * product v ↦ A v (TRPO's Fisher-vector products; Schulman et al., arXiv 1502.05477 Appendix C,
 * and the `conjugate_gradient` of OpenAI baselines' trpo_mpi). Float64 host vectors, x₀ = 0.
 */

export interface CgResult {
  x: Float64Array;
  /** (A + λI) x, from the last iteration's products (no extra product). */
  Ax: Float64Array;
  /** Products of A computed. */
  iterations: number;
  /** ‖b − (A + λI) x‖² at the end. */
  residual: number;
}

/**
 * At most `iters` iterations, stopping early when the squared residual drops below
 * `tol` · ‖b‖² (or when a curvature pᵀAp ≤ 0 shows A is not positive definite along p).
 */
export function conjugateGradient(
  Av: (v: Float64Array) => Float64Array,
  b: Float64Array,
  o: { iters: number; damping: number; tol?: number },
): CgResult {
  const n = b.length;
  const x = new Float64Array(n);
  const Ax = new Float64Array(n);
  const r = Float64Array.from(b);
  const p = Float64Array.from(b);
  let rr = dot(r, r);
  const stop = (o.tol ?? 1e-10) * rr;
  let it = 0;
  while (it < o.iters && rr > stop) {
    const Ap = Av(p);
    for (let i = 0; i < n; i++) Ap[i]! += o.damping * p[i]!;
    it++;
    const pAp = dot(p, Ap);
    if (!(pAp > 0)) break;
    const alpha = rr / pAp;
    for (let i = 0; i < n; i++) {
      x[i]! += alpha * p[i]!;
      Ax[i]! += alpha * Ap[i]!;
      r[i]! -= alpha * Ap[i]!;
    }
    const rrNew = dot(r, r);
    const beta = rrNew / rr;
    rr = rrNew;
    for (let i = 0; i < n; i++) p[i] = r[i]! + beta * p[i]!;
  }
  return { x, Ax, iterations: it, residual: rr };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
