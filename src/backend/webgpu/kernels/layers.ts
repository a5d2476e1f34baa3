/**
 * @module backend/webgpu/kernels/layers
 * WGSL for dropout, the embedding gather and scatter-add, RoPE and AdamW, each matching native/cpu/<op>.cc (whose header comments give the maths):
 *  - dropout: the mask is splitmix64(seed, i) ≥ p·2³², computed here in 32-bit halves, so it is the
 *    CPU's mask bit for bit;
 *  - embedding backward: the host counting-sorts the ids (start [V+1], order [N]) as native/cpu
 *    does, and one invocation per (row, channel) sums that row's tokens in ascending token order;
 *  - RoPE: cos/sin come from a host table computed in double of the float32 angle (as native/cpu),
 *    [npos, D/2] each, so no WGSL transcendental (whose precision WGSL leaves open) is involved;
 */
import { ENTRY_1D, INDEX, bindings } from '../wgsl.ts';

/** out = mask ⊙ x · keepScale; mask bit of element i from splitmix64(seed + (i + 1)·golden). */
export const dropout =
  () => `${bindings('n: u32, seedLo: u32, seedHi: u32, thr: u32, keepScale: f32, base: u32', 1, ['out', 'f32'], ['x', 'f32'])}
fn mul32(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}
fn mul64(x: vec2<u32>, y: vec2<u32>) -> vec2<u32> {
  let l = mul32(x.x, y.x);
  return vec2<u32>(l.x, l.y + x.x * y.y + x.y * y.x);
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn xorshr(z: vec2<u32>, s: u32) -> vec2<u32> { return vec2<u32>(z.x ^ ((z.x >> s) | (z.y << (32u - s))), z.y ^ (z.y >> s)); }
fn bits(i: u32) -> u32 {
  var z = add64(vec2<u32>(p.seedLo, p.seedHi), mul64(vec2<u32>(i + 1u, select(0u, 1u, i == 0xffffffffu)), vec2<u32>(0x7f4a7c15u, 0x9e3779b9u)));
  z = mul64(xorshr(z, 30u), vec2<u32>(0x1ce4e5b9u, 0xbf58476du));
  z = mul64(xorshr(z, 27u), vec2<u32>(0x133111ebu, 0x94d049bbu));
  z = xorshr(z, 31u);
  return z.y;
}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  out[i] = select(0.0, x[i] * p.keepScale, bits(p.base + i) >= p.thr);
}`;

/**
 * out [N, C] = weight[ids[n]] (ids checked on the host) for the ids in rows [v0, v0 + vn) of the
 * vocabulary, `w` being bound at row v0 (+ off elements): a weight over the binding limit is
 * gathered one row window per dispatch, each token's row written by the window that holds it.
 */
export const embeddingForward = () => `${bindings(
  'N: u32, C: u32, v0: u32, vn: u32, off: u32',
  1,
  ['out', 'f32'],
  ['w', 'f32'],
  ['ids', 'i32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let id = u32(ids[n]);
  if (id < p.v0 || id >= p.v0 + p.vn) { return; }
  out[i] = w[p.off + (id - p.v0) * p.C + i % p.C];
}`;

/**
 * dweight[v, c] = (+)= Σ over v's tokens (ascending) of dout[token, c] for the rows v in
 * [v0, v0 + vn), `dw` being bound at row v0 (+ off elements); rows without tokens 0 (or untouched).
 */
export const embeddingBackward = () => `${bindings(
  'vn: u32, C: u32, accumulate: u32, v0: u32, off: u32',
  1,
  ['dw', 'f32'],
  ['dout', 'f32'],
  ['start', 'u32'],
  ['order', 'u32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.vn * p.C) { return; }
  let v = p.v0 + i / p.C;
  let c = i % p.C;
  let d = p.off + i;
  let s = start[v];
  let e = start[v + 1u];
  if (s == e) {
    if (p.accumulate == 0u) { dw[d] = 0.0; }
    return;
  }
  var k = s;
  var acc: f32;
  if (p.accumulate == 1u) { acc = dw[d]; } else { acc = dout[order[s] * p.C + c]; k = s + 1u; }
  for (; k < e; k++) { acc += dout[order[k] * p.C + c]; }
  dw[d] = acc;
}`;

/**
 * Rotate-half RoPE over x [BT, H, D] with tables cs/sn [npos, D/2]; sign −1 rotates by −angle
 * (backward). One invocation per (token, head, i < D/2).
 */
export const rope = () => `${bindings(
  'BT: u32, H: u32, D: u32, sign: f32',
  1,
  ['y', 'f32'],
  ['x', 'f32'],
  ['pos', 'i32'],
  ['cs', 'f32'],
  ['sn', 'f32'],
)}
${ENTRY_1D} {
  ${INDEX}
  let h2 = p.D / 2u;
  if (i >= p.BT * p.H * h2) { return; }
  let j = i % h2;
  let th = i / h2;
  let t = th / p.H;
  let base = th * p.D;
  let at = u32(pos[t]) * h2 + j;
  let c = cs[at];
  let s = p.sign * sn[at];
  let a = x[base + j];
  let b = x[base + j + h2];
  y[base + j] = a * c - b * s;
  y[base + j + h2] = b * c + a * s;
}`;

/** One AdamW step in place (native/cpu/adamw.cc's float operations; scalars formed on the host in double). */
export const adamw = () => `${bindings(
  'n: u32, decay: f32, b1: f32, w1: f32, b2: f32, w2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32',
  3,
  ['param', 'f32'],
  ['m', 'f32'],
  ['v', 'f32'],
  ['grad', 'f32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  let gi = grad[i];
  let mi = m[i] * p.b1 + gi * p.w1;
  let vi = v[i] * p.b2 + gi * gi * p.w2;
  let denom = sqrt(vi) / p.bc2Sqrt + p.eps;
  param[i] = param[i] * p.decay - p.stepSize * (mi / denom);
  m[i] = mi;
  v[i] = vi;
}`;
