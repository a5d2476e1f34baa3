/**
 * @module backend/webgpu/kernels/sample
 * Token sampling, one workgroup (256) per row of logits [B, V] (native/cpu/sample.cc states the
 * contract: temperature, then top-k, then top-p over the top-k distribution; inverse CDF with the
 * caller's uniform, in index order when nothing truncates and in sorted order — descending logit,
 * ties by index — when something does; lp = log_softmax(z/T)[token] over the whole vocabulary).
 * Exact arithmetic instead of sorting: each e = exp((z − max)/T) ≤ 1 is taken as a 64-bit integer
 * e·2⁴⁴ (exact for e ≥ 2⁻²⁰, below that truncated by < 2⁻⁴⁴), so masses, cumulative masses and the
 * cuts u·mass and top_p·mass (64-bit fractions) are integer sums, independent of summation order.
 * Every cut is "the shortest prefix of the sorted order whose count or mass passes a test", found
 * by bisection on the 32-bit order key of the logit, then on the index among tied logits: about 64
 * passes over the row per cut, no sort and no scratch memory. Legend: B rows, V vocabulary.
 */
import { bindings } from '../wgsl.ts';

export const sample = () => `${bindings(
  'V: u32, chunk: u32, invT: f32, topK: u32, pHi: u32, pLo: u32, mode: u32, passes: u32',
  3,
  ['ids', 'i32'],
  ['lp', 'f32'],
  ['bad', 'u32'],
  ['x', 'f32'],
  ['u', 'f32'],
)}
// mode: 0 greedy, 1 inverse CDF in index order, 2 truncated (top-k and/or top-p; topK = V when off)
var<workgroup> rf: array<f32, 256>;
var<workgroup> rc: array<u32, 256>;
var<workgroup> rlo: array<u32, 256>;
var<workgroup> rhi: array<u32, 256>;
var<workgroup> shared_tok: u32;

fn mul32(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool { return a.y < b.y || (a.y == b.y && a.x < b.x); }
/** floor(s · f / 2⁶⁴) for a 64-bit fraction f = (lo, hi); .z = 1 when the remainder is not 0. */
fn mulfrac(s: vec2<u32>, f: vec2<u32>) -> vec3<u32> {
  let a = mul32(s.x, f.x); let b = mul32(s.x, f.y); let c = mul32(s.y, f.x); let d = mul32(s.y, f.y);
  let r1a = a.y + b.x; let k1 = select(0u, 1u, r1a < a.y);
  let r1 = r1a + c.x; let k2 = select(0u, 1u, r1 < r1a);
  let r2a = b.y + c.y; let k3 = select(0u, 1u, r2a < b.y);
  let r2b = r2a + d.x; let k4 = select(0u, 1u, r2b < r2a);
  let r2 = r2b + k1 + k2; let k5 = select(0u, 1u, r2 < r2b);
  let r3 = d.y + k3 + k4 + k5;
  return vec3<u32>(r2, r3, select(0u, 1u, (a.x | r1) != 0u));
}
/** The 64-bit fraction of a float in [0, 1): (lo, hi) of floor(v · 2⁶⁴), exact for f32. */
fn frac64(v: f32) -> vec2<u32> {
  let s = v * 4294967296.0;
  let hi = floor(s);
  return vec2<u32>(u32(floor((s - hi) * 4294967296.0)), u32(hi));
}
/** Order key: larger logit → larger key (IEEE bits made monotone). */
fn okey(z: f32) -> u32 {
  let f = bitcast<u32>(z);
  return select(f | 0x80000000u, ~f, (f >> 31u) != 0u);
}
var<private> mx: f32;
var<private> base: u32;
/** e·2⁴⁴ as a 64-bit integer, e = exp((z − max)·invT) ≤ 1. */
fn q(z: f32) -> vec2<u32> {
  let e = exp((z - mx) * p.invT) * 17592186044416.0;
  let hi = floor(e / 4294967296.0);
  return vec2<u32>(u32(e - hi * 4294967296.0), u32(hi));
}
struct Stat { count: u32, mass: vec2<u32> }
fn reduce(c: u32, m: vec2<u32>, t: u32) -> Stat {
  rc[t] = c; rlo[t] = m.x; rhi[t] = m.y;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) {
      rc[t] += rc[t + s];
      let r = add64(vec2<u32>(rlo[t], rhi[t]), vec2<u32>(rlo[t + s], rhi[t + s]));
      rlo[t] = r.x; rhi[t] = r.y;
    }
    workgroupBarrier();
  }
  let out = Stat(rc[0], vec2<u32>(rlo[0], rhi[0]));
  workgroupBarrier();
  return out;
}
/** Count and mass of the sorted-order prefix {key > K} ∪ {key = K, index ≤ J}. */
fn stats(K: u32, J: u32, t: u32) -> Stat {
  var c = 0u;
  var m = vec2<u32>(0u, 0u);
  let j1 = min(p.V, (t + 1u) * p.chunk);
  for (var j = t * p.chunk; j < j1; j++) {
    let z = x[base + j];
    let k = okey(z);
    if (k > K || (k == K && j <= J)) { c += 1u; m = add64(m, q(z)); }
  }
  return reduce(c, m, t);
}
fn passes(test: u32, lim: vec2<u32>, s: Stat) -> bool {
  if (test == 0u) { return s.count >= lim.x; }       // top-k: at least k tokens
  if (test == 1u) { return !lt64(s.mass, lim); }     // top-p: mass ≥ ⌈top_p · s⌉
  return lt64(lim, s.mass);                          // inverse CDF: mass > ⌊u · s⌋
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  let t = lid.x;
  base = b * p.V;
  let j0 = t * p.chunk;
  let j1 = min(p.V, j0 + p.chunk);
  // the maximum and its first index
  var m = -3.4028234663852886e38;
  var first = 0xffffffffu;
  for (var j = j0; j < j1; j++) {
    let z = x[base + j];
    if (z > m) { m = z; first = j; }
  }
  rf[t] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { rf[t] = max(rf[t], rf[t + s]); }
    workgroupBarrier();
  }
  mx = rf[0];
  workgroupBarrier();
  rc[t] = select(0xffffffffu, first, m == mx);
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { rc[t] = min(rc[t], rc[t + s]); }
    workgroupBarrier();
  }
  let arg = rc[0];
  workgroupBarrier();
  let finite = mx > -3.4028234663852886e38 && mx <= 3.4028234663852886e38;
  // the whole row's mass (also the normaliser of lp) from this invocation's chunk sum
  var cm = vec2<u32>(0u, 0u);
  for (var j = j0; j < j1; j++) { cm = add64(cm, q(x[base + j])); }
  let all = reduce(j1 - min(j0, j1), cm, t);
  var tok = arg;
  if (p.mode == 1u) {
    // inverse CDF in index order: chunk sums, then one scan inside the chunk where u·S falls
    rlo[t] = cm.x; rhi[t] = cm.y;
    workgroupBarrier();
    if (t == 0u) {
      let f = mulfrac(all.mass, frac64(u[b]));
      let goal = vec2<u32>(f.x, f.y);
      var acc = vec2<u32>(0u, 0u);
      var c = 0u;
      for (; c < 255u; c++) {
        let nxt = add64(acc, vec2<u32>(rlo[c], rhi[c]));
        if (lt64(goal, nxt)) { break; }
        acc = nxt;
      }
      var found = arg;
      var last = arg;
      let e1 = min(p.V, (c + 1u) * p.chunk);
      for (var j = c * p.chunk; j < e1; j++) {
        let e = q(x[base + j]);
        if ((e.x | e.y) != 0u) { last = j; }
        acc = add64(acc, e);
        if (lt64(goal, acc)) { found = j; break; }
        found = last;
      }
      shared_tok = found;
    }
    workgroupBarrier();
    tok = shared_tok;
  } else if (p.mode == 2u) {
    // Up to three cuts, each the shortest sorted-order prefix passing a test, in one loop so the
    // reduction is compiled once (lavapipe compiles every inlined barrier sequence anew):
    //   phase 0  top-k: count ≥ k                 → its mass s
    //   phase 1  top-p: mass ≥ ⌈top_p · s⌉        → the nucleus' mass s2
    //   phase 2  inverse CDF: mass > ⌊u · s2⌋     → the token
    // A cut takes 65 passes: 32 bisect the order key K, 32 the index J among tokens tied at K,
    // one measures the prefix. p.topK = V / p.pHi = p.pLo = all ones mean "off" (phase skipped).
    var phase = select(select(2u, 1u, p.pHi != 0xffffffffu || p.pLo != 0xffffffffu), 0u, p.topK < p.V);
    var lim = vec2<u32>(p.topK, 0u);
    if (phase == 1u) {
      let f = mulfrac(all.mass, vec2<u32>(p.pLo, p.pHi));
      lim = add64(vec2<u32>(f.x, f.y), vec2<u32>(f.z, 0u));
    } else if (phase == 2u) {
      let g = mulfrac(all.mass, frac64(u[b]));
      lim = vec2<u32>(g.x, g.y);
    }
    var K = 0u;
    var lo = 0u;
    var hi = p.V - 1u;
    var step = 0u;
    for (var it = 0u; it < p.passes; it++) {
      var qK = K;
      var qJ = lo;
      if (step < 32u) { qK = K | (1u << (31u - step)); qJ = 0xffffffffu; }
      else if (step < 64u) { qJ = (lo + hi) / 2u; }
      let st = stats(qK, qJ, t);
      if (step < 32u) {
        if (passes(phase, lim, st)) { K = qK; }
      } else if (step < 64u) {
        if (lo < hi) { if (passes(phase, lim, st)) { hi = qJ; } else { lo = qJ + 1u; } }
      } else {
        // the cut is (K, lo) with mass st.mass: set up the next phase
        tok = lo;
        if (phase == 0u && (p.pHi != 0xffffffffu || p.pLo != 0xffffffffu)) {
          let f = mulfrac(st.mass, vec2<u32>(p.pLo, p.pHi));
          lim = add64(vec2<u32>(f.x, f.y), vec2<u32>(f.z, 0u));
          phase = 1u;
        } else {
          let g = mulfrac(st.mass, frac64(u[b]));
          lim = vec2<u32>(g.x, g.y);
          phase = 2u;
        }
        K = 0u;
        lo = 0u;
        hi = p.V - 1u;
      }
      step = select(step + 1u, 0u, step == 64u);
    }
    // the last cut ends on step 63 (its measuring pass is not needed)
    tok = lo;
  }
  if (t != 0u) { return; }
  if (!finite) { ids[b] = 0; lp[b] = 0.0; bad[b] = 1u; return; }
  let S = (f32(all.mass.y) * 4294967296.0 + f32(all.mass.x)) / 17592186044416.0;
  ids[b] = i32(tok);
  lp[b] = x[base + tok] * p.invT - (mx * p.invT + log(S));
  bad[b] = 0u;
}`;
