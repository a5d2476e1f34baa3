/**
 * @module test/helpers
 * Shared test utilities: a seeded PRNG, random tensors, relative error (‖ours − ref‖₂ / ‖ref‖₂,
 * DESIGN §5), llm.c-style `checkTensor` reporting, and float64 finite differences.
 */
import assert from 'node:assert/strict';
import {
  backendNames,
  getNumThreads,
  loadBackend,
  setDefaultBackend,
  setNumThreads,
  type Backend,
  type Kernels,
} from '../src/backend/index.ts';
import type { WebGpuBackend } from '../src/backend/webgpu/index.ts';
import { after, before, describe, test } from 'node:test';

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n standard-normal values (Box–Muller) times `scale`, as float32-representable float64s. */
export function randn(n: number, r: () => number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = Math.fround(m * Math.cos(2 * Math.PI * v));
    if (i + 1 < n) out[i + 1] = Math.fround(m * Math.sin(2 * Math.PI * v));
  }
  return out;
}

export function relErr(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(ours.length, ref.length, `length ${ours.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ours[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

export function maxDiff(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ours[i]! - ref[i]!));
  return m;
}

/** Asserts relative error ≤ tol; the failure message names op, tensor and maxdiff (llm.c check_tensor). */
export function checkTensor(
  op: string,
  tensor: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: number,
): void {
  const e = relErr(ours, ref);
  if (!(e <= tol)) {
    assert.fail(
      `${op}: ${tensor} relative error ${e.toExponential(3)} > ${tol} (maxdiff ${maxDiff(ours, ref).toExponential(3)}, n=${ref.length})`,
    );
  }
}

/**
 * Central finite differences of a float64 scalar function at selected coordinates.
 * Returns d f / d x[i] for each i in idxs.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, idxs: number[], eps = 1e-6): number[] {
  const out: number[] = [];
  for (const i of idxs) {
    const old = x[i]!;
    x[i] = old + eps;
    const fp = f(x);
    x[i] = old - eps;
    const fm = f(x);
    x[i] = old;
    out.push((fp - fm) / (2 * eps));
  }
  return out;
}

/** `count` distinct random indices below n (all of them when n ≤ count). */
export function sampleIdx(n: number, count: number, r: () => number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const s = new Set<number>();
  while (s.size < count) s.add(Math.floor(r() * n));
  return [...s];
}

/** Checks analytic gradients (float32 from our backward) against float64 finite differences. */
export function checkFiniteDiff(
  op: string,
  tensor: string,
  analytic: ArrayLike<number>,
  f: (x: Float64Array) => number,
  x: Float64Array,
  r: () => number,
  opts: { count?: number; eps?: number; tol?: number } = {},
): void {
  const idxs = sampleIdx(x.length, opts.count ?? 12, r);
  const fd = finiteDiff(f, x, idxs, opts.eps ?? 1e-6);
  const an = idxs.map((i) => analytic[i]!);
  checkTensor(op, `${tensor} (finite differences at ${idxs.length} points)`, an, fd, opts.tol ?? 1e-3);
}

/** Float64 reference matmul: C[M,N] = A[M,K] B[K,N] (row-major). */
export function matmulRef(A: ArrayLike<number>, B: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const a = A[i * K + k]!;
      if (a === 0) continue;
      for (let j = 0; j < N; j++) C[i * N + j] += a * B[k * N + j]!;
    }
  return C;
}

/** Row-major transpose of an [R, C] matrix. */
export function transpose(A: ArrayLike<number>, R: number, C: number): Float64Array {
  const out = new Float64Array(R * C);
  for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) out[j * R + i] = A[i * C + j]!;
  return out;
}

/** Rounds float32 values to bfloat16 (nearest even), as float64. */
export function roundBf16(x: ArrayLike<number>): Float64Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i]!;
    let b = u[0]!;
    b = (b + 0x7fff + ((b >>> 16) & 1)) >>> 0;
    u[0] = b & 0xffff0000;
    out[i] = f[0]!;
  }
  return out;
}

/**
 * Deterministic reductions: `compute()` gives bit-identical results with 1 and 2 compute threads.
 * Restores the previous thread count.
 */
export function assertSameAcrossThreads<T>(compute: () => T): void {
  const prev = getNumThreads();
  try {
    setNumThreads(1);
    const one = compute();
    setNumThreads(2);
    assert.deepEqual(compute(), one);
  } finally {
    setNumThreads(prev);
  }
}

/**
 * The WebGPU backend (why = ""), or null and why it does not load here (no adapter, no Dawn): a
 * WebGPU-only suite passes `why` as its skip reason, so its absence is one line, never silent.
 */
export async function webgpuOrWhy(): Promise<{ gpu: WebGpuBackend | null; why: string }> {
  try {
    return { gpu: (await loadBackend('webgpu')) as WebGpuBackend, why: '' };
  } catch (e) {
    return { gpu: null, why: (e as Error).message };
  }
}

/** Backends to run kernel suites on (GPG_RL_TEST_BACKENDS=cpu,webgpu narrows it; default: every registered one). */
const TEST_BACKENDS = process.env.GPG_RL_TEST_BACKENDS?.split(',').filter(Boolean) ?? backendNames();

/** A backend that reports which kernels it has (the CPU backend has them all). */
type MaybePartial = Backend & { supports?(op: keyof Kernels): boolean };

/**
 * Runs a kernel suite once per registered backend (`<title> [cpu]`, `<title> [webgpu]`, ...), with
 * that backend as the default for every tensor the suite creates, so a new backend inherits every
 * float64-reference and finite-difference test. A backend is loaded only by a file that has such a
 * suite. Where it does not load (no WebGPU adapter) or lacks one of `ops` (the kernels the suite
 * runs), the suite is one skipped test whose line says why — never silently absent.
 */
export function describeEachBackend(title: string, ops: (keyof Kernels)[], body: (backend: Backend) => void): void {
  for (const name of TEST_BACKENDS) {
    describe(`${title} [${name}]`, async () => {
      let be: MaybePartial;
      try {
        be = await loadBackend(name);
      } catch (e) {
        test(`${title} [${name}]`, { skip: (e as Error).message }, () => {});
        return;
      }
      const missing = be.supports ? ops.filter((o) => !be.supports!(o)) : [];
      if (be.supports && ops.length === 0) missing.push('(the suite names no kernels)' as keyof Kernels);
      if (missing.length) {
        test(`${title} [${name}]`, { skip: `no ${name} kernel yet for ${missing.join(', ')}` }, () => {});
        return;
      }
      let prev: Backend | null = null;
      before(() => {
        prev = setDefaultBackend(be);
      });
      after(() => {
        if (prev) setDefaultBackend(prev);
      });
      // tensors made while the suite is collected live on `be` too
      const outer = setDefaultBackend(be);
      try {
        body(be);
      } finally {
        if (outer) setDefaultBackend(outer);
      }
    });
  }
}
