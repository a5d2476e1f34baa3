/**
 * @module perf/webgpu
 * `gpg-rl bench --device webgpu [--shape FILE.json] [--batches 16] [--no-cpu]`: the adapter
 * (vendor, device, features, limits); GEMM GFLOP/s on it, in the Linear layout (x [M,K] · Wᵀ, W
 * stored [N,K]) and plain row-major, each call timed to completion (the host waits for the device
 * after every product: WebGPU queues work, so timing the call alone would time the queueing);
 * `train_tokens_per_s` and `decode_tokens_per_s` through the CPU bench's own functions
 * (perf/bench.ts trainTokensPerS / decodeTokensPerS: forward + backward of the GPG loss on the
 * shape's train batch; generate() at each batch, prompt 128, +256 new tokens, groups of G 8,
 * prefill included) with the model on the WebGPU backend; and, unless `cpu: false`, the same
 * two figures on the CPU backend in the same run and the ratios webgpu / cpu. The default shape is
 * bench/webgpu-tiny.json (0.9M parameters: small-50m takes minutes per training call on lavapipe,
 * software Vulkan). The machine peak and the anchors' ratios are CPU-only (`notes` says so).
 */
import { basename, join } from 'node:path';
import { defaultBackend, loadBackend, setDefaultBackend, type Backend } from '../backend/index.ts';
import type { AdapterInfo, WebGpuBackend } from '../backend/webgpu/index.ts';
import { GpgRlError } from '../errors.ts';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { gemmInto } from '../tensor/ops/matmul.ts';
import { CausalLM } from '../model/decoder.ts';
import { benchWeights, readShape, REPO_ROOT, type BenchShape } from './fixtures.ts';
import { checkBatches, decodeTokensPerS, DECODE, trainShape, trainTokensPerS } from './bench.ts';

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

/** The default model shape of the WebGPU bench: 2 layers, hidden 128, vocabulary 4096. */
export const WEBGPU_SHAPE = join(REPO_ROOT, 'bench', 'webgpu-tiny.json');
/** The default decode batch of the WebGPU bench (one GPG batch of 2 prompts × G 8). */
export const WEBGPU_BATCHES = [16];
/** Per measurement: one timed run after the warm-up, no new one started after 60 s. */
export const WEBGPU_TIMING = { maxReps: 1, budgetS: 60 } as const;

export interface WebGpuBenchOptions {
  /** GEMM shapes (default WEBGPU_SHAPES). */
  gemm?: WebGpuShape[];
  /** Model shape file (default bench/webgpu-tiny.json). */
  shape?: string;
  /** Decode batch sizes, multiples of the group size (default [16]). */
  batches?: number[];
  /** Also measure the CPU backend in this run, for the ratios (default true). */
  cpu?: boolean;
  /** The decode setting (default perf/bench.ts DECODE: prompt 128, +256 new tokens, G 8). */
  decode?: { prompt: number; new: number; group: number };
  /** Timed runs per measurement (default WEBGPU_TIMING). */
  timing?: { maxReps: number; budgetS: number };
}

export interface WebGpuBenchResult {
  backend: 'webgpu';
  adapter: AdapterInfo;
  /** `MxKxN` (nt: B stored [N, K]; nn: [K, N]) → GFLOP/s, median over the timed calls. */
  gemm_gflops: Record<string, number>;
  model: { shape: string; params: number; vocab_size: number; layers: number };
  train_batch: { B: number; T: number };
  /** Forward + backward of the GPG loss on the WebGPU backend, B·T tokens per call. */
  train_tokens_per_s: number;
  decode_setting: { prompt: number; new_tokens: number; group: number; batches: number[]; sampling: string };
  /** Batch → generated tokens/s through generate() on the WebGPU backend, prefill included. */
  decode_tokens_per_s: Record<string, number>;
  /** The same on the CPU backend in this run (null with --no-cpu). */
  cpu_train_tokens_per_s: number | null;
  cpu_decode_tokens_per_s: Record<string, number> | null;
  /** webgpu / cpu. */
  train_ratio_vs_cpu: number | null;
  decode_ratio_vs_cpu: Record<string, number> | null;
  seconds: number;
  notes: Record<string, string>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
/** Three significant digits (a software adapter's ratio to the CPU can be 0.001). */
const sig3 = (x: number): number => Number(x.toPrecision(3));

/** GEMM GFLOP/s per shape on the default (WebGPU) backend, each call timed to completion. */
function gemmGflops(be: WebGpuBackend, shapes: WebGpuShape[], log: (s: string) => void): Record<string, number> {
  const out: Record<string, number> = {};
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
    out[key] = Math.round((2 * M * N * K) / median(secs) / 1e8) / 10;
    log(`gemm ${key}: ${out[key]} GFLOP/s`);
  }
  return out;
}

/** train and decode tokens/s of the bench model built on `be` (made the default meanwhile). */
function modelTokensPerS(
  be: Backend,
  shape: BenchShape,
  batches: number[],
  decode: { prompt: number; new: number; group: number },
  timing: { maxReps: number; budgetS: number },
  log: (s: string) => void,
): { params: number; train: number; decode: Record<string, number> } {
  const prev = setDefaultBackend(be);
  const model = (() => {
    const w = benchWeights(shape);
    return CausalLM.fromHost(w.cfg, w.tensors);
  })();
  try {
    const { B, T } = trainShape(shape.cfg.vocabSize);
    log(`${be.name}: train fwd+bwd, batch ${B} × ${T}, fp32 ...`);
    const train = trainTokensPerS(model, B, T, false, timing.maxReps, timing.budgetS);
    log(`${be.name}: train ${round(train)} tokens/s`);
    const dec: Record<string, number> = {};
    for (const b of batches) {
      log(
        `${be.name}: decode batch ${b} (${b / decode.group} prompts × G ${decode.group}), prompt ${decode.prompt}, ${decode.new} new tokens ...`,
      );
      dec[String(b)] = decodeTokensPerS(model, b, decode.prompt, decode.new, {
        G: decode.group,
        reps: timing.maxReps,
        budgetS: timing.budgetS,
        warmup: 'short',
      });
      log(`${be.name}: decode ${b}: ${round(dec[String(b)]!)} tokens/s`);
    }
    return { params: model.numParameters(), train, decode: dec };
  } finally {
    model.dispose();
    if (prev) setDefaultBackend(prev);
  }
}

export async function runWebGpuBench(
  log: (s: string) => void = () => {},
  opts: WebGpuBenchOptions = {},
): Promise<WebGpuBenchResult> {
  const be = defaultBackend() as WebGpuBackend;
  if (be.name !== 'webgpu')
    throw new GpgRlError(`runWebGpuBench: the default backend is ${be.name}, not webgpu`, 'GPG_BACKEND');
  const t0 = performance.now();
  const shapePath = opts.shape ?? WEBGPU_SHAPE;
  const shape = readShape(shapePath);
  const decode = opts.decode ?? DECODE;
  const batches = checkBatches(opts.batches ?? WEBGPU_BATCHES, decode.group);
  const timing = opts.timing ?? WEBGPU_TIMING;
  const a = be.adapter;
  log(`adapter: ${a.description || `${a.vendor} ${a.device}`}; features ${a.features.join(', ') || 'none'}`);
  const gemm_gflops = gemmGflops(be, opts.gemm ?? WEBGPU_SHAPES, log);
  const gpu = modelTokensPerS(be, shape, batches, decode, timing, log);
  const { B, T } = trainShape(shape.cfg.vocabSize);
  let cpu: ReturnType<typeof modelTokensPerS> | null = null;
  const notes: Record<string, string> = {
    not_measured: 'the machine peak, mfu and the anchors ratios are measured on the cpu backend only',
  };
  if (opts.cpu === false) notes.cpu = 'not measured (--no-cpu)';
  else cpu = modelTokensPerS(await loadBackend('cpu'), shape, batches, decode, timing, log);
  const byBatch = (f: (b: string) => number) => Object.fromEntries(batches.map((b) => [String(b), f(String(b))]));
  return {
    backend: 'webgpu',
    adapter: a,
    gemm_gflops,
    model: {
      shape: basename(shapePath),
      params: gpu.params,
      vocab_size: shape.cfg.vocabSize,
      layers: shape.cfg.numLayers,
    },
    train_batch: { B, T },
    train_tokens_per_s: round(gpu.train),
    decode_setting: {
      prompt: decode.prompt,
      new_tokens: decode.new,
      group: decode.group,
      batches,
      sampling: 'temperature 1, full vocabulary',
    },
    decode_tokens_per_s: byBatch((b) => round(gpu.decode[b]!)),
    cpu_train_tokens_per_s: cpu ? round(cpu.train) : null,
    cpu_decode_tokens_per_s: cpu ? byBatch((b) => round(cpu.decode[b]!)) : null,
    train_ratio_vs_cpu: cpu ? sig3(gpu.train / cpu.train) : null,
    decode_ratio_vs_cpu: cpu ? byBatch((b) => sig3(gpu.decode[b]! / cpu.decode[b]!)) : null,
    seconds: round((performance.now() - t0) / 1000),
    notes,
  };
}
