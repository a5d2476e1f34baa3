/**
 * @module rl/rollout
 * One round of experience: take n prompts, sample G completions each with the current weights,
 * score them with every reward function, and return one Group per prompt. Also the DAPO soft
 * overlong penalty. Pure orchestration over the generation and rewards layers.
 */
import type { CausalLM } from '../model/decoder.ts';
import { generate, resolveGenerationDtype } from '../generate/generate.ts';
import type { RemoteResult, RemoteSampling, RolloutServers } from '../generate/remote.ts';
import type { Rng } from '../data/rng.ts';
import type { PromptRow } from '../data/dataset.ts';
import type { TrainConfig } from './config.ts';
import type { RunSetup } from './setup.ts';
import { buildRewardInput, scoreCompletions, type NamedReward, type RewardFailure } from '../rewards/index.ts';

/** A training prompt with its rendered text and token ids. */
export interface TrainRow extends PromptRow {
  text: string;
  ids: number[];
}

export interface Group {
  row: TrainRow;
  /** G completions: token ids (eos included when produced), sampling log-probs, decoded text. */
  completions: number[][];
  logps: number[][];
  texts: string[];
  /** false = cut at max_completion_length without an end token. */
  finished: boolean[];
  /** Total (weighted) reward per completion, after the overlong penalty. */
  rewards: Float64Array;
  /** Per reward function scores (NaN = not applicable). */
  perFn: Record<string, Float64Array>;
}

export interface RolloutStats {
  generatedTokens: number;
  generationSeconds: number;
  rewardSeconds: number;
  rewardFailures: Record<string, number>;
  errors: RewardFailure[];
  /** NaN scores per reward function (0 in the total) and the completions scored. */
  nanScores: Record<string, number>;
  scoredCompletions: number;
}

/** Zeroed counters of a step's rollouts. */
export function newStats(): RolloutStats {
  return {
    generatedTokens: 0,
    generationSeconds: 0,
    rewardSeconds: 0,
    rewardFailures: {},
    errors: [],
    nanScores: {},
    scoredCompletions: 0,
  };
}

export interface RolloutContext {
  model: CausalLM;
  rng: Rng;
  G: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  eosTokenIds: number[];
  padTokenId: number;
  decode: (ids: number[]) => string;
  rewards: NamedReward[];
  rewardTimeoutMs: number;
  overlong: { max_len: number; cache: number } | null;
  /** Most sequences the rollout engine decodes together. */
  genBatch: number;
  /** The engine's generation weights and KV budget (bytes). */
  weightsDtype: 'float32' | 'bfloat16';
  kvCacheBytes: number;
  onTokens?: (n: number) => void;
  /** rollout_servers: generate there instead (the prompts' seeds drawn from `rng` as the local engine draws them). */
  servers?: RolloutServers;
}

/** n rows × G sequence seeds from `rng`, as the local engine draws them (a 64-bit seed per completion, in prompt order). */
export function drawSeeds(rng: Rng, n: number, G: number): bigint[][] {
  return Array.from({ length: n }, () =>
    Array.from({ length: G }, () => (BigInt(rng.nextUint32()) << 32n) | BigInt(rng.nextUint32())),
  );
}

/** The dtype of the generation weight copies for this config and policy (generation_dtype `auto` resolved). */
export function generationDtype(cfg: TrainConfig, model: CausalLM) {
  return resolveGenerationDtype(cfg.generation_dtype, model.numParameters(), model.lmHeadWeight().backend);
}

/**
 * A step's rollout context from the run's config and setup (the trainer's and the browser loop's):
 * the whole step batch generated at once (TRL's generation_batch_size = per-device batch ×
 * gradient_accumulation_steps), the generation weights' dtype resolved for the policy.
 */
export function rolloutContext(
  cfg: TrainConfig,
  setup: Pick<RunSetup, 'model' | 'tokenizer' | 'eosTokenIds' | 'padTokenId' | 'rewards'>,
  rng: Rng,
  servers?: RolloutServers,
): RolloutContext {
  const { model, tokenizer } = setup;
  return {
    model,
    rng,
    G: cfg.num_generations,
    maxNewTokens: cfg.max_completion_length,
    temperature: cfg.temperature,
    topP: cfg.top_p,
    topK: cfg.top_k,
    eosTokenIds: setup.eosTokenIds,
    padTokenId: setup.padTokenId,
    decode: (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true, dropUnknown: true }),
    rewards: setup.rewards,
    rewardTimeoutMs: cfg.reward_timeout_s * 1000,
    overlong: cfg.overlong_penalty,
    genBatch: cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
    weightsDtype: generationDtype(cfg, model),
    kvCacheBytes: cfg.generation_kv_cache_gb * 1e9,
    servers,
  };
}

/** The sampling settings a rollout sends to the servers. */
export function remoteSampling(ctx: RolloutContext): RemoteSampling {
  return {
    maxTokens: ctx.maxNewTokens,
    temperature: ctx.temperature,
    topP: ctx.topP,
    topK: ctx.topK,
    vocabSize: ctx.model.cfg.vocabSize,
  };
}

/** Completions generated ahead of their step (max_staleness 1): G per row, in row order, and the seconds it took. */
export interface Pregenerated extends RemoteResult {
  seconds: number;
}

/** DAPO soft overlong punishment (arXiv 2503.14476, eq. 13): 0 up to max−cache, then linear to −1 at max. */
export function overlongPenalty(len: number, maxLen: number, cache: number): number {
  if (len <= maxLen - cache) return 0;
  if (len <= maxLen) return (maxLen - cache - len) / cache;
  return -1;
}

/**
 * Samples and scores G completions for each row; returns one group per row (in order). `seeds`
 * (row k's G sequence seeds) replaces the draws from ctx.rng: an MPI rank rolls out its share of
 * the prompts with the seeds a single process would draw for them. `pre`: the completions were
 * generated already (a prefetched request, max_staleness 1); only the scoring is left.
 */
export async function rollout(
  ctx: RolloutContext,
  rows: TrainRow[],
  stats: RolloutStats,
  seeds?: bigint[][],
  pre?: Pregenerated,
): Promise<Group[]> {
  if (rows.length === 0) return [];
  const G = ctx.G;
  const prompts: number[][] = [];
  const flatRows: TrainRow[] = [];
  for (const r of rows)
    for (let g = 0; g < G; g++) {
      prompts.push(r.ids);
      flatRows.push(r);
    }
  const t0 = performance.now();
  const gen = pre
    ? pre
    : ctx.servers
      ? await ctx.servers.generate(
          rows.map((r) => r.ids),
          G,
          remoteSampling(ctx),
          // the local engine's draws (a 64-bit seed per completion, in prompt order), so served rollouts
          // sample exactly what local ones would on gpg-rl serve, and the RNG state checkpoints the same
          seeds ?? drawSeeds(ctx.rng, rows.length, G),
        )
      : generate(ctx.model, prompts, {
          maxNewTokens: ctx.maxNewTokens,
          temperature: ctx.temperature,
          topP: ctx.topP,
          topK: ctx.topK,
          eosTokenIds: ctx.eosTokenIds,
          ...(seeds ? { seeds: seeds.flat() } : { rng: ctx.rng }),
          batchSize: ctx.genBatch,
          weightsDtype: ctx.weightsDtype,
          kvCacheBytes: ctx.kvCacheBytes,
          onStep: ctx.onTokens,
        });
  stats.generationSeconds += pre ? pre.seconds : (performance.now() - t0) / 1000;
  const texts = gen.tokens.map((t) => ctx.decode(t));
  for (const t of gen.tokens) stats.generatedTokens += t.length;
  const t1 = performance.now();
  const input = buildRewardInput(
    flatRows,
    flatRows.map((r) => r.text),
    texts,
    gen.tokens,
  );
  const scored = await scoreCompletions(ctx.rewards, input, { timeoutMs: ctx.rewardTimeoutMs });
  stats.rewardSeconds += (performance.now() - t1) / 1000;
  for (const [k, v] of Object.entries(scored.failures)) stats.rewardFailures[k] = (stats.rewardFailures[k] ?? 0) + v;
  stats.errors.push(...scored.errors);
  for (const [k, v] of Object.entries(scored.nanScores)) stats.nanScores[k] = (stats.nanScores[k] ?? 0) + v;
  stats.scoredCompletions += texts.length;
  const total = scored.total;
  if (ctx.overlong) {
    for (let i = 0; i < total.length; i++)
      total[i] = total[i]! + overlongPenalty(gen.tokens[i]!.length, ctx.overlong.max_len, ctx.overlong.cache);
  }
  return rows.map((row, k) => {
    const s = k * G;
    const perFn: Record<string, Float64Array> = {};
    for (const [name, arr] of Object.entries(scored.perFn)) perFn[name] = arr.slice(s, s + G);
    return {
      row,
      completions: gen.tokens.slice(s, s + G),
      logps: gen.logps.slice(s, s + G),
      texts: texts.slice(s, s + G),
      finished: gen.finished.slice(s, s + G),
      rewards: total.slice(s, s + G),
      perFn,
    };
  });
}
