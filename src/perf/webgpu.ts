/**
 * @module perf/webgpu
 * `gpg-rl bench --device webgpu`: the adapter (vendor, device, features, limits) and GEMM GFLOP/s
 * on it, in the Linear layout (x [M,K] · Wᵀ, W stored [N,K]) and plain row-major, each call timed
 * to completion (the host waits for the device after every product: WebGPU queues work, so timing
 * the call alone would time the queueing). Training and decoding tokens/s, the machine peak and the
 * anchors' ratios are measured on the CPU backend only so far (the result says so in `notes`).
 */
import { defaultBackend } from '../backend/index.ts';
import type { AdapterInfo, WebGpuBackend } from '../backend/webgpu/index.ts';
import { GpgRlError } from '../errors.ts';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { gemmInto } from '../tensor/ops/matmul.ts';

export interface WebGpuShape {
  M: number;
  K: number;
  N: number;
  transB: boolean;
  reps: number;
}

/** 1024³ and 2048³ in both layouts, and the decode-shaped 8×1024×4096. */
export const WEBGPU_SHAPES: WebGpuShape[] = [
  { M: 1024, K: 1024, N: 1024, transB: true, reps: 3 },
  { M: 2048, K: 2048, N: 2048, transB: true, reps: 1 },
  { M: 8, K: 1024, N: 4096, transB: true, reps: 10 },
  { M: 1024, K: 1024, N: 1024, transB: false, reps: 3 },
  { M: 2048, K: 2048, N: 2048, transB: false, reps: 1 },
];

export interface WebGpuBenchResult {
  backend: 'webgpu';
  adapter: AdapterInfo;
  /** `MxKxN` (nt: B stored [N, K]; nn: [K, N]) → GFLOP/s, median over the timed calls. */
  gemm_gflops: Record<string, number>;
  seconds: number;
  notes: Record<string, string>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function runWebGpuBench(log: (s: string) => void = () => {}, shapes = WEBGPU_SHAPES): WebGpuBenchResult {
  const be = defaultBackend() as WebGpuBackend;
  if (be.name !== 'webgpu')
    throw new GpgRlError(`runWebGpuBench: the default backend is ${be.name}, not webgpu`, 'GPG_BACKEND');
  const t0 = performance.now();
  const a = be.adapter;
  log(`adapter: ${a.description || `${a.vendor} ${a.device}`}; features ${a.features.join(', ') || 'none'}`);
  const gemm_gflops: Record<string, number> = {};
  // the pipeline compiles on first use (seconds on lavapipe): once, on a small product
  tidy(() => {
    gemmInto(Tensor.empty([64, 64]), Tensor.full([64, 64], 0.5), Tensor.full([64, 64], 0.25), { M: 64, N: 64, K: 64 });
    be.sync();
  });
  for (const { M, K, N, transB, reps } of shapes) {
    const key = `${M}x${K}x${N}${transB ? 'nt' : 'nn'}`;
    const secs = tidy(() => {
      const A = Tensor.full([M, K], 0.5);
      const B = Tensor.full(transB ? [N, K] : [K, N], 0.25);
      const C = Tensor.empty([M, N]);
      const once = () => {
        const t = performance.now();
        gemmInto(C, A, B, { M, N, K, transB });
        be.sync();
        return (performance.now() - t) / 1000;
      };
      be.sync();
      return Array.from({ length: reps }, once);
    });
    gemm_gflops[key] = Math.round((2 * M * N * K) / median(secs) / 1e8) / 10;
    log(`gemm ${key}: ${gemm_gflops[key]} GFLOP/s`);
  }
  return {
    backend: 'webgpu',
    adapter: a,
    gemm_gflops,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    notes: {
      not_measured:
        'train and decode tokens/s, the machine peak and the anchors ratios are measured on the cpu backend only so far',
    },
  };
}
