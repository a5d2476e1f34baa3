/**
 * @module backend/webgpu/kernels/attention
 * Causal grouped-query attention with key padding, flash style (native/cpu/attention.cc states the
 * contract): scores are computed a tile of BK keys at a time with an online softmax, so no T×T
 * matrix exists. Legend: B batch, Tq query rows, Tk keys in use, Tkmax key rows allocated, H query
 * heads, Hkv kv heads (head h reads kv head h / (H/Hkv)), D head dim; q/out [B, Tq, H, D],
 * k/v [B, Tkmax, Hkv, D], mask int32 [B, Tkmax] (0 = padding), lse [B, H, Tq]. Query i sits at
 * position Tk − Tq + i and attends keys s ≤ its position with mask ≠ 0; a query with no such key
 * outputs 0 with lse = +inf (no gradient).
 * Forward: one invocation per query row, 64 rows of one (b, h) per workgroup sharing each K/V tile
 * in workgroup memory; saves lse = m + log l. Backward (Tq = Tk = Tkmax = T), "=" into dq, dk, dv,
 * deterministic without atomics, as on CPU: delta = rowsum(dout ⊙ out); one invocation per query row
 * owns its dq (loop over key tiles); one invocation per key row owns its dk, dv (loop over the
 * group's query heads and query tiles). Private rows hold DMAX floats, D rounded up to a multiple
 * of 32 (one pipeline per DMAX: lavapipe takes seconds to compile each).
 */
import { ENTRY_1D, INDEX, bindings } from '../wgsl.ts';

const BK = 16;

const NEG = '-3.4028234663852886e38';

export const attentionForward = (DMAX: number) => () => `${bindings(
  'Tq: u32, Tk: u32, Tkmax: u32, H: u32, Hkv: u32, scale: f32, hasMask: u32, hasLse: u32, inf: f32, D: u32',
  2,
  ['out', 'f32'],
  ['lse', 'f32'],
  ['q', 'f32'],
  ['k', 'f32'],
  ['v', 'f32'],
  ['mask', 'i32'],
)}
const BK = ${BK}u;
var<workgroup> Ks: array<f32, ${BK * DMAX}>;
var<workgroup> Vs: array<f32, ${BK * DMAX}>;
var<workgroup> Ms: array<u32, ${BK}>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let D = p.D;
  let b = wid.z;
  let h = wid.y;
  let i = wid.x * 64u + lid.x;
  let kvh = h / (p.H / p.Hkv);
  let qpos0 = p.Tk - p.Tq;
  let ii = min(i, p.Tq - 1u);
  let pos = qpos0 + ii;
  let qb = ((b * p.Tq + ii) * p.H + h) * D;
  var qv: array<f32, ${DMAX}>;
  var acc: array<f32, ${DMAX}>;
  for (var d = 0u; d < D; d++) { qv[d] = q[qb + d]; acc[d] = 0.0; }
  var m = ${NEG};
  var l = 0.0;
  let last = min(p.Tk, qpos0 + min(wid.x * 64u + 64u, p.Tq));
  for (var s0 = 0u; s0 < last; s0 += BK) {
    for (var e = lid.x; e < BK * D; e += 64u) {
      let s = s0 + e / D;
      var kx = 0.0;
      var vx = 0.0;
      if (s < p.Tk) {
        let at = ((b * p.Tkmax + s) * p.Hkv + kvh) * D + e % D;
        kx = k[at];
        vx = v[at];
      }
      Ks[e] = kx;
      Vs[e] = vx;
    }
    if (lid.x < BK) {
      let s = s0 + lid.x;
      var ok = s < p.Tk;
      if (ok && p.hasMask == 1u) { ok = mask[b * p.Tkmax + s] != 0; }
      Ms[lid.x] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    var sc: array<f32, ${BK}>;
    var tmax = ${NEG};
    var any = false;
    for (var j = 0u; j < BK; j++) {
      if (Ms[j] == 1u && s0 + j <= pos) {
        var dot = 0.0;
        for (var d = 0u; d < D; d++) { dot = fma(qv[d], Ks[j * D + d], dot); }
        sc[j] = dot * p.scale;
        tmax = max(tmax, sc[j]);
        any = true;
      } else {
        sc[j] = ${NEG};
      }
    }
    if (any) {
      let mn = max(m, tmax);
      let corr = exp(m - mn);
      l = l * corr;
      for (var d = 0u; d < D; d++) { acc[d] = acc[d] * corr; }
      m = mn;
      for (var j = 0u; j < BK; j++) {
        if (Ms[j] == 1u && s0 + j <= pos) {
          let pj = exp(sc[j] - m);
          l += pj;
          for (var d = 0u; d < D; d++) { acc[d] = fma(pj, Vs[j * D + d], acc[d]); }
        }
      }
    }
    workgroupBarrier();
  }
  if (i >= p.Tq) { return; }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < D; d++) { out[qb + d] = acc[d] * inv; }
  if (p.hasLse == 1u) { lse[(b * p.H + h) * p.Tq + i] = select(p.inf, m + log(l), l > 0.0); }
}`;

/** delta[b, h, i] = Σ_d dout · out (one invocation per query row; rows with lse = +inf give 0 later anyway). */
export const attentionDelta =
  () => `${bindings('B: u32, T: u32, H: u32, D: u32', 1, ['delta', 'f32'], ['dout', 'f32'], ['out', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.B * p.T * p.H) { return; }
  let h = i % p.H;
  let bt = i / p.H;
  let b = bt / p.T;
  let t = bt % p.T;
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s = fma(dout[i * p.D + d], out[i * p.D + d], s); }
  delta[(b * p.H + h) * p.T + t] = s;
}`;

/** dq for one query row: Σ over its keys of p (dout·v − delta) · scale · k. */
export const attentionBackwardDq = (DMAX: number) => () => `${bindings(
  'T: u32, H: u32, Hkv: u32, scale: f32, hasMask: u32, D: u32',
  1,
  ['dq', 'f32'],
  ['dout', 'f32'],
  ['q', 'f32'],
  ['k', 'f32'],
  ['v', 'f32'],
  ['lse', 'f32'],
  ['delta', 'f32'],
  ['mask', 'i32'],
)}
const BK = ${BK}u;
var<workgroup> Ks: array<f32, ${BK * DMAX}>;
var<workgroup> Vs: array<f32, ${BK * DMAX}>;
var<workgroup> Ms: array<u32, ${BK}>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let D = p.D;
  let b = wid.z;
  let h = wid.y;
  let i = wid.x * 64u + lid.x;
  let kvh = h / (p.H / p.Hkv);
  let ii = min(i, p.T - 1u);
  let qb = ((b * p.T + ii) * p.H + h) * D;
  var qv: array<f32, ${DMAX}>;
  var dov: array<f32, ${DMAX}>;
  var acc: array<f32, ${DMAX}>;
  for (var d = 0u; d < D; d++) { qv[d] = q[qb + d]; dov[d] = dout[qb + d]; acc[d] = 0.0; }
  let L = lse[(b * p.H + h) * p.T + ii];
  let dl = delta[(b * p.H + h) * p.T + ii];
  let last = min(p.T, wid.x * 64u + 64u);
  for (var s0 = 0u; s0 < last; s0 += BK) {
    for (var e = lid.x; e < BK * D; e += 64u) {
      let s = s0 + e / D;
      var kx = 0.0;
      var vx = 0.0;
      if (s < p.T) {
        let at = ((b * p.T + s) * p.Hkv + kvh) * D + e % D;
        kx = k[at];
        vx = v[at];
      }
      Ks[e] = kx;
      Vs[e] = vx;
    }
    if (lid.x < BK) {
      let s = s0 + lid.x;
      var ok = s < p.T;
      if (ok && p.hasMask == 1u) { ok = mask[b * p.T + s] != 0; }
      Ms[lid.x] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    for (var j = 0u; j < BK; j++) {
      if (Ms[j] == 1u && s0 + j <= ii) {
        var dot = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
          dot = fma(qv[d], Ks[j * D + d], dot);
          dp = fma(dov[d], Vs[j * D + d], dp);
        }
        let pj = exp(dot * p.scale - L);
        let ds = pj * (dp - dl) * p.scale;
        for (var d = 0u; d < D; d++) { acc[d] = fma(ds, Ks[j * D + d], acc[d]); }
      }
    }
    workgroupBarrier();
  }
  if (i >= p.T) { return; }
  for (var d = 0u; d < D; d++) { dq[qb + d] = acc[d]; }
}`;

/** dk, dv for one key row: over the group's query heads and the queries at or after it. */
export const attentionBackwardDkv = (DMAX: number) => () => `${bindings(
  'T: u32, H: u32, Hkv: u32, scale: f32, hasMask: u32, D: u32',
  2,
  ['dk', 'f32'],
  ['dv', 'f32'],
  ['dout', 'f32'],
  ['q', 'f32'],
  ['k', 'f32'],
  ['v', 'f32'],
  ['lse', 'f32'],
  ['delta', 'f32'],
  ['mask', 'i32'],
)}
const BQ = ${BK}u;
var<workgroup> Qs: array<f32, ${BK * DMAX}>;
var<workgroup> Os: array<f32, ${BK * DMAX}>;
var<workgroup> Ls: array<f32, ${BK}>;
var<workgroup> Ds: array<f32, ${BK}>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let D = p.D;
  let b = wid.z;
  let kvh = wid.y;
  let s = wid.x * 64u + lid.x;
  let ss = min(s, p.T - 1u);
  let kb = ((b * p.T + ss) * p.Hkv + kvh) * D;
  var kv: array<f32, ${DMAX}>;
  var vv: array<f32, ${DMAX}>;
  var dka: array<f32, ${DMAX}>;
  var dva: array<f32, ${DMAX}>;
  for (var d = 0u; d < D; d++) { kv[d] = k[kb + d]; vv[d] = v[kb + d]; dka[d] = 0.0; dva[d] = 0.0; }
  var live = s < p.T;
  if (live && p.hasMask == 1u) { live = mask[b * p.T + ss] != 0; }
  let G = p.H / p.Hkv;
  for (var hh = kvh * G; hh < (kvh + 1u) * G; hh++) {
    for (var i0 = wid.x * 64u; i0 < p.T; i0 += BQ) {
      for (var e = lid.x; e < BQ * D; e += 64u) {
        let i = i0 + e / D;
        var qx = 0.0;
        var ox = 0.0;
        if (i < p.T) {
          let at = ((b * p.T + i) * p.H + hh) * D + e % D;
          qx = q[at];
          ox = dout[at];
        }
        Qs[e] = qx;
        Os[e] = ox;
      }
      if (lid.x < BQ) {
        let i = min(i0 + lid.x, p.T - 1u);
        Ls[lid.x] = lse[(b * p.H + hh) * p.T + i];
        Ds[lid.x] = delta[(b * p.H + hh) * p.T + i];
      }
      workgroupBarrier();
      if (live) {
        for (var j = 0u; j < BQ; j++) {
          let i = i0 + j;
          if (i < p.T && i >= s) {
            var dot = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < D; d++) {
              dot = fma(Qs[j * D + d], kv[d], dot);
              dp = fma(Os[j * D + d], vv[d], dp);
            }
            let pj = exp(dot * p.scale - Ls[j]);
            let ds = pj * (dp - Ds[j]) * p.scale;
            for (var d = 0u; d < D; d++) {
              dva[d] = fma(pj, Os[j * D + d], dva[d]);
              dka[d] = fma(ds, Qs[j * D + d], dka[d]);
            }
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (s >= p.T) { return; }
  for (var d = 0u; d < D; d++) { dk[kb + d] = dka[d]; dv[kb + d] = dva[d]; }
}`;
