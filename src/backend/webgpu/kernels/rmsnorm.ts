/**
 * @module backend/webgpu/kernels/rmsnorm
 * RMSNorm over rows x [N, C] with weight w [C]: y = w ⊙ x · rstd, rstd = 1/√(mean(x²) + eps).
 * Forward saves rstd [N] for backward. One workgroup (256) per row (wgsl.ts rows(N)); row sums are fixed-order
 * reductions (wgsl.ts REDUCE: a tree in workgroup memory, or subgroups first where the device has
 * them), so results do not depend on scheduling. dw is one invocation per column summing
 * rows in order. Gradients are written with "=".
 */
import { ENTRY_1D, INDEX, REDUCE, ROW_ENTRY, bindings } from '../wgsl.ts';

export const rmsnormForward =
  () => `${bindings('N: u32, C: u32, eps: f32', 2, ['y', 'f32'], ['rstd', 'f32'], ['x', 'f32'], ['w', 'f32'])}
${REDUCE}
${ROW_ENTRY} {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.N) { return; }
  let t = lid.x;
  let base = r * p.C;
  var ss = 0.0;
  for (var c = t; c < p.C; c += 256u) { let v = x[base + c]; ss = fma(v, v, ss); }
  let rs = 1.0 / sqrt(wg_sum(ss, t) / f32(p.C) + p.eps);
  for (var c = t; c < p.C; c += 256u) { y[base + c] = w[c] * (x[base + c] * rs); }
  if (t == 0u) { rstd[r] = rs; }
}`;

/** dx = rstd · (w ⊙ dy − x̂ · Σ(w ⊙ dy ⊙ x̂)/C), x̂ = x · rstd */
export const rmsnormBackwardDx = () => `${bindings(
  'N: u32, C: u32',
  1,
  ['dx', 'f32'],
  ['dy', 'f32'],
  ['x', 'f32'],
  ['w', 'f32'],
  ['rstd', 'f32'],
)}
${REDUCE}
${ROW_ENTRY} {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.N) { return; }
  let t = lid.x;
  let base = r * p.C;
  let rs = rstd[r];
  var d = 0.0;
  for (var c = t; c < p.C; c += 256u) { d = fma(w[c] * dy[base + c], x[base + c] * rs, d); }
  let dot = wg_sum(d, t) / f32(p.C);
  for (var c = t; c < p.C; c += 256u) {
    let xh = x[base + c] * rs;
    dx[base + c] = rs * (w[c] * dy[base + c] - xh * dot);
  }
}`;

/** dw[c] = Σ_r dy[r, c] · x[r, c] · rstd[r] (acc 1: added to dw's value, for the rows of a later piece) */
export const rmsnormBackwardDw =
  () => `${bindings('N: u32, C: u32, acc: u32', 1, ['dw', 'f32'], ['dy', 'f32'], ['x', 'f32'], ['rstd', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.C) { return; }
  var s = select(0.0, dw[i], p.acc == 1u);
  for (var r = 0u; r < p.N; r++) { s = fma(dy[r * p.C + i], x[r * p.C + i] * rstd[r], s); }
  dw[i] = s;
}`;
