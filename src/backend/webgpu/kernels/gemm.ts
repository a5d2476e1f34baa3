/**
 * @module backend/webgpu/kernels/gemm
 * Tiled GEMM: C[b] = alpha·op(A[b])·op(B[b|0]) (+ bias[N]) + beta·C[b] (the seam's GemmArgs, so a
 * Linear's weight [N, K] is B with transB). A workgroup of 16×16 invocations computes a 64×64 tile
 * of C, 4×4 outputs each, staging 16-deep slices of A and B in workgroup memory; grid
 * (⌈N/64⌉, ⌈M/64⌉, batch). fp32 accumulation always. Variants (one pipeline each):
 *  - an operand stored as bfloat16 (array<u32>, two per word) is widened on load;
 *  - `round` (autocast with fp32 operands) rounds each operand to bf16 on load, which is exactly
 *    the product of bf16 operands with fp32 accumulation that native/cpu computes.
 * beta = 0 never reads C (it may hold NaN garbage).
 */
import { BF16, bindings } from '../wgsl.ts';

export const TILE = 64;

export interface GemmVariant {
  aBf16: boolean;
  bBf16: boolean;
  roundA: boolean;
  roundB: boolean;
  bias: boolean;
}

export const gemmKey = (v: GemmVariant): string => `gemm:${+v.aBf16}${+v.bBf16}${+v.roundA}${+v.roundB}${+v.bias}`;

function loader(name: string, bf16: boolean, round: boolean): string {
  const raw = bf16 ? `bf16_to_f32((${name}[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu)` : `${name}[e]`;
  return `fn load_${name}(e: u32) -> f32 { return ${round && !bf16 ? `round_bf16(${raw})` : raw}; }`;
}

export const gemm = (v: GemmVariant) => () => `${bindings(
  'M: u32, N: u32, K: u32, transA: u32, transB: u32, batchB: u32, aOff: u32, bOff: u32, cOff: u32, alpha: f32, beta: f32',
  1,
  ['C', 'f32'],
  ['A', v.aBf16 ? 'u32' : 'f32'],
  ['B', v.bBf16 ? 'u32' : 'f32'],
  ['bias', 'f32'],
)}
${BF16}
${loader('A', v.aBf16, v.roundA)}
${loader('B', v.bBf16, v.roundB)}
var<workgroup> As: array<f32, 1024>; // [16 k][64 m]
var<workgroup> Bs: array<f32, 1024>; // [16 k][64 n]
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.z;
  let m0 = wid.y * 64u;
  let n0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  let aBase = p.aOff + b * p.M * p.K;
  let bBase = p.bOff + select(b, 0u, p.batchB == 1u) * p.K * p.N;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.K; k0 += 16u) {
    for (var r = 0u; r < 4u; r++) {
      let idx = tid + r * 256u;
      let kk = idx / 64u;
      let xx = idx % 64u;
      let k = k0 + kk;
      let m = m0 + xx;
      let n = n0 + xx;
      var av = 0.0;
      if (m < p.M && k < p.K) { av = load_A(aBase + select(m * p.K + k, k * p.M + m, p.transA == 1u)); }
      As[idx] = av;
      var bv = 0.0;
      if (n < p.N && k < p.K) { bv = load_B(bBase + select(k * p.N + n, n * p.K + k, p.transB == 1u)); }
      Bs[idx] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var a: array<f32, 4>;
      var bb: array<f32, 4>;
      for (var t = 0u; t < 4u; t++) {
        a[t] = As[kk * 64u + lid.y * 4u + t];
        bb[t] = Bs[kk * 64u + lid.x * 4u + t];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = fma(a[i], bb[j], acc[i * 4u + j]); }
      }
    }
    workgroupBarrier();
  }
  let cBase = p.cOff + b * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (n >= p.N) { continue; }
      var c = p.alpha * acc[i * 4u + j];
      ${v.bias ? 'c += bias[n];' : 'c += 0.0 * bias[0];'}
      let at = cBase + m * p.N + n;
      if (p.beta != 0.0) { c += p.beta * C[at]; }
      C[at] = c;
    }
  }
}`;
