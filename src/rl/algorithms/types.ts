/**
 * @module rl/algorithms/types
 * The seam between the trainer (src/rl/trainer.ts: run folder, resume, the step skeleton,
 * optimizer, checkpoints, eval, common metrics) and an algorithm family (what differs between
 * methods). The trainer calls, every step:
 *
 *   collect(cfg, ctx)            → the step batch (groups; resampling / filtering is the algorithm's)
 *   advantages(cfg, batch)       → one advantage per completion (token-level families may keep their own)
 *   for each iteration, micro-batch:
 *     loss(cfg, batch, micro)    → loss value, dLoss/dlp over the micro-batch's tokens, metric sums
 *   metrics(cfg, batch, sums, …) → the family's metric columns (metricKeys)
 *
 * A family that owns its parameter update (TRPO: CG, step size, line search) implements
 * `update(cfg, batch, ctx)` instead: the trainer then skips its loss → backward → AdamW loop and
 * hands it an UpdateContext (src/rl/update.ts: gradients, evaluations, Fisher-vector products,
 * weights); `loss()` is what it passes to ctx.gradient / ctx.evaluate. A companion of such a
 * family is fitted after update(): backward over each update's micro-batches, then its step.
 *
 * plus the static parts: its loss_type names, per-loss_type config defaults, cross-field checks
 * and metric keys. Optional hooks, for families that need more than one advantage per completion
 * (PPO: a critic, per-token advantages from GAE, mini-batch epochs):
 *
 *   companion(cfg, ctx)          → what it trains beside the policy (its own model and optimizer)
 *   companion.prepare(…)         after collection, before the updates: forward passes without
 *                                gradient over every micro-batch (old and reference log-probs given)
 *   updates(cfg, n, step)        which micro-batches each optimizer update uses (default: every
 *                                one, iterations() times)
 *   companion.backward / step    inside each update, beside the policy's loss and step
 *   ownFields                    config fields that only this family reads (set under another
 *                                loss_type they are an error) Adding an algorithm = one file implementing `Algorithm` + one line in
 * algorithms/index.ts (docs/architecture.md, "Add an algorithm").
 */
import type { TrainConfig } from '../config.ts';
import type { Group } from '../rollout.ts';
import type { UpdateContext } from '../update.ts';
import type { CausalLM } from '../../model/decoder.ts';
import type { PackedBatch } from '../../train/batch.ts';

/** Resolved config as an algorithm sees it. */
export type AlgoConfig = TrainConfig;

export interface CollectContext {
  /** Prompts (groups) per optimizer step. */
  groupsPerStep: number;
  /** Samples `n` new prompts and returns their scored groups (fewer when the data runs out). */
  sample: (n: number, round: number) => Promise<Group[]>;
  /** One line into the run log (progress bar aware). */
  log: (line: string) => void;
  /** 1-based step number (for messages). */
  step: number;
  /** Names of the run's reward functions (Group.perFn keys). */
  rewardNames: readonly string[];
}

/** The experience of one optimizer step, plus what the family carries from collection to the loss. */
export interface StepBatch {
  groups: Group[];
  /** No usable signal: the trainer skips the optimizer step (counted in skipped steps). */
  skip: boolean;
  /** Family-specific values from collection (GPG: inverse_alpha, resample rounds). */
  state: Record<string, number>;
  /**
   * Per-token experience a companion's prepare() computes, one record per micro-batch (in step
   * order): the completions it holds and named arrays, dense [B*Tm1] like `lp` (PPO: advantages,
   * returns, old values, mask).
   */
  tokens?: Array<{ rows: readonly number[]; arrays: Record<string, Float64Array> }>;
}

/** One micro-batch of the step as the loss sees it (host arrays, [B*Tm1] row-major). */
export interface MicroBatchLoss {
  /** Current policy token log-probs (with gradient through `dlp`). */
  lp: Float64Array;
  /** Log-probs of the sampling policy (only when needsOldLogps). */
  oldLp?: Float64Array;
  /** Reference-model log-probs (only when usesReference). */
  refLp?: Float64Array;
  /** completion_mask[:, 1:] (0 rows for masked truncated completions). */
  mask: Float64Array;
  /** Advantages of this micro-batch's completions [B]. */
  advantages: Float64Array;
  B: number;
  Tm1: number;
  /** Counts over the whole optimizer update (DESIGN §5): completion tokens and completions. */
  denominators: { tokens: number; sequences: number };
  /** Index of this micro-batch in the step (batch.tokens[micro] is its per-token experience). */
  micro: number;
}

/** One micro-batch of the step as a companion sees it: the packed host batch and dense [B*Tm1] log-probs. */
export interface PreparedMicroBatch {
  /** The step-batch completions (batch order) it holds. */
  rows: readonly number[];
  packed: PackedBatch;
  /** Log-probs of the policy that sampled the batch (training precision). */
  oldLp: Float64Array;
  /** Reference-model log-probs (when usesReference). */
  refLp?: Float64Array;
}

/** What the companion needs to start: the policy (before a resume loads its checkpoint), the seed. */
export interface CompanionContext {
  policy: CausalLM;
  seed: number;
  log: (line: string) => void;
}

/**
 * What a family trains beside the policy, with its own optimizer (PPO: the critic). Saved in every
 * checkpoint as the folder `dirName` (an HF model folder plus its optimizer state) and at the end
 * beside `<output_dir>/model` (weights only).
 */
export interface Companion {
  readonly dirName: string;
  /** Parameters it holds (reports and the components table). */
  numParameters(): number;
  /** After collection, before the updates: forward passes without gradient; sets batch.tokens. */
  prepare(cfg: AlgoConfig, batch: StepBatch, micro: readonly PreparedMicroBatch[]): void;
  /** One micro-batch of an update: its own loss, forward and backward (gradients add up until step). */
  backward(
    cfg: AlgoConfig,
    batch: StepBatch,
    micro: PreparedMicroBatch,
    k: number,
    denominators: { tokens: number; sequences: number },
  ): { loss: number; sums: Record<string, number> };
  /** After an update's micro-batches: its optimizer step; returns metric sums (e.g. its grad norm). */
  step(cfg: AlgoConfig, lr: number): Record<string, number>;
  /** Writes its folder into `dir` (exists, empty); `weightsOnly` leaves out the optimizer state. */
  save(dir: string, o: { weightsOnly: boolean; tokenizerFrom?: string }): void;
  /** Restores what save() wrote (resume). */
  load(dir: string): void;
  dispose(): void;
}

export interface LossResult {
  loss: number;
  /** dLoss/dlp [B*Tm1]. */
  dlp: Float64Array;
  /** Sums over the micro-batch that metrics() turns into columns (e.g. klSum, clippedTokens). */
  sums: Record<string, number>;
}

/** What an algorithm's own update() reports to the trainer. */
export interface UpdateOutcome {
  /** The loss at the weights the step started from. */
  loss: number;
  /** ‖∇ loss‖ at those weights. */
  gradNorm: number;
  /** Metric sums for metrics(). */
  sums: Record<string, number>;
}

export interface Algorithm {
  /** Family name (docs, errors). */
  readonly family: string;
  /** The `loss_type` values this family implements. */
  readonly lossTypes: readonly string[];
  /** Per-loss_type defaults of config fields marked "per loss_type" (DESIGN §5 table). */
  readonly defaults: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Cross-field checks of this family; `add(path, message)` reports a problem. */
  check(cfg: AlgoConfig, explicit: ReadonlySet<string>, add: (path: string, message: string) => void): void;
  /** A frozen reference model is needed (KL). */
  usesReference(cfg: AlgoConfig): boolean;
  /** Old log-probs are kept for ratios (μ > 1). */
  needsOldLogps(cfg: AlgoConfig): boolean;
  /** Optimizer updates per generated batch (μ). */
  iterations(cfg: AlgoConfig): number;
  /** This family's metrics.jsonl columns, in order. */
  metricKeys(
    cfg: Pick<AlgoConfig, 'loss_type' | 'beta' | 'num_iterations'> & Partial<Pick<AlgoConfig, 'trpo_baseline'>>,
  ): string[];
  /** Config fields only this family reads (an error when set under another family's loss_type). */
  readonly ownFields?: readonly string[];
  /** What it trains beside the policy (created once per run; null = nothing). */
  companion?(cfg: AlgoConfig, ctx: CompanionContext): Companion | null;
  /**
   * The optimizer updates of one step: for each, the micro-batch indices it runs (in order), given
   * `n` micro-batches; `step` is 0-based (for a deterministic shuffle). Default: iterations() × all.
   */
  updates?(cfg: AlgoConfig, n: number, step: number): number[][];
  collect(cfg: AlgoConfig, ctx: CollectContext): Promise<StepBatch>;
  /** One advantage per completion of the step batch (batch order). */
  advantages(cfg: AlgoConfig, batch: StepBatch): Float64Array;
  loss(cfg: AlgoConfig, batch: StepBatch, micro: MicroBatchLoss): LossResult;
  /**
   * Optional: the family's own update of the weights for the step (replaces the trainer's
   * micro-batch loss → backward → AdamW step). Returns the loss and gradient norm for the
   * metrics row and the sums metrics() reads.
   */
  update?(cfg: AlgoConfig, batch: StepBatch, ctx: UpdateContext): UpdateOutcome;
  /** The family's metric columns for the step (keys = metricKeys). */
  metrics(
    cfg: AlgoConfig,
    batch: StepBatch,
    sums: Record<string, number>,
    totals: { tokens: number; iterations: number; skippedSteps: number },
  ): Record<string, number>;
}
