/**
 * @module backend/webgpu/kernels/paged
 * Paged KV cache for the rollout engine (native/cpu/paged.cc gives the layout): pools [S, Hkv, D]
 * with S = blocks · blockSize slots, slot = table[b, s / blockSize] · blockSize + s % blockSize;
 * row b has ctx[b] keys and its query i sits at position ctx[b] − Tq + i. The host checks slots,
 * ctx and table entries (their host copies) before a dispatch. paged_kv_write: one invocation per
 * element copied ("="). paged_attention_forward: one invocation per (b, i, h) query row, an online
 * softmax over its keys in 16-key chunks read straight from the pools, so a row's result does not
 * depend on the other rows of the call. Legend: B rows, Tq queries per row, H/Hkv heads, D head dim.
 */
import { ENTRY_1D, INDEX, bindings } from '../wgsl.ts';

/** Slots [s0, s0 + sn) of the pools, bound from slot s0 (+ res elements): tokens whose slot is outside are another window's. */
export const pagedKvWrite = () => `${bindings(
  'n: u32, row: u32, s0: u32, sn: u32, res: u32',
  2,
  ['kp', 'f32'],
  ['vp', 'f32'],
  ['k', 'f32'],
  ['v', 'f32'],
  ['slots', 'i32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n * p.row) { return; }
  let r = i / p.row;
  let slot = u32(slots[r]);
  if (slot < p.s0 || slot >= p.s0 + p.sn) { return; }
  let at = p.res + (slot - p.s0) * p.row + i % p.row;
  kp[at] = k[i];
  vp[at] = v[i];
}`;

const CH = 16;

export const pagedAttention = (DMAX: number) => () => `${bindings(
  'B: u32, Tq: u32, H: u32, Hkv: u32, D: u32, bs: u32, maxBlocks: u32, scale: f32',
  1,
  ['out', 'f32'],
  ['q', 'f32'],
  ['kp', 'f32'],
  ['vp', 'f32'],
  ['table', 'i32'],
  ['ctx', 'i32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.B * p.Tq * p.H) { return; }
  let D = p.D;
  let h = i % p.H;
  let bi = i / p.H;
  let b = bi / p.Tq;
  let qi = bi % p.Tq;
  let nk = u32(ctx[b]) - p.Tq + qi + 1u;
  let kh = h / (p.H / p.Hkv);
  let row = p.Hkv * D;
  var qv: array<f32, ${DMAX}>;
  var acc: array<f32, ${DMAX}>;
  for (var d = 0u; d < D; d++) { qv[d] = q[i * D + d]; acc[d] = 0.0; }
  var m = -3.4028234663852886e38;
  var l = 0.0;
  var sc: array<f32, ${CH}>;
  for (var s0 = 0u; s0 < nk; s0 += ${CH}u) {
    let n = min(${CH}u, nk - s0);
    var cm = -3.4028234663852886e38;
    for (var j = 0u; j < n; j++) {
      let s = s0 + j;
      let kb = (u32(table[b * p.maxBlocks + s / p.bs]) * p.bs + s % p.bs) * row + kh * D;
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot = fma(qv[d], kp[kb + d], dot); }
      sc[j] = dot * p.scale;
      cm = max(cm, sc[j]);
    }
    let mn = max(m, cm);
    let corr = exp(m - mn);
    l = l * corr;
    for (var d = 0u; d < D; d++) { acc[d] = acc[d] * corr; }
    for (var j = 0u; j < n; j++) {
      let s = s0 + j;
      let vb = (u32(table[b * p.maxBlocks + s / p.bs]) * p.bs + s % p.bs) * row + kh * D;
      let pj = exp(sc[j] - mn);
      l += pj;
      for (var d = 0u; d < D; d++) { acc[d] = fma(pj, vp[vb + d], acc[d]); }
    }
    m = mn;
  }
  let inv = 1.0 / l;
  for (var d = 0u; d < D; d++) { out[i * D + d] = acc[d] * inv; }
}`;
