/**
 * @module rl/metrics
 * The metric names of DESIGN §8 (TRL names, slash-namespaced), the exact key set of one
 * metrics.jsonl row for a given config, an append-only writer (one flat JSON object per step,
 * fsync'ed), a reader tolerant of a torn last line, and the console progress line / bar.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';
import { GpgRlError } from '../errors.ts';
import { timingText } from '../io/progress.ts';

export { ProgressBar } from '../io/progress.ts';

/** Fixed metric names (DESIGN §8), verbatim. */
export const METRIC = {
  step: 'step',
  loss: 'loss',
  gradNorm: 'grad_norm',
  learningRate: 'learning_rate',
  reward: 'reward',
  rewardStd: 'reward_std',
  fracRewardZeroStd: 'frac_reward_zero_std',
  meanLength: 'completions/mean_length',
  minLength: 'completions/min_length',
  maxLength: 'completions/max_length',
  clippedRatio: 'completions/clipped_ratio',
  entropy: 'entropy',
  samplingLogpDiffMean: 'sampling/sampling_logp_difference/mean',
  samplingLogpDiffMax: 'sampling/sampling_logp_difference/max',
  /** Optimizer steps the weights that sampled the step's completions lag the policy (max_staleness). */
  staleness: 'sampling/staleness',
  kl: 'kl',
  clipRatioRegionMean: 'clip_ratio/region_mean',
  inverseAlpha: 'gpg/inverse_alpha',
  validGroups: 'gpg/valid_groups',
  resampleRounds: 'gpg/resample_rounds',
  skippedSteps: 'gpg/skipped_steps',
  tokensPerSGeneration: 'tokens_per_s/generation',
  tokensPerSTraining: 'tokens_per_s/training',
  timeS: 'time_s',
} as const;

/** `rewards/<fn>/mean` and `rewards/<fn>/std`. */
export const rewardMeanKey = (fn: string) => `rewards/${fn}/mean`;
export const rewardStdKey = (fn: string) => `rewards/${fn}/std`;

export interface MetricKeyOptions {
  /** Reward function names (config.ts `rewardFuncName`), in config order. */
  rewardFns: readonly string[];
  /** The algorithm family's columns (Algorithm.metricKeys), placed after `entropy`. */
  algorithmKeys: readonly string[];
}

/** The exact keys of every metrics.jsonl row for this run, in a stable order. */
export function metricKeys(o: MetricKeyOptions): string[] {
  const m = METRIC;
  const keys: string[] = [m.step, m.loss, m.gradNorm, m.learningRate, m.reward, m.rewardStd];
  for (const fn of o.rewardFns) keys.push(rewardMeanKey(fn), rewardStdKey(fn));
  keys.push(m.fracRewardZeroStd, m.meanLength, m.minLength, m.maxLength, m.clippedRatio, m.entropy);
  keys.push(m.samplingLogpDiffMean, m.samplingLogpDiffMax, m.staleness);
  keys.push(...o.algorithmKeys);
  keys.push(m.tokensPerSGeneration, m.tokensPerSTraining, m.timeS);
  if (new Set(keys).size !== keys.length)
    throw new GpgRlError(
      `metricKeys: duplicate metric name among ${keys.join(', ')} (two reward functions share a name?)`,
    );
  return keys;
}

/** One row: metric name → number (NaN / non-finite is written as null). */
export type MetricsRow = Record<string, number>;

/**
 * Appends one flat JSON object per step to metrics.jsonl with exactly `keys` (in that order).
 * Each row is one write() of one line followed by fsync, so a crash leaves at most a torn last
 * line, which `readMetrics` drops.
 */
export class MetricsWriter {
  readonly path: string;
  readonly keys: readonly string[];
  private fd: number | null;

  constructor(path: string, keys: readonly string[]) {
    this.path = path;
    this.keys = keys;
    this.fd = openSync(path, 'a');
  }

  write(row: MetricsRow): void {
    if (this.fd === null) throw new GpgRlError(`MetricsWriter: ${this.path} is closed`);
    const missing = this.keys.filter((k) => !(k in row));
    const extra = Object.keys(row).filter((k) => !this.keys.includes(k));
    if (missing.length || extra.length) {
      throw new GpgRlError(
        `MetricsWriter: step ${row.step}: row keys differ from DESIGN §8 (missing: ${missing.join(', ') || 'none'}; unexpected: ${extra.join(', ') || 'none'})`,
      );
    }
    const ordered: Record<string, number | null> = {};
    for (const k of this.keys) ordered[k] = Number.isFinite(row[k]) ? row[k]! : null;
    writeSync(this.fd, JSON.stringify(ordered) + '\n');
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads metrics.jsonl; a torn (unparseable) LAST line from a crash is dropped, any other bad line throws. */
export function readMetrics(path: string): Record<string, number | null>[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: Record<string, number | null>[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line));
    } catch {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      if (!last)
        throw new GpgRlError(
          `${path}:${i + 1}: not a JSON object; the metrics file is corrupted (delete the line or the run folder)`,
        );
    }
  });
  return out;
}

/** For --resume: keep only rows with step ≤ lastStep (atomic rewrite), so the log matches the checkpoint. */
export function truncateMetrics(path: string, lastStep: number): void {
  if (!existsSync(path)) return;
  const keep = readMetrics(path).filter((r) => (r.step ?? Infinity) <= lastStep);
  writeFileAtomic(path, keep.map((r) => JSON.stringify(r) + '\n').join(''));
}

// ---------------------------------------------------------------------------------------------
// console output

function num(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(digits);
}

/**
 * nanoGPT-style one-line summary of a metrics row: `step 3/100: loss 0.0123, reward 0.450 ± 0.210, …`,
 * ending with the elapsed time and ETA when `timing` is given.
 */
export function formatProgress(
  row: Record<string, number | null>,
  totalSteps?: number,
  timing?: { elapsedS: number; etaS: number },
): string {
  const m = METRIC;
  const parts = [`loss ${num(row[m.loss])}`, `reward ${num(row[m.reward], 3)} ± ${num(row[m.rewardStd], 3)}`];
  if (row[m.inverseAlpha] !== undefined) parts.push(`α⁻¹ ${num(row[m.inverseAlpha], 2)}`);
  if (row[m.kl] !== undefined) parts.push(`kl ${num(row[m.kl])}`);
  parts.push(
    `len ${num(row[m.meanLength], 0)}`,
    `grad ${num(row[m.gradNorm], 3)}`,
    `lr ${num(row[m.learningRate])}`,
    `${num(row[m.timeS], 2)} s`,
    `gen ${num(row[m.tokensPerSGeneration], 0)} tok/s`,
    `train ${num(row[m.tokensPerSTraining], 0)} tok/s`,
  );
  const skipped = row[m.skippedSteps];
  if (skipped) parts.push(`skipped ${skipped}`);
  if (timing) parts.push(timingText(timing));
  return `step ${row[m.step]}${totalSteps ? `/${totalSteps}` : ''}: ${parts.join(', ')}`;
}
