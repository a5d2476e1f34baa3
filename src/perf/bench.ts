/**
 * @module perf/bench
 * `gpg-rl bench [--shape FILE.json] [--batches 16,64,256] [--anchors]`: speed measured against the
 * machine's own bounds and, with the anchors, against HF transformers and llama.cpp on the same
 * machine, same weights, same run (DESIGN §7). Reports medians. Keys (issue 2/3/12):
 * peak_gflops, gemm_gflops{1024,2048,decode}; train_tokens_per_s / train_bf16_tokens_per_s
 * (forward + backward of the GPG loss, no optimizer step, on B 2 × T 512 for vocabularies above
 * 100k, else B 4 × T 256), train_lora_tokens_per_s, mfu; decode_tokens_per_s {"16", "64", "256"}
 * (prompt 128, +256 new tokens, groups of G = 8 identical prompts, prefill included, generated
 * tokens counted; generation weights as `generation_dtype: auto` picks them, decode_weights_dtype),
 * amx_peak_gflops (null without AMX), decode_bound_tokens_per_s / decode_bf16_bound_tokens_per_s (min of weight
 * streaming and FLOPs at peak, fp32 / bf16) and their decode_fraction_of_*; step_peak_rss_gb (VmHWM of
 * a fresh process running one full GPG step, perf/step.ts); torch_* (torch_reference.py where
 * /usr/bin/python3 has torch); hf_* / llamacpp_* and their *_ratio_vs_* (perf/anchors.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward, noGrad } from '../tensor/tape.ts';
import { gemmInto, setAutocast } from '../tensor/ops/matmul.ts';
import { defaultBackend, getNumThreads } from '../backend/index.ts';
import { CausalLM } from '../model/decoder.ts';
import type { ModelConfig } from '../model/config.ts';
import { applyLora } from '../model/lora.ts';
import { NativeOpError } from '../errors.ts';
import { generate, resolveGenerationDtype, type GenerationDtype } from '../generate/generate.ts';
import { Rng } from '../data/rng.ts';
import { BenchError, benchWeights, ensureAnchorFolder, readShape, type AnchorFolder } from './fixtures.ts';
import { checkAnchors, ensureGguf, hfDecode, hfTrain, llamaDecode, referenceEnv } from './anchors.ts';
import { measureStepInChild } from './step.ts';

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

/**
 * Median seconds per call: `warmup` untimed calls, then timed calls until `maxReps` are done or
 * `budgetS` seconds are spent (at least one). A loaded machine or a big model gets fewer runs,
 * never a figure from nothing.
 */
export function timeWithin(fn: () => void, maxReps: number, budgetS: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  const t0 = performance.now();
  while (ts.length < Math.max(1, maxReps)) {
    const t = performance.now();
    fn();
    ts.push((performance.now() - t) / 1000);
    if ((performance.now() - t0) / 1000 >= budgetS) break;
  }
  return median(ts);
}

/** Per measurement: at most 3 timed runs, no new one started after 120 s. */
export const TIMING = { maxReps: 3, budgetS: 120 } as const;

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

/** Forward+backward of the GPG loss −Σ(lp·A·m)/Σm on the standard shape, tokens/s (B×T per step). */
export function trainTokensPerS(
  model: CausalLM,
  B: number,
  T: number,
  bf16: boolean,
  reps: number = TIMING.maxReps,
  budgetS: number = TIMING.budgetS,
): number {
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
    // a backend that queues kernels (webgpu) has only queued the step when it returns: wait for it
    const be = defaultBackend();
    be.sync?.();
    const s = timeWithin(
      () => {
        step();
        be.sync?.();
      },
      reps,
      budgetS,
      1,
    );
    return (B * T) / s;
  } finally {
    setAutocast(prev);
    model.setRequiresGrad(false);
  }
}

/**
 * Batched sampling through the public `generate()`: B sequences = B/G distinct prompts of P random
 * ids, each given G times (a GPG group; prefix sharing applies wherever the engine has it), N new
 * tokens each (no eos), prefill included; generated tokens per second. `warmup: 'short'` warms
 * up with 2 new tokens at the same batch (the same kernels and shapes) instead of a whole run.
 */
export function decodeTokensPerS(
  model: CausalLM,
  B: number,
  P: number,
  N: number,
  opts: {
    G?: number;
    reps?: number;
    budgetS?: number;
    warmup?: 'full' | 'short';
    /** The generation weights' dtype (default float32, as generate()'s). */
    weightsDtype?: GenerationDtype;
  } = {},
): number {
  const G = opts.G ?? 1;
  if (!Number.isInteger(B / G)) throw new BenchError(`decode batch ${B} is not a multiple of the group size ${G}`);
  const r = new Rng(1);
  const V = model.cfg.vocabSize;
  const distinct = Array.from({ length: B / G }, () => Array.from({ length: P }, () => r.nextInt(V)));
  const prompts = distinct.flatMap((p) => Array.from({ length: G }, () => p));
  let tokens = 0;
  const run = (n: number) =>
    noGrad(() => {
      const g = generate(model, prompts, {
        maxNewTokens: n,
        temperature: 1,
        eosTokenIds: [],
        rng: r,
        weightsDtype: opts.weightsDtype,
      });
      tokens = g.tokens.reduce((s, t) => s + t.length, 0);
    });
  if (opts.warmup === 'short') run(2);
  const s = timeWithin(
    () => run(N),
    opts.reps ?? TIMING.maxReps,
    opts.budgetS ?? TIMING.budgetS,
    opts.warmup === 'short' ? 0 : 1,
  );
  return tokens / s;
}

/** Runs torch_reference.py with Debian's python3 when torch is importable; null otherwise. */
export function torchReference(shapePath: string, args: string[]): { tokens_per_s: number } | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py) || !existsSync(TORCH_REF)) return null;
  const env = referenceEnv(process.env);
  const probe = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8', env });
  if (probe.status !== 0) return null;
  const r = spawnSync(py, [TORCH_REF, '--config', shapePath, ...args], { encoding: 'utf8', timeout: 3_600_000, env });
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

export interface BenchOptions {
  /** Shape file (HF config fields); default ../shared/bench/small-50m.json. */
  shape?: string;
  /** Decode batch sizes (multiples of the group size 8); default 16, 64, 256. */
  batches?: number[];
  /** Skip the plain-PyTorch reference (torch_reference.py with /usr/bin/python3). */
  skipTorch?: boolean;
  /** Skip the fresh-process GPG step (step_peak_rss_gb null). */
  skipStep?: boolean;
  /** Measure the anchors (HF transformers, llama.cpp) in the same run. */
  anchors?: { root?: string; runSh?: string } | null;
}

/** The decode setting of the bench (issue 12): prompt 128, +256 new tokens, groups of G = 8. */
export const DECODE = { prompt: 128, new: 256, group: 8 } as const;
export const DEFAULT_BATCHES = [16, 64, 256];
/** One full GPG step for step_peak_rss_gb: G 8 × 4 prompts, 256 + 256 tokens. */
export const STEP = { prompts: 4, G: 8, promptTokens: 256, completionTokens: 256 } as const;

/** The training batch of a shape: B 2 × T 512 for vocabularies above 100k (real tokenizers), else B 4 × T 256. */
export function trainShape(vocabSize: number): { B: number; T: number } {
  return vocabSize > 100_000 ? { B: 2, T: 512 } : { B: 4, T: 256 };
}

/** Checks a list of decode batch sizes: positive multiples of the group size, no repeats. */
export function checkBatches(batches: number[], G: number = DECODE.group): number[] {
  if (batches.length === 0) throw new BenchError('--batches: give at least one batch size');
  for (const b of batches)
    if (!Number.isInteger(b) || b < G || b % G !== 0)
      throw new BenchError(`--batches: ${b} is not a positive multiple of the group size ${G} (e.g. 16,64,256)`);
  if (new Set(batches).size !== batches.length) throw new BenchError(`--batches: ${batches.join(',')} repeats a size`);
  return batches;
}

/** What the machine is: CPU model, family/model numbers, AVX-512 and its bf16 extension. */
export function cpuInfo(): {
  model: string;
  family: number | null;
  model_id: number | null;
  avx512: boolean;
  avx512_bf16: boolean;
  cores: number;
} {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: only the core count
  }
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null);
  return {
    model: field('model name') ?? 'unknown',
    family: num(field('cpu family')),
    model_id: num(field('model')),
    avx512: flags.has('avx512f'),
    avx512_bf16: flags.has('avx512_bf16'),
    cores: availableParallelism(),
  };
}

/**
 * FLOPs of one generated token: 2 per weight of every projection (attention, MLP, the lm_head;
 * not the embedding lookup unless it is tied, when it is the lm_head) plus attention's QKᵀ and PV
 * over `ctx` cached positions (2 · 2 · heads · head_dim · ctx per layer).
 */
export function decodeFlopsPerToken(cfg: ModelConfig, ctx: number): number {
  const C = cfg.hiddenSize,
    I = cfg.intermediateSize,
    L = cfg.numLayers,
    H = cfg.numHeads,
    KV = cfg.numKvHeads,
    D = cfg.headDim;
  const perLayer = C * H * D + 2 * C * KV * D + H * D * C + 3 * C * I;
  return 2 * (L * perLayer + cfg.vocabSize * C) + L * 4 * H * D * ctx;
}

const byBatch = (batches: number[], f: (b: number) => number | null): Record<string, number | null> =>
  Object.fromEntries(batches.map((b) => [String(b), f(b)]));

/** The whole benchmark; `log` receives progress lines (stderr in the CLI). */
export async function runBench(log: (s: string) => void = () => {}, opts: BenchOptions = {}): Promise<BenchResult> {
  const t0 = performance.now();
  const shapePath = opts.shape ?? STANDARD_SHAPE;
  const shape = readShape(shapePath);
  const batches = checkBatches(opts.batches ?? DEFAULT_BATCHES);
  const anchorOpts = opts.anchors ? { ...opts.anchors, threads: getNumThreads(), log } : null;
  let versions: ReturnType<typeof checkAnchors> | null = null;
  if (anchorOpts) versions = checkAnchors(anchorOpts); // before minutes of measurements
  const notes: Record<string, string> = {};
  // a reference or the step that fails (missing tokenizer, out of memory, a crash in the chroot)
  // becomes a null figure and a note, not the loss of everything measured before it
  const attempt = async <R>(key: string, fn: () => R | Promise<R>): Promise<R | null> => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof BenchError)) throw e;
      notes[key] = e.message;
      log(`${key}: ${e.message}`);
      return null;
    }
  };
  const cpu = cpuInfo();
  const out: BenchResult = {
    threads: getNumThreads(),
    cpu,
    native_build: benchmarks().build(),
    load_average_start: loadavg().map((x) => round(x, 2)),
  };
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
  // the bf16 matrix unit where the CPU has one (AMX): the compute limit of bf16 products there
  const amxPeaks = [0, 1, 2].map(() => benchmarks().matrixBf16PeakGflops?.(2e6) ?? null);
  const amxPeak = amxPeaks[0] === null ? null : median(amxPeaks as number[]);
  out.amx_peak_gflops = amxPeak === null ? null : round(amxPeak);

  // first, while this process holds no model: the child's memory limit comes from MemAvailable
  if (opts.skipStep) {
    out.step_peak_rss_gb = null;
    notes.step_peak_rss_gb = 'skipped (--no-step)';
  } else {
    log(
      `one full GPG step in a fresh process (G ${STEP.G} × ${STEP.prompts} prompts, ${STEP.promptTokens} + ${STEP.completionTokens} tokens, AdamW) ...`,
    );
    // micro-batch = G: the trainer's per_device_train_batch_size counts completions and must be a multiple of G
    const spec = { shape: shapePath, ...STEP, microBatch: STEP.G, threads: getNumThreads() };
    const step = await attempt('step_peak_rss_gb', () => measureStepInChild(spec));
    out.step_peak_rss_gb = step ? step.peak_rss_gb : null;
    out.step = step ? { ...step, micro_batch: STEP.G } : null;
  }

  log(`${shape.name}: random weights (seed 0) ...`);
  let folder: AnchorFolder | null = null;
  const model = (() => {
    const w = benchWeights(shape);
    if (anchorOpts) folder = ensureAnchorFolder(shape, w); // the anchors load these very bytes
    return CausalLM.fromHost(w.cfg, w.tensors);
  })();
  const params = model.numParameters();
  const { B, T } = trainShape(shape.cfg.vocabSize);
  out.model = { shape: basename(shapePath), params, vocab_size: shape.cfg.vocabSize, layers: shape.cfg.numLayers };
  out.train_batch = { B, T };
  log(`train fwd+bwd, ${(params / 1e6).toFixed(1)}M params, batch ${B} × ${T}, fp32 ...`);
  const train = trainTokensPerS(model, B, T, false);
  out.train_tokens_per_s = round(train);
  out.mfu = round((6 * params * train) / (peak * 1e9), 3);
  log('train fwd+bwd, mixed precision (bf16 GEMM operands) ...');
  let trainBf16: number | null = null;
  try {
    trainBf16 = trainTokensPerS(model, B, T, true);
  } catch (e) {
    // oneDNN 2.6 has bf16 matmul only with AVX-512 (avx512_core): none on e.g. Zen 3
    if (!(e instanceof NativeOpError)) throw e;
    notes.train_bf16_tokens_per_s = `bf16 GEMM unavailable on this CPU (${e.message})`;
    log(`bf16 skipped: ${e.message}`);
  }
  out.train_bf16_tokens_per_s = trainBf16 === null ? null : round(trainBf16);
  log('train fwd+bwd, LoRA r 16 / alpha 32 on every attention and MLP projection (fp32 base, frozen) ...');
  const lora = applyLora(model, { r: 16, alpha: 32 });
  try {
    const t = trainTokensPerS(model, B, T, false);
    out.train_lora_tokens_per_s = round(t);
    out.train_lora_speedup_vs_full = round(t / train, 2);
  } finally {
    lora.dispose();
    model.lora = null;
  }

  const { prompt: P, new: N, group: G } = DECODE;
  out.decode_setting = { prompt: P, new_tokens: N, group: G, batches, sampling: 'temperature 1, full vocabulary' };
  const dec: Record<string, number> = {};
  // the generation weights as a training run has them (generation_dtype: auto)
  const decDtype = resolveGenerationDtype('auto', params, defaultBackend());
  out.decode_weights_dtype = decDtype;
  for (const b of batches) {
    log(
      `decode: batch ${b} (${b / G} prompts × G ${G}), prompt ${P}, ${N} new tokens (sampling, prefill included) ...`,
    );
    dec[String(b)] = decodeTokensPerS(model, b, P, N, { G, warmup: 'short', weightsDtype: decDtype });
  }
  out.decode_tokens_per_s = byBatch(batches, (b) => round(dec[String(b)]!));
  const bw = benchmarks().memoryBandwidthGBs(512 << 20, 5);
  out.mem_bandwidth_gbs = round(bw, 1);
  // the bound of a decode step: its weights streamed once (b tokens per step) or its FLOPs at the
  // machine's peak, whichever is slower; fp32 weights at the measured fp32 FMA peak, and bf16
  // weights at twice it where the CPU has avx512_bf16 (vdpbf16ps: two bf16 products per fp32 lane),
  // or at the AMX peak where that is higher
  const flops = decodeFlopsPerToken(model.cfg, P + N / 2);
  out.decode_flops_per_token = Math.round(flops);
  const bound = (b: number, bytesPerParam: number, gflops: number) =>
    Math.min((b * bw * 1e9) / (params * bytesPerParam), (gflops * 1e9) / flops);
  const bf16Peak = Math.max(cpu.avx512_bf16 ? 2 * peak : peak, amxPeak ?? 0);
  out.decode_bound_tokens_per_s = byBatch(batches, (b) => round(bound(b, 4, peak)));
  out.decode_fraction_of_bound = byBatch(batches, (b) => round(dec[String(b)]! / bound(b, 4, peak), 3));
  out.decode_bf16_bound_tokens_per_s = byBatch(batches, (b) => round(bound(b, 2, bf16Peak)));
  out.decode_fraction_of_bf16_bound = byBatch(batches, (b) => round(dec[String(b)]! / bound(b, 2, bf16Peak), 3));
  model.dispose();

  // plain PyTorch (torch_reference.py) where /usr/bin/python3 has torch
  let tTrain: { tokens_per_s: number } | null = null;
  let tBf16: { tokens_per_s: number } | null = null;
  const tDec: Record<string, number | null> = {};
  if (!opts.skipTorch) {
    log('plain PyTorch reference (torch_reference.py, same shapes, same machine) ...');
    tTrain = torchReference(shapePath, ['--mode', 'train', '--batch', String(B), '--seq', String(T)]);
    if (tTrain) {
      tBf16 = torchReference(shapePath, [
        '--mode',
        'train',
        '--batch',
        String(B),
        '--seq',
        String(T),
        '--dtype',
        'bfloat16',
      ]);
      for (const b of batches)
        tDec[String(b)] =
          torchReference(shapePath, [
            '--mode',
            'decode',
            '--batch',
            String(b),
            '--prompt',
            String(P),
            '--new',
            String(N),
          ])?.tokens_per_s ?? null;
    } else notes.torch = 'PyTorch not available (/usr/bin/python3 with torch): torch_* fields are null';
  }
  out.torch_train_tokens_per_s = tTrain ? round(tTrain.tokens_per_s) : null;
  out.train_ratio_vs_torch = tTrain ? round(train / tTrain.tokens_per_s, 3) : null;
  out.torch_train_bf16_tokens_per_s = tBf16 ? round(tBf16.tokens_per_s) : null;
  out.train_bf16_ratio_vs_torch = tBf16 && trainBf16 !== null ? ratio(trainBf16, tBf16.tokens_per_s) : null;
  out.torch_decode_tokens_per_s = tTrain ? byBatch(batches, (b) => nullableRound(tDec[String(b)] ?? null)) : null;
  out.decode_ratio_vs_torch = tTrain ? byBatch(batches, (b) => ratio(dec[String(b)]!, tDec[String(b)] ?? null)) : null;

  if (anchorOpts && folder && versions) {
    const f: AnchorFolder = folder;
    out.anchors = { ...versions, model_dir: f.dir };
    log(
      `HF transformers ${versions.transformers} (torch ${versions.torch}): train fwd+bwd, batch ${B} × ${T}, fp32 ...`,
    );
    const hfT = await attempt('hf_train_tokens_per_s', () => hfTrain(anchorOpts, f.dir, B, T, false, TIMING));
    log('HF transformers: train fwd+bwd, autocast bf16 ...');
    const hfB = await attempt('hf_train_bf16_tokens_per_s', () => hfTrain(anchorOpts, f.dir, B, T, true, TIMING));
    const hfD: Record<string, number | null> = {};
    for (const b of batches) {
      log(`HF transformers: generate, batch ${b} (${b / G} prompts × num_return_sequences ${G}) ...`);
      hfD[String(b)] =
        (await attempt(`hf_decode_tokens_per_s.${b}`, () => hfDecode(anchorOpts, f.dir, b, P, N, G, TIMING)))
          ?.tokens_per_s ?? null;
    }
    out.hf_train_tokens_per_s = hfT ? round(hfT.tokens_per_s) : null;
    out.hf_train_bf16_tokens_per_s = hfB ? round(hfB.tokens_per_s) : null;
    out.hf_decode_tokens_per_s = byBatch(batches, (b) => nullableRound(hfD[String(b)] ?? null));
    out.hf_blas = hfT?.['blas'] ?? null;
    out.train_ratio_vs_hf = ratio(train, hfT?.tokens_per_s ?? null);
    out.train_bf16_ratio_vs_hf = trainBf16 === null ? null : ratio(trainBf16, hfB?.tokens_per_s ?? null);
    out.decode_ratio_vs_hf = byBatch(batches, (b) => ratio(dec[String(b)]!, hfD[String(b)] ?? null));
    const llama = await attempt('llamacpp_decode_tokens_per_s', () => {
      const gguf = ensureGguf(anchorOpts, f);
      log(
        `llama.cpp ${versions!.llamacpp}: llama-batched-bench -npp ${P} -ntg ${N} -npl ${batches.join(',')} (bf16 GGUF) ...`,
      );
      return llamaDecode(anchorOpts, gguf, batches, P, N).byBatch;
    });
    out.llamacpp_decode_tokens_per_s = llama ? byBatch(batches, (b) => round(llama[String(b)]!)) : null;
    out.decode_ratio_vs_llamacpp = llama ? byBatch(batches, (b) => ratio(dec[String(b)]!, llama[String(b)]!)) : null;
  } else {
    notes.anchors = 'not measured (pass --anchors)';
  }
  out.load_average_end = loadavg().map((x) => round(x, 2));
  out.seconds = round((performance.now() - t0) / 1000);
  out.notes = notes;
  return out;
}

function ratio(ours: number, theirs: number | null): number | null {
  return theirs && theirs > 0 ? round(ours / theirs, 3) : null;
}

function nullableRound(x: number | null): number | null {
  return x === null ? null : round(x);
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The default backend's machine measurements (a backend without them cannot be benchmarked). */
function benchmarks() {
  const b = defaultBackend();
  if (!b.benchmarks)
    throw new BenchError(`backend ${b.name} has no peak / bandwidth measurements; run gpg-rl bench on the cpu backend`);
  return b.benchmarks;
}
