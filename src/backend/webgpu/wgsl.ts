/**
 * @module backend/webgpu/wgsl
 * WGSL shared by the kernels: how dtypes are stored and how a 1-D kernel is laid out.
 *  - float32 and int32 buffers are array<f32> / array<i32>; bfloat16 buffers are array<u32>, two
 *    elements per word (element 2w in the low half), since WGSL has no bf16 type. Casts to bf16
 *    round to nearest even, as native/cpu does; NaN stays NaN.
 *  - Outputs come first and are read_write; inputs are read-only. Dawn rejects a dispatch that binds
 *    a buffer twice when either binding is writable, so where the seam lets an output alias an
 *    input (dlogits may be logits, dropout's out may be x) the backend reads a copy of the input.
 *  - 1-D kernels run WG = 256 invocations per workgroup on a 2-D grid (x ≤ 65535 workgroups), the
 *    element index being gid.x + gid.y · num_workgroups.x · WG.
 */

export const WG = 256;

/** Workgroup counts covering `n` invocations of a WG-wide 1-D kernel. */
export function grid1d(n: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / WG));
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/** Index of a 1-D invocation (needs `gid` and `nwg` builtins in the entry point). */
export const INDEX = `let i = gid.x + gid.y * nwg.x * ${WG}u;`;

export const ENTRY_1D = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)`;

/** Workgroup counts for one workgroup per row (rows beyond N return at once). */
export function rows(N: number): [number, number, number] {
  if (N <= 65535) return [Math.max(1, N), 1, 1];
  const y = Math.ceil(N / 65535);
  return [Math.ceil(N / y), y, 1];
}

/** Entry point of a row kernel: WG invocations per row; `let r` is the row, `let t` the invocation. */
export const ROW_ENTRY = `@compute @workgroup_size(${WG})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
)`;

/** Tree sum / max over the WG invocations of a workgroup in workgroup memory (every invocation gets the result; fixed order). */
export const REDUCE_SHARED = `var<workgroup> red: array<f32, ${WG}>;
fn wg_sum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}
fn wg_max(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;

/**
 * The same two reductions with the `subgroups` feature: subgroupAdd / subgroupMax inside each
 * subgroup, one partial per subgroup in workgroup memory (slot t / n: invocations are laid out
 * in subgroups of n consecutive indices, as Vulkan, Metal and D3D12 do for a 1-D workgroup whose
 * size, 256, is a multiple of every subgroup size), then lane j of every subgroup folds partials
 * j, j + n, … and a second subgroupAdd / subgroupMax combines the lanes: two barriers instead of
 * log2(WG) + 2. The order is fixed for a given adapter (its subgroup size and reduction order),
 * not across adapters, nor equal to the tree's order (results differ from it in the last bits).
 */
export const REDUCE_SUBGROUPS = `var<workgroup> red: array<f32, ${WG}>;
fn wg_sum(v: f32, t: u32) -> f32 {
  let s = subgroupAdd(v);
  let n = subgroupAdd(1u);
  if (t % n == 0u) { red[t / n] = s; }
  workgroupBarrier();
  var part = 0.0;
  for (var k = t % n; k < ${WG}u / n; k += n) { part += red[k]; }
  let total = subgroupAdd(part);
  workgroupBarrier();
  return total;
}
fn wg_max(v: f32, t: u32) -> f32 {
  let s = subgroupMax(v);
  let n = subgroupAdd(1u);
  if (t % n == 0u) { red[t / n] = s; }
  workgroupBarrier();
  // lanes past the last partial (WG / n < n) start from red[0]: max is idempotent
  var part = red[select(0u, t % n, t % n < ${WG}u / n)];
  for (var k = t % n + n; k < ${WG}u / n; k += n) { part = max(part, red[k]); }
  let total = subgroupMax(part);
  workgroupBarrier();
  return total;
}`;

/** Optional adapter features the kernels use, chosen once from the device's features (setKernelFeatures). */
export interface KernelFeatures {
  subgroups: boolean;
}
let features: KernelFeatures = { subgroups: false };

/**
 * The row reductions in effect (wg_sum / wg_max): REDUCE_SUBGROUPS when the device has
 * `subgroups`, else REDUCE_SHARED. Kernels read it when their pipeline is first created (their
 * WGSL is built lazily), after the backend has called setKernelFeatures.
 */
export let REDUCE = REDUCE_SHARED;

/** Selects the kernel variants for the device's features (the backend calls it once, at creation). */
export function setKernelFeatures(f: KernelFeatures): void {
  features = { ...f };
  REDUCE = f.subgroups ? REDUCE_SUBGROUPS : REDUCE_SHARED;
}

export function kernelFeatures(): KernelFeatures {
  return { ...features };
}

/** The module's `enable` directives: `enable subgroups;` where its WGSL calls a subgroup builtin. */
export function withEnables(wgsl: string): string {
  return /\bsubgroup[A-Z]/.test(wgsl) ? `enable subgroups;\n${wgsl}` : wgsl;
}

/** bf16 bit helpers: widen a half, round an f32 to bf16 bits (nearest even), read element e of a packed array. */
export const BF16 = `
fn bf16_to_f32(h: u32) -> f32 { return bitcast<f32>(h << 16u); }
fn f32_to_bf16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}
fn round_bf16(x: f32) -> f32 { return bf16_to_f32(f32_to_bf16(x)); }
`;

/** Packs uniforms: `spec` has one letter per 32-bit field, u (u32), i (i32) or f (f32). */
export function uniforms(spec: string, ...values: number[]): Uint32Array {
  if (spec.length !== values.length) throw new Error(`uniforms: ${spec.length} fields, ${values.length} values`);
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((spec.length * 4) / 16) * 16));
  const u = new Uint32Array(buf);
  const i = new Int32Array(buf);
  const f = new Float32Array(buf);
  for (let k = 0; k < spec.length; k++) {
    const v = values[k]!;
    if (spec[k] === 'f') f[k] = v;
    else if (spec[k] === 'i') i[k] = v;
    else u[k] = v >>> 0;
  }
  return u;
}

/**
 * `@group(0) @binding(k)` declarations: uniforms struct `P` at 0, then the storage arrays, the
 * first `outputs` of them read_write, the rest read-only.
 */
export function bindings(params: string, outputs: number, ...arrays: [name: string, type: string][]): string {
  const lines = [`struct P { ${params} }`, '@group(0) @binding(0) var<uniform> p: P;'];
  arrays.forEach(([name, type], k) =>
    lines.push(
      `@group(0) @binding(${k + 1}) var<storage, ${k < outputs ? 'read_write' : 'read'}> ${name}: array<${type}>;`,
    ),
  );
  return lines.join('\n');
}
