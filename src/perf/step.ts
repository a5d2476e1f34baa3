/**
 * @module perf/step
 * `step_peak_rss_gb`: the peak resident memory (VmHWM of /proc/self/status) of a fresh process
 * that builds the bench model and runs one full GPG step through the trainer's own code
 * (`train()` with max_steps 1: generation of G completions for each prompt, rewards, the GPG loss
 * over micro-batches with backward, gradient clipping and the AdamW update). The step is stopped
 * from `onStep`, right after its metrics row, so the final save (weights + optimizer state
 * copied to the host) is not counted. `measureStepInChild` spawns `step-entry.mjs`, which calls
 * `stepMain`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CausalLM } from '../model/decoder.ts';
import { train } from '../rl/trainer.ts';
import { validateConfig } from '../rl/recipe.ts';
import { METRIC, type MetricsRow } from '../rl/metrics.ts';
import { benchTokenizer, benchWeights, BenchError, digitPrompts, readShape } from './fixtures.ts';

export interface StepSpec {
  /** Shape file (HF config fields). */
  shape: string;
  /** Prompts per step and completions per prompt (G). */
  prompts: number;
  G: number;
  promptTokens: number;
  completionTokens: number;
  /** Completions per backward pass (per_device_train_batch_size); gradient accumulation covers the rest. */
  microBatch: number;
  /** Compute threads (0 = all cores). */
  threads: number;
}

export interface StepReport {
  /** VmHWM right after the step, GB (10⁹ bytes). */
  peak_rss_gb: number;
  /** VmHWM after building the model, before the step, GB. */
  build_peak_rss_gb: number;
  seconds: number;
  generated_tokens: number;
  train_tokens_per_s: number;
  generation_tokens_per_s: number;
  params: number;
}

/** VmHWM / VmRSS of this process in bytes (Linux /proc/self/status). */
export function procMemory(): { hwm: number; rss: number } {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    throw new BenchError('step_peak_rss_gb needs /proc/self/status (Linux); run gpg-rl bench with --no-step elsewhere');
  }
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new BenchError(`/proc/self/status has no ${key} line`);
    return Number(m[1]) * 1024;
  };
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

/** Builds the model and runs one GPG step in this process (the child's body). */
export async function runGpgStep(spec: StepSpec): Promise<StepReport> {
  const shape = readShape(spec.shape);
  const tokenizer = benchTokenizer(shape.cfg.vocabSize);
  const model = (() => {
    const w = benchWeights(shape);
    return CausalLM.fromHost(w.cfg, w.tensors);
  })(); // the host copies are garbage from here on
  (globalThis as { gc?: () => void }).gc?.();
  const build = procMemory().hwm;
  const rows = digitPrompts(Math.max(64, spec.prompts * 4), spec.promptTokens, 7).map((prompt) => ({
    prompt,
    answer: null,
    fields: {},
  }));
  const outDir = mkdtempSync(join(tmpdir(), 'gpg-rl-bench-step-'));
  const total = spec.prompts * spec.G;
  const cfg = validateConfig(
    {
      model_name_or_path: `bench:${shape.name}`,
      dataset: { path: 'bench:digits', use_chat_template: false },
      output_dir: join(outDir, 'run'),
      loss_type: 'gpg',
      num_generations: spec.G,
      per_device_train_batch_size: spec.microBatch,
      gradient_accumulation_steps: total / spec.microBatch,
      max_prompt_length: spec.promptTokens,
      max_completion_length: spec.completionTokens,
      max_steps: 1,
      save_steps: 0,
      logging_steps: 1,
      log_completions: false,
      threads: spec.threads,
      // the issue-12 step: activation checkpointing per layer (micro-batches of per_device_train_batch_size)
      gradient_checkpointing: true,
    },
    'bench step',
    { checkModel: false, checkPaths: false },
  );
  const t0 = performance.now();
  let row: MetricsRow | null = null;
  let peak = 0;
  try {
    await train(cfg, {
      model,
      tokenizer,
      rows,
      // a reward that differs within every group (a hash of the completion's ids), so no β_th
      // resampling round runs and the step is one generation pass + one update
      rewardFns: { ids_hash: ({ completionIds }) => completionIds.map(idsHash) },
      log: () => {},
      // the peak is read when the step's metrics row is written (generation + training + AdamW),
      // before the run saves its model (whose host copies are not part of the step)
      onStep: (r) => {
        row = r;
        peak = procMemory().hwm;
        return 'stop';
      },
    });
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  if (!row) throw new BenchError('bench step: train() finished without reporting its step');
  if (!Number.isFinite(Number(row[METRIC.loss])))
    throw new BenchError(
      'bench step: the GPG step was skipped (no group with differing rewards), so nothing was trained',
    );
  const meanLen = Number(row[METRIC.meanLength]);
  return {
    peak_rss_gb: round(peak / 1e9, 2),
    build_peak_rss_gb: round(build / 1e9, 2),
    seconds: round((performance.now() - t0) / 1000, 1),
    generated_tokens: Math.round(meanLen * total),
    train_tokens_per_s: round(Number(row[METRIC.tokensPerSTraining]), 1),
    generation_tokens_per_s: round(Number(row[METRIC.tokensPerSGeneration]), 1),
    params: model.numParameters(),
  };
}

/** The child's entry: spec as JSON in argv, the report as the last stdout line. */
export async function stepMain(argv: string[]): Promise<void> {
  try {
    const spec = JSON.parse(argv[0] ?? '{}') as StepSpec;
    process.stdout.write(JSON.stringify(await runGpgStep(spec)) + '\n');
  } catch (e) {
    // one line for the parent, which reports it as its own error
    process.stdout.write(JSON.stringify({ error: (e as Error).message.split('\n')[0] }) + '\n');
    process.exitCode = 1;
  }
}

/** MemAvailable of /proc/meminfo in bytes (null where there is none). */
export function memAvailable(): number | null {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function childRss(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null; // exited
  }
}

/**
 * Runs one GPG step in a fresh Node process (so its VmHWM is that step's alone). A watchdog reads
 * the child's VmRSS every 200 ms and stops it above `maxRssBytes` (default: 90% of MemAvailable
 * at the start): on a shared machine a step that cannot fit is reported, not left to the OOM killer.
 */
export async function measureStepInChild(
  spec: StepSpec,
  opts: { maxRssBytes?: number; timeoutMs?: number } = {},
): Promise<StepReport> {
  const entry = fileURLToPath(new URL('./step-entry.mjs', import.meta.url));
  const avail = memAvailable();
  const limit = opts.maxRssBytes ?? (avail !== null ? 0.9 * avail : Infinity);
  const child = spawn(process.execPath, ['--expose-gc', entry, JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let stopped: string | null = null;
  let maxSeen = 0;
  const watch = setInterval(() => {
    const rss = child.pid !== undefined ? childRss(child.pid) : null;
    if (rss === null) return;
    maxSeen = Math.max(maxSeen, rss);
    if (rss > limit && !stopped) {
      stopped = `stopped at ${(rss / 1e9).toFixed(1)} GB resident, over the limit of ${(limit / 1e9).toFixed(1)} GB (90% of the memory available when it started)`;
      child.kill('SIGKILL');
    }
  }, 200);
  const timer = setTimeout(
    () => {
      stopped = `stopped after ${(opts.timeoutMs ?? 0) / 1000} s`;
      child.kill('SIGKILL');
    },
    opts.timeoutMs ?? 4 * 3600_000,
  );
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
    child.on('error', (e) => rej(new BenchError(`bench step child: ${e.message}`)));
    child.on('close', (c, sig) => res([c, sig]));
  }).finally(() => {
    clearInterval(watch);
    clearTimeout(timer);
  });
  if (stopped) throw new BenchError(`bench step (fresh process): ${stopped}`);
  const line = stdout.trim().split('\n').pop() ?? '';
  let out: (StepReport & { error?: undefined }) | { error: string } | null = null;
  try {
    out = JSON.parse(line) as StepReport | { error: string };
  } catch {
    out = null;
  }
  if (out?.error !== undefined) throw new BenchError(`bench step (fresh process): ${out.error}`);
  if (code !== 0 || !out) {
    const last = stderr.trim().split('\n').slice(-2).join(' | ');
    throw new BenchError(
      `bench step child exited with ${code ?? signal}${signal === 'SIGKILL' ? ` (killed at ≥ ${(maxSeen / 1e9).toFixed(1)} GB: out of memory?)` : ''}: ${last}`,
    );
  }
  return out;
}

/** A number in [0, 1) from token ids (golden-ratio hashing): distinct completions, distinct rewards. */
function idsHash(ids: number[]): number {
  let h = 0;
  for (const id of ids) h = (h * 0.6180339887 + id * 0.7548776662) % 1;
  return h;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
