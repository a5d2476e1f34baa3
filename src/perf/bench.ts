/**
 * @module perf/bench
 * `gpg-rl bench`: speed measured against the machine's own bounds and against PyTorch on the
 * same machine in the same run (DESIGN §7). Reports medians. Field names are fixed by issue 2/3:
 * peak_gflops, gemm_gflops{1024,2048,decode}, train_tokens_per_s, torch_train_tokens_per_s,
 * train_ratio_vs_torch, train_bf16_tokens_per_s, torch_train_bf16_tokens_per_s,
 * train_bf16_ratio_vs_torch, mfu, decode_tokens_per_s, torch_decode_tokens_per_s,
 * decode_ratio_vs_torch, decode_bound_tokens_per_s, decode_fraction_of_bound.
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward, noGrad } from '../tensor/tape.ts';
import { gemmInto, setAutocast } from '../tensor/ops/matmul.ts';
import { defaultBackend, getNumThreads } from '../backend/index.ts';
import { GpgRlError } from '../errors.ts';
import { CausalLM } from '../model/decoder.ts';
import { initModel } from '../model/init.ts';
import { generate } from '../generate/generate.ts';
import { Rng } from '../data/rng.ts';

export const SHARED = new URL('../../../shared/', import.meta.url).pathname;
export const STANDARD_SHAPE = join(SHARED, 'bench', 'small-50m.json');
const TORCH_REF = join(SHARED, 'bench', 'torch_reference.py');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Seconds per call of `reps` timed calls, after `warmup` untimed ones. */
function samples(fn: () => void, reps: number, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push((performance.now() - t) / 1000);
  }
  return ts;
}

const timeIt = (fn: () => void, reps: number, warmup = 1): number => median(samples(fn, reps, warmup));

/** One run of the register-only AVX-512 FMA loop on all cores (~0.1 s), GFLOP/s. */
export function measurePeak(): number {
  return benchmarks().fmaPeakGflops(4e7);
}

/** A GEMM shape of the benchmark: C[M,N] = A[M,K] · op(B), `reps` timed calls in all. */
export interface GemmShape {
  M: number;
  K: number;
  N: number;
  transB: boolean;
  reps: number;
}

/**
 * GEMM GFLOP/s per shape (median over all timed calls) and the FMA peak (median over `rounds`
 * runs), measured in alternation: each round runs the peak loop once and then a share of every
 * shape's calls. This machine is shared, and neighbours move both numbers by 5–20% from one
 * minute to the next; alternating them puts numerator and denominator under the same neighbours.
 */
export function gemmAndPeak(shapes: GemmShape[], rounds = 5): { peak: number; peakBest: number; gflops: number[] } {
  return tidy(() => {
    const ops = shapes.map(({ M, K, N, transB }) => {
      const A = Tensor.full([M, K], 0.5);
      const B = Tensor.full(transB ? [N, K] : [K, N], 0.25);
      const C = Tensor.empty([M, N]);
      return () => gemmInto(C, A, B, { M, N, K, transB });
    });
    const peaks: number[] = [];
    const times: number[][] = shapes.map(() => []);
    for (let r = 0; r < rounds; r++) {
      peaks.push(measurePeak());
      shapes.forEach((sh, i) => times[i]!.push(...samples(ops[i]!, Math.ceil(sh.reps / rounds), 2)));
    }
    return {
      peak: median(peaks),
      peakBest: Math.max(...peaks),
      gflops: shapes.map((sh, i) => (2 * sh.M * sh.N * sh.K) / median(times[i]!) / 1e9),
    };
  });
}

function readShape(): Record<string, unknown> {
  return JSON.parse(readFileSync(STANDARD_SHAPE, 'utf8')) as Record<string, unknown>;
}

/** Forward+backward of the GPG loss −Σ(lp·A·m)/Σm on the standard shape, tokens/s (B×T per step). */
export function trainTokensPerS(model: CausalLM, B: number, T: number, bf16: boolean, reps = 3): number {
  const V = model.cfg.vocabSize;
  const r = new Rng(0);
  const ids = Int32Array.from({ length: B * T }, () => r.nextInt(V));
  const mask = new Int32Array(B * T).fill(1);
  // completion mask as torch_reference.py: the first T/4 targets are prompt
  const select = new Uint8Array(B * (T - 1));
  for (let b = 0; b < B; b++) for (let t = Math.floor(T / 4); t < T - 1; t++) select[b * (T - 1) + t] = 1;
  const adv = Array.from({ length: B }, () => r.next() * 2 - 1);
  model.setRequiresGrad(true);
  const prev = setAutocast(bf16);
  try {
    const step = () =>
      tidy(() => {
        const { logps, index } = model.tokenLogps({ ids, mask, B, T }, { select });
        const n = index.length;
        const seed = new Float32Array(n);
        for (let i = 0; i < n; i++) seed[i] = -adv[Math.floor(index[i]! / (T - 1))]! / n;
        backward(logps, Tensor.fromArray(seed, [n]));
        for (const p of model.parameters()) {
          p.grad?.dispose();
          p.grad = null;
        }
      });
    const s = timeIt(step, reps, 1);
    return (B * T) / s;
  } finally {
    setAutocast(prev);
    model.setRequiresGrad(false);
  }
}

/** Batched sampling with a KV cache: B prompts of P tokens, N new tokens each, prefill included. */
export function decodeTokensPerS(model: CausalLM, B: number, P: number, N: number, reps = 3): number {
  const r = new Rng(1);
  const V = model.cfg.vocabSize;
  const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => r.nextInt(V)));
  const s = timeIt(
    () => noGrad(() => generate(model, prompts, { maxNewTokens: N, temperature: 1, eosTokenIds: [], rng: r })),
    reps,
    1,
  );
  return (B * N) / s;
}

/** Runs torch_reference.py with Debian's python3 when torch is importable; null otherwise. */
export function torchReference(args: string[]): { tokens_per_s: number } | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py) || !existsSync(TORCH_REF)) return null;
  const probe = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return null;
  const r = spawnSync(py, [TORCH_REF, '--config', STANDARD_SHAPE, ...args], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return null;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as { tokens_per_s: number };
  } catch {
    return null;
  }
}

export interface BenchResult {
  [k: string]: unknown;
}

/** The whole benchmark; `log` receives progress lines (stderr in the CLI). */
export function runBench(log: (s: string) => void = () => {}, opts: { skipTorch?: boolean } = {}): BenchResult {
  const out: BenchResult = { threads: getNumThreads() };
  log('fp32 FMA peak, in alternation with GEMM 1024³, 2048³ and decode 8×1024×4096 ...');
  // gemm_gflops: the layout every Linear layer uses (x [M,K] · Wᵀ with W stored [N,K], as HF);
  // gemm_gflops_nn: both operands plain row-major, for comparison.
  const { peak, peakBest, gflops } = gemmAndPeak([
    { M: 1024, K: 1024, N: 1024, transB: true, reps: 30 },
    { M: 2048, K: 2048, N: 2048, transB: true, reps: 15 },
    { M: 8, K: 1024, N: 4096, transB: true, reps: 500 },
    { M: 1024, K: 1024, N: 1024, transB: false, reps: 30 },
    { M: 2048, K: 2048, N: 2048, transB: false, reps: 15 },
  ]);
  const [g1024, g2048, gdec, n1024, n2048] = gflops as [number, number, number, number, number];
  out.peak_gflops = round(peak);
  out.peak_gflops_best = round(peakBest);
  out.gemm_gflops = { 1024: round(g1024), 2048: round(g2048), decode: round(gdec) };
  out.gemm_fraction_of_peak = {
    1024: round(g1024 / peak, 3),
    2048: round(g2048 / peak, 3),
    decode: round(gdec / peak, 3),
  };
  out.gemm_gflops_nn = { 1024: round(n1024), 2048: round(n2048) };

  const shape = readShape();
  const init = initModel(shape, { seed: 0, source: STANDARD_SHAPE });
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  const params = model.numParameters();
  out.model = { shape: 'small-50m.json', params };
  log(`train fwd+bwd, ${(params / 1e6).toFixed(1)}M params, batch 4 × 256, fp32 ...`);
  const train = trainTokensPerS(model, 4, 256, false);
  out.train_tokens_per_s = round(train);
  out.mfu = round((6 * params * train) / (peak * 1e9), 3);
  log('train fwd+bwd, mixed precision (bf16 GEMM operands) ...');
  const trainBf16 = trainTokensPerS(model, 4, 256, true);
  out.train_bf16_tokens_per_s = round(trainBf16);
  log('decode: batch 16, prompt 64, 128 new tokens (sampling, prefill included) ...');
  const dec = decodeTokensPerS(model, 16, 64, 128);
  out.decode_tokens_per_s = round(dec);
  const bw = benchmarks().memoryBandwidthGBs(512 << 20, 5);
  const weightBytes = params * 4;
  const bound = (16 * bw * 1e9) / weightBytes;
  out.mem_bandwidth_gbs = round(bw, 1);
  out.decode_bound_tokens_per_s = round(bound);
  out.decode_fraction_of_bound = round(dec / bound, 3);
  model.dispose();

  let tTrain: { tokens_per_s: number } | null = null;
  let tBf16: { tokens_per_s: number } | null = null;
  let tDec: { tokens_per_s: number } | null = null;
  if (!opts.skipTorch) {
    log('PyTorch reference (same shapes, same machine) ...');
    tTrain = torchReference(['--mode', 'train', '--batch', '4', '--seq', '256']);
    if (tTrain) {
      tBf16 = torchReference(['--mode', 'train', '--batch', '4', '--seq', '256', '--dtype', 'bfloat16']);
      tDec = torchReference(['--mode', 'decode', '--batch', '16', '--prompt', '64', '--new', '128']);
    } else log('PyTorch not available (/usr/bin/python3 with torch): torch fields are null');
  }
  out.torch_train_tokens_per_s = tTrain ? round(tTrain.tokens_per_s) : null;
  out.train_ratio_vs_torch = tTrain ? round(train / tTrain.tokens_per_s, 3) : null;
  out.torch_train_bf16_tokens_per_s = tBf16 ? round(tBf16.tokens_per_s) : null;
  out.train_bf16_ratio_vs_torch = tBf16 ? round(trainBf16 / tBf16.tokens_per_s, 3) : null;
  out.torch_decode_tokens_per_s = tDec ? round(tDec.tokens_per_s) : null;
  out.decode_ratio_vs_torch = tDec ? round(dec / tDec.tokens_per_s, 3) : null;
  return out;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The default backend's machine measurements (a backend without them cannot be benchmarked). */
function benchmarks() {
  const b = defaultBackend();
  if (!b.benchmarks)
    throw new GpgRlError(
      `backend ${b.name} has no peak / bandwidth measurements; run gpg-rl bench on the cpu backend`,
      'GPG_BENCH',
    );
  return b.benchmarks;
}
