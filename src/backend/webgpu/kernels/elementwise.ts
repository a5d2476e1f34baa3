/**
 * @module backend/webgpu/kernels/elementwise
 * WGSL for the memory and elementwise kernels of the seam (fill, copy, copyRows, casts, add, axpy,
 * scale, sumRows, SwiGLU). n elements, one invocation each; bf16 kernels one invocation per word
 * (two elements), so no two invocations write the same word.
 */
import { BF16, ENTRY_1D, INDEX, bindings } from '../wgsl.ts';

/** x[0, n) = pattern (32-bit words, ` words` of them); the last bf16 word keeps its high half when n is odd. */
export const fillWords = () => `${bindings('words: u32, pattern: u32, halfLast: u32', 1, ['x', 'u32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.words) { return; }
  if (p.halfLast == 1u && i == p.words - 1u) { x[i] = (x[i] & 0xffff0000u) | (p.pattern & 0xffffu); return; }
  x[i] = p.pattern;
}`;

/** 32-bit copy inside one buffer (dst, src regions disjoint) or between two. */
export const copy32 = () => `${bindings('n: u32, dstOff: u32, srcOff: u32', 1, ['dst', 'u32'], ['src', 'u32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  dst[p.dstOff + i] = src[p.srcOff + i];
}`;

/** bf16 copy at any element offsets: invocation w writes destination word firstWord + w. */
export const copyBf16 =
  () => `${bindings('n: u32, dstOff: u32, srcOff: u32, firstWord: u32, words: u32', 1, ['dst', 'u32'], ['src', 'u32'])}
fn half(e: u32) -> u32 { return (src[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu; }
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.words) { return; }
  let w = p.firstWord + i;
  var out = dst[w];
  for (var h = 0u; h < 2u; h++) {
    let e = 2u * w + h;
    if (e >= p.dstOff && e < p.dstOff + p.n) {
      let shift = h * 16u;
      out = (out & ~(0xffffu << shift)) | (half(e - p.dstOff + p.srcOff) << shift);
    }
  }
  dst[w] = out;
}`;

export const copyRows = () => `${bindings(
  'rows: u32, cols: u32, dstStride: u32, srcStride: u32, dstOff: u32, srcOff: u32',
  1,
  ['dst', 'f32'],
  ['src', 'f32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i % p.cols;
  dst[p.dstOff + r * p.dstStride + c] = src[p.srcOff + r * p.srcStride + c];
}`;

/** out (bf16, words) = round(x) */
export const castF32Bf16 = () => `${bindings('n: u32', 1, ['out', 'u32'], ['x', 'f32'])}
${BF16}
${ENTRY_1D} {
  ${INDEX}
  let e = 2u * i;
  if (e >= p.n) { return; }
  let lo = f32_to_bf16(x[e]);
  if (e + 1u < p.n) { out[i] = lo | (f32_to_bf16(x[e + 1u]) << 16u); }
  else { out[i] = (out[i] & 0xffff0000u) | lo; }
}`;

export const castBf16F32 = () => `${bindings('n: u32', 1, ['out', 'f32'], ['x', 'u32'])}
${BF16}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  out[i] = bf16_to_f32((x[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu);
}`;

export const add = () => `${bindings('n: u32', 1, ['out', 'f32'], ['a', 'f32'], ['b', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}`;

export const axpy = () => `${bindings('n: u32, alpha: f32', 1, ['y', 'f32'], ['x', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  y[i] = fma(p.alpha, x[i], y[i]);
}`;

export const scale = () => `${bindings('n: u32, s: f32', 1, ['x', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  x[i] = x[i] * p.s;
}`;

/** out[N] = Σ_rows x[M, N] + beta·out: one invocation per column, rows in order (deterministic). */
export const sumRows = () => `${bindings('M: u32, N: u32, beta: f32', 1, ['out', 'f32'], ['x', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.N) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.M; r++) { s += x[r * p.N + i]; }
  if (p.beta != 0.0) { s += p.beta * out[i]; }
  out[i] = s;
}`;

/** out = silu(gate) · up */
export const swigluForward = () => `${bindings('n: u32', 1, ['out', 'f32'], ['gate', 'f32'], ['up', 'f32'])}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  let g = gate[i];
  let sg = 1.0 / (1.0 + exp(-g));
  out[i] = g * sg * up[i];
}`;

/** dgate = dout·up·σ(g)(1 + g(1 − σ(g))), dup = dout·silu(g); `which` bit 0: write dgate, bit 1: dup. */
export const swigluBackward = () => `${bindings(
  'n: u32, which: u32',
  2,
  ['dgate', 'f32'],
  ['dup', 'f32'],
  ['dout', 'f32'],
  ['gate', 'f32'],
  ['up', 'f32'],
)}
${ENTRY_1D} {
  ${INDEX}
  if (i >= p.n) { return; }
  let g = gate[i];
  let u = up[i];
  let d = dout[i];
  let sg = 1.0 / (1.0 + exp(-g));
  if ((p.which & 1u) != 0u) { dgate[i] = d * u * sg * (1.0 + g * (1.0 - sg)); }
  if ((p.which & 2u) != 0u) { dup[i] = d * g * sg; }
}`;
