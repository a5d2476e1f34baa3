/**
 * @module backend/webgpu/kernels/softmax
 * Row softmax family over the vocabulary (native/cpu/logprobs.cc and kl.cc give the maths):
 * chunked log-softmax + gather (lp, lse, entropy) and its two backwards, the KL of two softmaxes and
 * the softmax Fisher-vector product. Legend: `rows` logit rows in this chunk (row r is token
 * rowOff + r), V vocabulary, z = logits / temperature.
 * Forward kernels: one workgroup per row, max then Σ e^{z−m} (and Σ e^{z−m}(z−m)) as fixed-order
 * reductions (wgsl.ts REDUCE: a tree in workgroup memory, or subgroups first where the device has
 * them), in f32 (native/cpu sums 512-element blocks in f32 and combines them in double).
 * Backward kernels: one invocation per logit, "="; `inplace` variants read the logits from the
 * gradient buffer itself (the chunked op overwrites each logits chunk with its gradient).
 */
import { ENTRY_1D, INDEX, REDUCE, ROW_ENTRY, bindings } from '../wgsl.ts';

const ROW = `let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let t = lid.x;
  let base = r * p.V;`;

/** lse[n], lp[n] (target < 0: 0), entropy[n]; `which` bit 0: lp, bit 1: entropy. */
export const logprobsForward = () => `${bindings(
  'rows: u32, V: u32, invT: f32, rowOff: u32, which: u32',
  3,
  ['lp', 'f32'],
  ['lse', 'f32'],
  ['ent', 'f32'],
  ['x', 'f32'],
  ['tg', 'i32'],
)}
${REDUCE}
${ROW_ENTRY} {
  ${ROW}
  var mx = -3.4028234663852886e38; // −FLT_MAX
  for (var v = t; v < p.V; v += 256u) { mx = max(mx, x[base + v]); }
  let m = wg_max(mx, t) * p.invT;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var v = t; v < p.V; v += 256u) {
    let zm = x[base + v] * p.invT - m;
    let e = exp(zm);
    s1 += e;
    if (e != 0.0) { s2 += e * zm; }
  }
  let S1 = wg_sum(s1, t);
  let S2 = wg_sum(s2, t);
  if (t != 0u) { return; }
  let n = p.rowOff + r;
  let logS = log(S1);
  lse[n] = m + logS;
  if ((p.which & 2u) != 0u) { ent[n] = logS - S2 / S1; }
  if ((p.which & 1u) != 0u) {
    let tt = tg[n];
    if (tt < 0) { lp[n] = 0.0; } else { lp[n] = (x[base + u32(tt)] * p.invT - m) - logS; }
  }
}`;

/** dlogits = dlp (onehot(target) − softmax(z)) / τ (rows with target < 0: 0). */
export const logprobsBackward = (inplace: boolean) => () => `${bindings(
  'rows: u32, V: u32, invT: f32, rowOff: u32',
  1,
  ['dx', 'f32'],
  ...((inplace ? [] : [['x', 'f32']]) as [string, string][]),
  ['dlp', 'f32'],
  ['lse', 'f32'],
  ['tg', 'i32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.rows * p.V) { return; }
  let r = i / p.V;
  let v = i % p.V;
  let n = p.rowOff + r;
  let tt = tg[n];
  if (tt < 0) { dx[i] = 0.0; return; }
  let g = dlp[n] * p.invT;
  var d = -g * exp(${inplace ? 'dx' : 'x'}[i] * p.invT - lse[n]);
  if (u32(tt) == v) { d += g; }
  dx[i] = d;
}`;

/** dlogits = dH (−p (log p + H)) / τ */
export const logprobsEntropyBackward = (inplace: boolean) => () => `${bindings(
  'rows: u32, V: u32, invT: f32, rowOff: u32',
  1,
  ['dx', 'f32'],
  ...((inplace ? [] : [['x', 'f32']]) as [string, string][]),
  ['dH', 'f32'],
  ['lse', 'f32'],
  ['ent', 'f32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.rows * p.V) { return; }
  let n = p.rowOff + i / p.V;
  let g = dH[n] * p.invT;
  let lp = ${inplace ? 'dx' : 'x'}[i] * p.invT - lse[n];
  let pr = exp(lp);
  dx[i] = select(-g * pr * (lp + ent[n]), 0.0, pr == 0.0);
}`;

/** log Σ exp(x/τ) of row `base` (all invocations of the workgroup get it). */
const ROW_LSE = `fn row_lse(which: u32, base: u32, t: u32) -> f32 {
  var mx = -3.4028234663852886e38; // −FLT_MAX
  for (var v = t; v < p.V; v += 256u) { mx = max(mx, at(which, base + v)); }
  let m = wg_max(mx, t) * p.invT;
  var s = 0.0;
  for (var v = t; v < p.V; v += 256u) { s += exp(at(which, base + v) * p.invT - m); }
  return m + log(wg_sum(s, t));
}`;

/** out[n] = KL(softmax(a/τ) ‖ softmax(b/τ)), clamped at 0. */
export const klForward =
  () => `${bindings('rows: u32, V: u32, invT: f32', 1, ['out', 'f32'], ['a', 'f32'], ['b', 'f32'])}
${REDUCE}
fn at(which: u32, e: u32) -> f32 { if (which == 0u) { return a[e]; } return b[e]; }
${ROW_LSE}
${ROW_ENTRY} {
  ${ROW}
  let la = row_lse(0u, base, t);
  let lb = row_lse(1u, base, t);
  var s = 0.0;
  for (var v = t; v < p.V; v += 256u) {
    let lpa = a[base + v] * p.invT - la;
    let lpb = b[base + v] * p.invT - lb;
    s += exp(lpa) * (lpa - lpb);
  }
  let kl = wg_sum(s, t);
  if (t == 0u) { out[r] = max(kl, 0.0); }
}`;

/** out[n, :] = p ⊙ (u − pᵀu), p = softmax(logits/τ); `inplace`: u is read from out. */
export const klHvp = (inplace: boolean) => () => `${bindings(
  'rows: u32, V: u32, invT: f32',
  1,
  ['out', 'f32'],
  ['x', 'f32'],
  ...((inplace ? [] : [['u', 'f32']]) as [string, string][]),
)}
${REDUCE}
fn at(which: u32, e: u32) -> f32 { return x[e]; }
${ROW_LSE}
${ROW_ENTRY} {
  ${ROW}
  let l = row_lse(0u, base, t);
  var s = 0.0;
  for (var v = t; v < p.V; v += 256u) { s += exp(x[base + v] * p.invT - l) * ${inplace ? 'out' : 'u'}[base + v]; }
  let pu = wg_sum(s, t);
  for (var v = t; v < p.V; v += 256u) {
    let pr = exp(x[base + v] * p.invT - l);
    out[base + v] = pr * (${inplace ? 'out' : 'u'}[base + v] - pu);
  }
}`;
