/**
 * @module backend/checks
 * The argument checks of the kernel seam, in TypeScript, with native/cpu's messages: the CPU
 * backend's addon makes them in C++ (native/cpu/<op>.cc, every call), and a backend whose kernels
 * cannot (a GPU kernel clamps an out-of-range index and is silently wrong) makes them here before
 * it queues anything, so a bad argument is the same one-line NativeOpError on every backend
 * (`<op>: <what>`; the kernel suites of test/native check each message on each backend).
 * Host-side checks of ids, targets, positions, slots and block tables read the host's copy of the
 * int32 buffer (the caller passes it).
 */
import type { DType, DeviceBuffer, GemmArgs } from './types.ts';
import { NativeOpError } from '../errors.ts';

/** RoPE positions are exact in float32 below 2^24 (native/cpu/rope.cc). */
export const MAX_POS = 1 << 24;

/** Throws `op: message` as the NativeOpError native/cpu raises. */
export function fail(op: string, message: string): never {
  throw new NativeOpError(`${op}: ${message}`, op);
}

/**
 * The buffer check native/cpu makes of every operand (storage.cc Args::typed, in its order): not
 * disposed, of `dtype` when given, at least `n` elements. An absent optional buffer passes.
 */
export function need(op: string, name: string, b: DeviceBuffer | null | undefined, n: number, dtype?: DType): void {
  if (!b) return;
  if (b.freed) fail(op, `${name} was disposed`);
  if (dtype && b.dtype !== dtype) fail(op, `${name} must be ${dtype}, got ${b.dtype}`);
  if (b.numel < n) fail(op, `${name} holds ${b.numel} elements, needs ${n}`);
}

/** ids in [0, V). */
export function checkIds(op: string, ids: Int32Array, N: number, V: number): void {
  for (let i = 0; i < N; i++) {
    const v = ids[i]!;
    if (v < 0 || v >= V)
      fail(op, `ids[${i}] = ${v} is out of range for vocabulary size V = ${V} (valid ids are 0..${V - 1})`);
  }
}

/** targets[rowOff, rowOff + rows) < V (negative ids mean "ignore"). */
export function checkTargets(op: string, tg: Int32Array, rowOff: number, rows: number, V: number): void {
  for (let r = 0; r < rows; r++) {
    const t = tg[rowOff + r]!;
    if (t >= V) fail(op, `target ${t} at row ${rowOff + r} is out of range for vocabulary size ${V}`);
  }
}

export function positiveTemperature(op: string, t: number): void {
  if (!(t > 0)) fail(op, `temperature must be > 0, got ${t}`);
}

/**
 * gemm's operands A and B in native/binding.cc's order: batchB is batch or 1, no int32 operand
 * (named with the other's dtype when they differ), then their sizes. The CPU backend checks them
 * before an autocast or widening copy, so a bad product is named `gemm` there too.
 */
export function checkGemm(A: DeviceBuffer, B: DeviceBuffer, o: GemmArgs): void {
  const batch = o.batch ?? 1;
  const batchB = o.batchB ?? 1;
  if (batchB !== batch && batchB !== 1) fail('gemm', `batchB must equal batch or 1, got ${batchB}`);
  if (A.dtype !== B.dtype && (A.dtype === 'int32' || B.dtype === 'int32'))
    fail('gemm', `A is ${A.dtype} but B is ${B.dtype}`);
  if (A.dtype === 'int32') fail('gemm', 'int32 operands are not supported');
  need('gemm', 'A', A, (o.aOff ?? 0) + batch * o.M * o.K);
  need('gemm', 'B', B, (o.bOff ?? 0) + batchB * o.K * o.N);
}

/** Dropout's p in [0, 1) and seed an integer below 2^53. */
export function checkDropout(op: string, p: number, seed: number): void {
  if (!(p >= 0 && p < 1)) fail(op, `p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 53)
    fail(op, `seed must be an integer in [0, 2^53), got ${seed}`);
}

/** RoPE's head dim even and theta > 0. */
export function checkRope(op: string, D: number, theta: number): void {
  if (D % 2 !== 0) fail(op, `D must be even, got ${D}`);
  if (!(theta > 0)) fail(op, `theta must be > 0, got ${theta}`);
}

/** positions[0, n) in [0, MAX_POS); returns the largest. */
export function checkPositions(op: string, pos: Int32Array, n: number): number {
  let maxPos = 0;
  for (let i = 0; i < n; i++) {
    const v = pos[i]!;
    if (v < 0 || v >= MAX_POS)
      fail(op, `positions[${i}] = ${v} is out of range [0, ${MAX_POS}); position ids count real tokens from 0`);
    if (v > maxPos) maxPos = v;
  }
  return maxPos;
}

/** AdamW's hyperparameters (native/cpu/adamw.cc's order of checks). */
export function checkAdamw(
  op: string,
  h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number },
): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = h;
  if (!Number.isInteger(step) || step < 1) fail(op, `step must be >= 1, got ${step}`);
  if (!(Number.isFinite(lr) && lr >= 0)) fail(op, `lr must be finite and >= 0, got ${lr}`);
  if (!(beta1 >= 0 && beta1 < 1)) fail(op, `beta1 must be in [0, 1), got ${beta1}`);
  if (!(beta2 >= 0 && beta2 < 1)) fail(op, `beta2 must be in [0, 1), got ${beta2}`);
  if (!(Number.isFinite(eps) && eps >= 0)) fail(op, `eps must be finite and >= 0, got ${eps}`);
  if (!(Number.isFinite(weightDecay) && weightDecay >= 0))
    fail(op, `weight_decay must be finite and >= 0, got ${weightDecay}`);
}

/** Grouped-query heads: H a multiple of Hkv. */
export function checkHeads(op: string, H: number, Hkv: number): void {
  if (H % Hkv !== 0) fail(op, `H = ${H} is not a multiple of Hkv = ${Hkv}`);
}

/** A finite softmax scale. */
export function finiteScale(op: string, scale: number): void {
  if (!Number.isFinite(scale)) fail(op, `scale must be finite, got ${scale}`);
}

/** Paged KV writes: every slot inside the pool of S slots. */
export function checkSlots(op: string, slots: Int32Array, n: number, S: number): void {
  for (let i = 0; i < n; i++)
    if (slots[i]! < 0 || slots[i]! >= S) fail(op, `slot ${slots[i]} of row ${i} is outside the pool of ${S} slots`);
}

/** Paged attention: each row's key count in [Tq, maxBlocks·blockSize] and its used table entries inside the pool. */
export function checkPagedRows(
  op: string,
  ctx: Int32Array,
  table: Int32Array,
  B: number,
  Tq: number,
  blockSize: number,
  maxBlocks: number,
  numBlocks: number,
): void {
  for (let b = 0; b < B; b++) {
    if (ctx[b]! < Tq || ctx[b]! > maxBlocks * blockSize)
      fail(op, `row ${b} has ${ctx[b]} keys; need ${Tq} <= keys <= max_blocks·block_size = ${maxBlocks * blockSize}`);
    const used = Math.ceil(ctx[b]! / blockSize);
    for (let j = 0; j < used; j++) {
      const blk = table[b * maxBlocks + j]!;
      if (blk < 0 || blk >= numBlocks)
        fail(op, `block table row ${b} entry ${j} = ${blk} is outside the pool of ${numBlocks} blocks`);
    }
  }
}

/** Sampling: temperature > 0, top_p in (0, 1], top_k an integer ≥ 0. */
export function checkSampling(op: string, temperature: number, topK: number, topP: number): void {
  positiveTemperature(op, temperature);
  if (!(topP > 0 && topP <= 1)) fail(op, `top_p must be in (0, 1], got ${topP}`);
  if (!Number.isInteger(topK) || topK < 0) fail(op, `top_k must be an integer >= 0, got ${topK}`);
}
