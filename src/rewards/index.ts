/**
 * @module rewards
 * The reward registry and runner. A reward is a TRL-like function over a batch of completions
 * returning one number per completion, or null where it does not apply to that row.
 * `resolveRewards` turns the recipe's `reward_funcs` (built-in names or user module specs) and
 * `reward_weights` into named, weighted functions; `scoreCompletions` runs them all concurrently
 * with a timeout and returns the weighted total (nulls count as 0, like TRL's nansum), each
 * function's scores (NaN where null) and failure counts. A reward that throws, times out or
 * returns the wrong shape scores 0 for that whole call, is counted, and never stops the run.
 */
import { ConfigError, RewardError } from '../errors.ts';
import type { PromptRow } from '../data/dataset.ts';
import { accuracyReward, NumericVerifier, type AnswerVerifier } from './accuracy.ts';
import { cosineReward, type CosineParams } from './cosine.ts';
import { formatReward } from './format.ts';
import { gsm8kReward } from './gsm8k.ts';
import { loadUserReward, type UserRewardSpec } from './user.ts';

export type { AnswerVerifier } from './accuracy.ts';
export { NumericVerifier } from './accuracy.ts';

/**
 * One batch of completions, aligned by index: completion i answers prompts[i] (a prompt repeated G
 * times for its group), completionIds[i] its token ids, and every dataset row field as a column
 * (e.g. `answer: string[]`).
 */
export interface RewardInput {
  prompts: string[];
  completions: string[];
  completionIds: number[][];
  [rowField: string]: unknown[];
}

/**
 * What the runner passes a reward beside its input: `signal` aborts at the time limit (a reward
 * that honours it returns what it has, see NamedReward.abortable), `note` reports a partial
 * failure (some completions scored 0 because their comparison timed out) for the step's log.
 */
export interface RewardCallContext {
  signal?: AbortSignal;
  note?: (message: string) => void;
}

/** null = not applicable to this row (shown as NaN in per-function scores, 0 in the total). */
export type RewardFn = (input: RewardInput, ctx?: RewardCallContext) => (number | null)[] | Promise<(number | null)[]>;

export interface NamedReward {
  name: string;
  fn: RewardFn;
  weight: number;
  /**
   * The function settles promptly once `ctx.signal` aborts (user rewards in their worker, the
   * verifier rewards, which then score only the unfinished completions 0), so the runner waits
   * for it instead of dropping the whole call at the time limit.
   */
  abortable?: boolean;
  /** Releases what the reward holds (a user reward's worker thread). */
  close?: () => Promise<void>;
}

/** Closes every reward that holds something (worker threads); never throws. */
export async function closeRewards(rewards: readonly NamedReward[]): Promise<void> {
  await Promise.all(rewards.map((r) => r.close?.().catch(() => undefined)));
}

export const BUILTIN_REWARDS = ['accuracy', 'format', 'cosine', 'gsm8k'] as const;
export type BuiltinRewardName = (typeof BUILTIN_REWARDS)[number];

export type RewardSpec = string | UserRewardSpec;

export interface RewardOptions {
  /** the recipe's folder: user reward modules resolve against it */
  baseDir: string;
  /** cosine_max_len (default 1000) */
  cosineMaxLen?: number;
  /** the other cosine parameters (open-r1 defaults) */
  cosine?: Partial<Omit<CosineParams, 'maxLen'>>;
  /** format_pattern (default: open-rs's one-"\n</think>\n" check) */
  formatPattern?: string;
  /** the answer verifier for accuracy and cosine; default the NumericVerifier stand-in. The caller owns (closes) it. */
  verifier?: AnswerVerifier;
  /** row field with gold answers; default 'answer' */
  answerField?: string;
}

/** A built-in reward by name. */
export function builtinReward(name: string, opts: Partial<RewardOptions> = {}): RewardFn {
  const verifier = opts.verifier ?? new NumericVerifier();
  const answerField = opts.answerField;
  switch (name) {
    case 'accuracy':
      return accuracyReward({ verifier, answerField });
    case 'format':
      return formatReward({ pattern: opts.formatPattern });
    case 'cosine':
      return cosineReward({ verifier, answerField, ...opts.cosine, maxLen: opts.cosineMaxLen });
    case 'gsm8k':
      return gsm8kReward({ answerField });
    default:
      throw new ConfigError(
        `reward_funcs: unknown built-in reward '${name}'; use one of ${BUILTIN_REWARDS.join(', ')} or { path: ./my_reward.ts, export: name }`,
      );
  }
}

/**
 * The recipe's reward_funcs + reward_weights → named weighted rewards. Built-ins share one
 * verifier (opts.verifier, or one stand-in). Weights default to 1 each.
 */
export async function resolveRewards(
  specs: RewardSpec[],
  weights: number[] | undefined,
  opts: RewardOptions,
): Promise<NamedReward[]> {
  if (specs.length === 0)
    throw new ConfigError('reward_funcs: at least one reward function is needed (e.g. [accuracy])');
  if (weights !== undefined) {
    if (weights.length !== specs.length) {
      throw new ConfigError(
        `reward_weights: has ${weights.length} entries but reward_funcs has ${specs.length}; give one weight per reward`,
      );
    }
    weights.forEach((w, i) => {
      if (typeof w !== 'number' || !Number.isFinite(w))
        throw new ConfigError(`reward_weights[${i}]: must be a finite number (got ${String(w)})`);
    });
  }
  const shared = { ...opts, verifier: opts.verifier ?? new NumericVerifier() };
  const out: NamedReward[] = [];
  try {
    await resolveEach(specs, weights, opts, shared, out);
  } catch (e) {
    await closeRewards(out); // a later spec failed: stop the workers already started
    throw e;
  }
  return out;
}

/** Rewards whose functions honour the abort signal (they score unfinished comparisons 0). */
const ABORTABLE_BUILTINS = new Set(['accuracy', 'cosine']);

async function resolveEach(
  specs: RewardSpec[],
  weights: number[] | undefined,
  opts: RewardOptions,
  shared: RewardOptions,
  out: NamedReward[],
): Promise<void> {
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    const weight = weights?.[i] ?? 1;
    if (typeof spec === 'string') {
      out.push({ name: spec, fn: builtinReward(spec, shared), weight, abortable: ABORTABLE_BUILTINS.has(spec) });
    } else {
      if (spec === null || typeof spec !== 'object' || typeof spec.path !== 'string') {
        throw new ConfigError(
          `reward_funcs[${i}]: must be a built-in name or { path, export?, name? } (got ${JSON.stringify(spec)})`,
        );
      }
      const { name, fn, close, abortable } = await loadUserReward(spec, opts.baseDir);
      out.push({ name, fn, weight, close, abortable });
    }
  }
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.name))
      throw new ConfigError(
        `reward_funcs: two rewards are named '${r.name}'; give one a distinct name: (metrics are logged per name)`,
      );
    seen.add(r.name);
  }
}

/**
 * The reward input for a batch: `rows[i]` is the dataset row of completion i. Every row field
 * becomes a column, and `answer` holds the loader's extracted gold answer (overriding a raw
 * `answer` field, which stays reachable through the recipe's own field name if it differs).
 */
export function buildRewardInput(
  rows: readonly PromptRow[],
  prompts: string[],
  completions: string[],
  completionIds: number[][],
): RewardInput {
  const n = completions.length;
  if (rows.length !== n || prompts.length !== n || completionIds.length !== n) {
    throw new RewardError(
      `buildRewardInput: ${rows.length} rows, ${prompts.length} prompts, ${completions.length} completions, ${completionIds.length} id lists; all must match`,
    );
  }
  const input: RewardInput = { prompts, completions, completionIds };
  const reserved = new Set(['prompts', 'completions', 'completionIds']);
  for (let i = 0; i < n; i++) {
    for (const k of Object.keys(rows[i]!.fields)) {
      if (reserved.has(k) || k in input) continue;
      input[k] = rows.map((r) => r.fields[k]);
    }
  }
  input['answer'] = rows.map((r) => r.answer);
  return input;
}

export interface RewardFailure {
  name: string;
  /** `partial`: the call returned, but some completions scored 0 (their comparison timed out). */
  kind: 'throw' | 'timeout' | 'shape' | 'partial';
  message: string;
}

export interface ScoreResult {
  /** Σ_f weight_f · score_f per completion, a null/NaN score counting 0 (TRL's nansum) */
  total: Float64Array;
  /** each function's scores, NaN where it returned null (or 0 after a failure) */
  perFn: Record<string, Float64Array>;
  /** failed calls per function (throws + timeouts + bad shapes); every name present */
  failures: Record<string, number>;
  /** one entry per failure, for the loop's log */
  errors: RewardFailure[];
  /** per function, how many scores were NaN (treated as not applicable: 0 in the total); every name present */
  nanScores: Record<string, number>;
}

class TimeoutSignal {
  constructor(readonly ms: number) {}
}

/** After the abort, how long an abortable reward may take to hand back its partial scores. */
const ABORT_GRACE_MS = 2000;

/**
 * Runs `r.fn(input)` with a time limit; resolves the value or rejects (a TimeoutSignal on
 * timeout). At the limit the call's signal aborts: an abortable reward (a user reward in its
 * worker, which is then terminated, or a verifier reward, which scores only its unfinished
 * comparisons 0) settles by itself; any other function is raced against the limit. (A
 * synchronous infinite loop in a function given in code cannot be cut from the same thread;
 * recipe rewards run in workers.)
 */
async function callWithTimeout(
  r: NamedReward,
  input: RewardInput,
  timeoutMs: number,
  note: (m: string) => void,
): Promise<unknown> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      if (!r.abortable) reject(new TimeoutSignal(timeoutMs));
      else grace = setTimeout(() => reject(new TimeoutSignal(timeoutMs)), ABORT_GRACE_MS);
    }, timeoutMs);
  });
  try {
    // Promise.resolve().then: a synchronous throw becomes a rejection too.
    const call = Promise.resolve().then(() => r.fn(input, { signal: ac.signal, note }));
    return await Promise.race([
      call.catch((e: unknown) => {
        throw ac.signal.aborted && !(e instanceof TimeoutSignal) && r.abortable ? new TimeoutSignal(timeoutMs) : e;
      }),
      limit,
    ]);
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
  }
}

/** Checks a reward's return value; returns the scores (NaN for null) or a reason it is unusable. */
function checkScores(value: unknown, n: number, nan: { count: number } = { count: 0 }): Float64Array | string {
  if (!Array.isArray(value)) return `returned ${value === null ? 'null' : typeof value}, not an array`;
  if (value.length !== n) return `returned ${value.length} scores for ${n} completions`;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v: unknown = value[i];
    if (typeof v === 'number' && Number.isNaN(v)) {
      out[i] = NaN;
      nan.count++;
    } else if (v === null) out[i] = NaN;
    else if (typeof v === 'number' && Number.isFinite(v)) out[i] = v;
    else
      return `score ${i} is ${typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? typeof v)}, not a finite number or null`;
  }
  return out;
}

/** Scores a batch with every reward concurrently; never throws because of a reward. */
export async function scoreCompletions(
  rewards: NamedReward[],
  input: RewardInput,
  opts: { timeoutMs: number },
): Promise<ScoreResult> {
  const n = input.completions.length;
  if (input.prompts.length !== n || input.completionIds.length !== n) {
    throw new RewardError(
      `scoreCompletions: ${input.prompts.length} prompts, ${n} completions, ${input.completionIds.length} id lists; all must match`,
    );
  }
  for (const [k, v] of Object.entries(input)) {
    if (!Array.isArray(v) || v.length !== n) {
      throw new RewardError(`scoreCompletions: row field '${k}' must be an array of ${n} (one per completion)`);
    }
  }
  const perFn: Record<string, Float64Array> = {};
  const failures: Record<string, number> = {};
  const errors: RewardFailure[] = [];
  const nanScores: Record<string, number> = {};
  const results = await Promise.all(
    rewards.map(async (r) => {
      const notes: string[] = [];
      try {
        // Each reward gets its own shallow copy, so one cannot swap a column under another.
        const value = await callWithTimeout(r, { ...input }, opts.timeoutMs, (m) => notes.push(m));
        const nan = { count: 0 };
        const scores = checkScores(value, n, nan);
        nanScores[r.name] = nan.count;
        if (typeof scores === 'string')
          return {
            r,
            scores: null,
            failure: { name: r.name, kind: 'shape' as const, message: `reward '${r.name}' ${scores}` },
          };
        const partial: RewardFailure | null = notes.length
          ? { name: r.name, kind: 'partial', message: `reward '${r.name}': ${notes.join('; ')}` }
          : null;
        return { r, scores, failure: null, partial };
      } catch (e) {
        const failure: RewardFailure =
          e instanceof TimeoutSignal
            ? {
                name: r.name,
                kind: 'timeout',
                message: `reward '${r.name}' timed out after ${e.ms} ms (reward_timeout_s)`,
              }
            : {
                name: r.name,
                kind: 'throw',
                message: `reward '${r.name}' threw: ${e instanceof Error ? e.message : String(e)}`,
              };
        return { r, scores: null, failure, partial: null };
      }
    }),
  );
  const total = new Float64Array(n);
  for (const { r, scores, failure, partial } of results) {
    failures[r.name] = (failures[r.name] ?? 0) + (failure ? 1 : 0);
    nanScores[r.name] ??= 0;
    if (failure) errors.push(failure);
    if (partial) errors.push(partial);
    const s = scores ?? new Float64Array(n); // failed call: 0 for every completion of it
    perFn[r.name] = s;
    for (let i = 0; i < n; i++) if (!Number.isNaN(s[i]!)) total[i] = total[i]! + r.weight * s[i]!;
  }
  return { total, perFn, failures, errors, nanScores };
}
