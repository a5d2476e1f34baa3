/**
 * @module rl/algorithms/ppo
 * PPO with a critic (Schulman et al., arXiv 1707.06347), as InstructGPT (arXiv 2203.02155), TRL's
 * PPOTrainer and verl's `adv_estimator=gae` run it for language models (`loss_type: ppo`). Per step:
 *
 *   collect     groupsPerStep prompts × num_generations completions, scored (one batch, no filter)
 *   prepare     old log-probs π_old, reference log-probs π_ref (kl_coef > 0: a frozen copy of the
 *               initial policy) and values V (the critic, rl/critic.ts) on every completion token;
 *               per-token rewards r = score on the last token − kl_coef·KL(π_old‖π_ref) (kl_estimator);
 *               GAE (gamma, lam) → advantages (whitened over the step batch) and returns = A + V
 *               (gae.ts)
 *   updates     num_ppo_epochs passes; each pass splits the step's micro-batches (shuffled) into
 *               num_mini_batches mini-batches, one optimizer update each, for the policy and the critic
 *   policy      −min(ratio·A, clamp(ratio, 1 − ε, 1 + ε_high)·A), token mean over the mini-batch
 *               (ε = `epsilon`, TRL PPO's `cliprange`)
 *   critic      0.5·max((V − R)², (clamp(V, V_old ± cliprange_value) − R)²), token mean, × vf_coef
 *               (its own AdamW with the policy's settings)
 *
 * Metric names are TRL PPOTrainer's (`objective/kl`, `loss/policy_avg`, `val/clipfrac_avg`, …).
 * Where we differ from TRL is listed in README ("PPO").
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../data/rng.ts';
import { InvalidArgumentError } from '../../errors.ts';
import { Critic } from '../critic.ts';
import { gae, klPerToken, tokenRewards, whiten } from './gae.ts';
import type { Algorithm, AlgoConfig, Companion, CompanionContext, PreparedMicroBatch, StepBatch } from './types.ts';

export const PPO_LOSS_TYPES = ['ppo'] as const;

/** Config fields of the critic (GaeCritic): PPO reads them, and TRPO with trpo_baseline: value. */
export const CRITIC_FIELDS = [
  'vf_coef',
  'cliprange_value',
  'gamma',
  'lam',
  'whiten_rewards',
  'value_model_path',
] as const;

/** Config fields only PPO reads (config.ts documents them; set under another loss_type they are an error). */
export const PPO_FIELDS = ['kl_coef', 'kl_estimator', ...CRITIC_FIELDS, 'num_ppo_epochs', 'num_mini_batches'] as const;

export interface PolicyLossInput {
  lp: Float64Array;
  oldLp: Float64Array;
  /** Per-token advantages [B*Tm1]. */
  advantages: Float64Array;
  mask: Float64Array;
  epsilon: number;
  epsilonHigh: number;
  /** Tokens of the whole update (the denominator; clamped to ≥ 1). */
  tokens: number;
}

export interface PolicyLossOutput {
  /** This micro-batch's share of the update's loss. */
  loss: number;
  dlp: Float64Array;
  /** Σ m·[clipped term larger] (TRL pg_clipfrac numerator), Σ m·0.5·(lp − oldLp)² (approxkl), Σ m·ratio, Σ m. */
  clippedTokens: number;
  approxKlSum: number;
  ratioSum: number;
  localTokens: number;
}

/**
 * PPO's clipped surrogate with per-token advantages, Σ(loss·m)/N, and dLoss/dlp. torch
 * subgradients: `torch.max` of the two loss terms splits the gradient on a tie; `torch.clamp`
 * passes it inside [1 − ε, 1 + ε_high], bounds included.
 */
export function ppoPolicyLoss(x: PolicyLossInput): PolicyLossOutput {
  const n = x.lp.length;
  for (const [k, a] of [
    ['oldLp', x.oldLp],
    ['advantages', x.advantages],
    ['mask', x.mask],
  ] as const)
    if (a.length !== n) throw new InvalidArgumentError(`ppoPolicyLoss: ${k} has ${a.length} entries, expected ${n}`);
  const lo = 1 - x.epsilon,
    hi = 1 + x.epsilonHigh;
  const N = Math.max(1, x.tokens);
  const dlp = new Float64Array(n);
  let loss = 0,
    clipped = 0,
    approxKl = 0,
    ratioSum = 0,
    local = 0;
  for (let i = 0; i < n; i++) {
    const m = x.mask[i]!;
    if (!m) continue;
    const A = x.advantages[i]!;
    const d = x.lp[i]! - x.oldLp[i]!;
    const ratio = Math.exp(d);
    const c = Math.min(Math.max(ratio, lo), hi);
    const l1 = -A * ratio,
      l2 = -A * c;
    const g1 = -A * ratio,
      g2 = ratio >= lo && ratio <= hi ? -A * ratio : 0; // d/dlp, dratio/dlp = ratio
    const g = l1 > l2 ? g1 : l2 > l1 ? g2 : 0.5 * (g1 + g2);
    loss += Math.max(l1, l2) * m;
    dlp[i] = (g * m) / N;
    if (l2 > l1) clipped += m;
    approxKl += 0.5 * d * d * m;
    ratioSum += ratio * m;
    local += m;
  }
  return { loss: loss / N, dlp, clippedTokens: clipped, approxKlSum: approxKl, ratioSum, localTokens: local };
}

const DEFAULTS = {
  ppo: {
    scale_rewards: false,
    adjust_gd: false,
    min_inverse_alpha: null,
    dynamic_sampling: false,
    beta: 0,
    epsilon_high: null,
  },
};

/** Mini-batches of one epoch: the micro-batch indices 0..n-1 shuffled, in min(n, k) near-equal runs. */
function miniBatches(n: number, k: number, rng: Rng): number[][] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const parts = Math.max(1, Math.min(n, k));
  const out: number[][] = [];
  for (let p = 0; p < parts; p++)
    out.push(order.slice(Math.floor((p * n) / parts), Math.floor(((p + 1) * n) / parts)).sort((a, b) => a - b));
  return out;
}

/** The experience prepare() keeps per micro-batch (dense [B*Tm1]). */
const ADV = 'advantages',
  RET = 'returns',
  VAL = 'values',
  MASK = 'mask';

/**
 * PPO's companion (and TRPO's with trpo_baseline: value): the critic, and the per-token experience
 * of each step (GAE advantages whitened over the step, returns, old values).
 */
export class GaeCritic implements Companion {
  readonly dirName = 'value_model';
  constructor(readonly critic: Critic) {}

  numParameters(): number {
    return this.critic.numParameters();
  }

  prepare(c: AlgoConfig, batch: StepBatch, micro: readonly PreparedMicroBatch[]): void {
    const G = c.num_generations;
    const score = (row: number) => batch.groups[Math.floor(row / G)]!.rewards[row % G]!;
    const per = micro.map((mb) => {
      const { packed } = mb;
      const { B, T } = packed;
      const Tm1 = T - 1;
      const mask = packed.m;
      const values = this.critic.predict(packed, mask);
      const kl = mb.refLp ? klPerToken(mb.oldLp, mb.refLp, mask, c.kl_estimator) : null;
      const scores = Float64Array.from(mb.rows, score);
      const rewards = tokenRewards({ scores, kl, mask, B, Tm1, klCoef: c.kl_coef });
      return { B, Tm1, mask, values, kl, scores, rewards };
    });
    if (c.whiten_rewards) {
      // TRL: whitened over the batch's completion tokens with the mean kept (shift_mean=False)
      const w = whiten(concat(per.map((p) => p.rewards)), concat(per.map((p) => p.mask)), false);
      split(w, per).forEach((r, k) => (per[k]!.rewards = r));
    }
    const est = per.map((p) => gae({ ...p, gamma: c.gamma, lam: c.lam }));
    const adv = split(whiten(concat(est.map((e) => e.advantages)), concat(per.map((p) => p.mask))), per);
    batch.tokens = micro.map((mb, k) => ({
      rows: mb.rows,
      arrays: { [ADV]: adv[k]!, [RET]: est[k]!.returns, [VAL]: per[k]!.values, [MASK]: per[k]!.mask },
    }));
    // step-level columns (TRL: objective/kl is the per-sequence KL sum, averaged over sequences)
    let seqs = 0,
      klSum = 0,
      scoreSum = 0,
      tok = 0,
      vSum = 0,
      rSum = 0,
      rSq = 0,
      resSq = 0;
    per.forEach((p, k) => {
      seqs += p.B;
      for (let b = 0; b < p.B; b++) scoreSum += p.scores[b]!;
      const ret = est[k]!.returns;
      for (let i = 0; i < p.mask.length; i++) {
        if (!p.mask[i]) continue;
        if (p.kl) klSum += p.kl[i]!;
        tok++;
        vSum += p.values[i]!;
        rSum += ret[i]!;
        rSq += ret[i]! ** 2;
        resSq += (ret[i]! - p.values[i]!) ** 2;
      }
    });
    const S = Math.max(1, seqs),
      N = Math.max(1, tok);
    const varR = rSq / N - (rSum / N) ** 2;
    Object.assign(batch.state, {
      'objective/kl': klSum / S,
      'objective/non_score_reward': (-c.kl_coef * klSum) / S,
      'objective/scores': scoreSum / S,
      'objective/rlhf_reward': (scoreSum - c.kl_coef * klSum) / S,
      'ppo/value_mean': vSum / N,
      'ppo/returns_mean': rSum / N,
      // 1 − Var(R − V)/Var(R) over completion tokens (how much of the returns the critic explains)
      'ppo/explained_variance': varR > 0 ? 1 - (resSq / N - ((rSum - vSum) / N) ** 2) / varR : NaN,
    });
  }

  backward(
    c: AlgoConfig,
    batch: StepBatch,
    mb: PreparedMicroBatch,
    k: number,
    den: { tokens: number; sequences: number },
  ): { loss: number; sums: Record<string, number> } {
    const exp = experience(batch, k);
    const out = this.critic.backward(
      mb.packed,
      exp[MASK]!,
      { oldValues: exp[VAL]!, returns: exp[RET]! },
      { cliprangeValue: c.cliprange_value, tokens: den.tokens, coef: c.vf_coef },
    );
    return { loss: c.vf_coef * out.loss, sums: { vfLoss: out.loss, vfClipped: out.clippedTokens } };
  }

  step(c: AlgoConfig, lr: number): Record<string, number> {
    const o = this.critic.step(lr, c.max_grad_norm);
    return { valueGradNorm: o.gradNorm, valueSkipped: o.stepped ? 0 : 1 };
  }

  save(dir: string, o: { weightsOnly: boolean; tokenizerFrom?: string }): void {
    this.critic.save(dir, { into: true, weightsOnly: o.weightsOnly, tokenizerFrom: o.tokenizerFrom });
  }

  load(dir: string): void {
    this.critic.load(dir);
  }

  dispose(): void {
    this.critic.dispose();
  }
}

/** Micro-batch k's per-token GAE advantages [B*Tm1] (prepare() must have run). */
export function tokenAdvantages(batch: StepBatch, k: number): Float64Array {
  return experience(batch, k)[ADV]!;
}

function experience(batch: StepBatch, k: number): Record<string, Float64Array> {
  const e = batch.tokens?.[k]?.arrays;
  if (!e) throw new InvalidArgumentError(`ppo: micro-batch ${k} has no prepared experience (prepare() did not run)`);
  return e;
}

function concat(xs: Float64Array[]): Float64Array {
  const out = new Float64Array(xs.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

function split(x: Float64Array, like: ReadonlyArray<{ mask: Float64Array }>): Float64Array[] {
  let o = 0;
  return like.map((l) => x.slice(o, (o += l.mask.length)));
}

/** value_model_path, when set, must be a model folder (the critic's config errors, PPO's and TRPO's). */
export function checkValueModelPath(c: AlgoConfig, add: (path: string, message: string) => void): void {
  if (c.value_model_path !== null && !existsSync(join(c.value_model_path, 'config.json')))
    add(
      'value_model_path',
      `no config.json in ${c.value_model_path} (a Hugging Face …ForTokenClassification, …ForSequenceClassification or …ForCausalLM folder); null = initialise the critic from the policy`,
    );
}

/** The critic of a run: from value_model_path, or the policy with a new value head. */
export function makeCritic(c: AlgoConfig, ctx: CompanionContext, family: string): GaeCritic {
  const settings = {
    learningRate: c.learning_rate,
    weightDecay: c.weight_decay,
    beta1: c.adam_beta1,
    beta2: c.adam_beta2,
    eps: c.adam_epsilon,
    gradientCheckpointing: c.gradient_checkpointing,
  };
  const critic =
    c.value_model_path !== null
      ? Critic.load(c.value_model_path, c.seed, settings)
      : Critic.fromPolicy(ctx.policy, c.seed, settings);
  if (critic.model.cfg.vocabSize !== ctx.policy.cfg.vocabSize) {
    critic.dispose();
    throw new InvalidArgumentError(
      `value_model_path: ${c.value_model_path} has a vocabulary of ${critic.model.cfg.vocabSize} tokens, the policy ${ctx.policy.cfg.vocabSize}; the critic reads the policy's token ids, so use a value model with the policy's tokenizer`,
    );
  }
  ctx.log(
    `${family}: critic ${critic.model.architecture} ${(critic.numParameters() / 1e6).toFixed(2)}M params, from ${c.value_model_path ?? 'the policy (new value head)'}`,
  );
  return new GaeCritic(critic);
}

/** One number per completion for completions.jsonl: the whitened GAE advantage of its first token. */
export function firstTokenAdvantages(batch: StepBatch): Float64Array {
  const n = batch.groups.reduce((s, g) => s + g.completions.length, 0);
  const out = new Float64Array(n).fill(NaN);
  for (const t of batch.tokens ?? []) {
    const adv = t.arrays[ADV]!,
      mask = t.arrays[MASK]!;
    const Tm1 = mask.length / t.rows.length;
    t.rows.forEach((row, b) => {
      for (let j = 0; j < Tm1; j++)
        if (mask[b * Tm1 + j]) {
          out[row] = adv[b * Tm1 + j]!;
          break;
        }
    });
  }
  return out;
}

export const ppoAlgorithm: Algorithm = {
  family: 'PPO with a critic',
  lossTypes: PPO_LOSS_TYPES,
  defaults: DEFAULTS,
  ownFields: PPO_FIELDS,

  check(c, explicit, add) {
    if (c.adjust_gd) add('adjust_gd', `is GPG's α and applies only to loss_type gpg (got ppo); remove adjust_gd`);
    if (c.min_inverse_alpha !== null)
      add('min_inverse_alpha', `is GPG's β_th and applies only to loss_type gpg (got ppo); remove min_inverse_alpha`);
    if (c.dynamic_sampling)
      add('dynamic_sampling', `is DAPO's group filter; PPO has no groups to filter (got loss_type ppo); remove it`);
    if (c.dynamic_sampling_metric !== null)
      add('dynamic_sampling_metric', `applies only with dynamic_sampling (DAPO); remove it for loss_type ppo`);
    if (c.beta > 0)
      add(
        'beta',
        `must be 0 for loss_type ppo (got ${c.beta}): PPO puts the KL into the per-token reward; set kl_coef instead`,
      );
    if (c.num_iterations > 1)
      add(
        'num_iterations',
        `must be 1 for loss_type ppo (got ${c.num_iterations}); PPO's passes over a batch are num_ppo_epochs`,
      );
    if (c.scale_rewards && explicit.has('scale_rewards'))
      add(
        'scale_rewards',
        `does not apply to loss_type ppo: its advantages come from GAE and are whitened over the batch; remove scale_rewards (whiten_rewards scales the rewards)`,
      );
    if (c.epsilon_high < c.epsilon)
      add('epsilon_high', `must be ≥ epsilon (got epsilon_high ${c.epsilon_high} < epsilon ${c.epsilon})`);
    if (c.use_peft)
      add(
        'use_peft',
        `is not supported with loss_type ppo yet: the critic would be a full trainable copy of the base model beside the adapters; train the whole model (use_peft: false)`,
      );
    const GA = c.gradient_accumulation_steps;
    if (c.max_tokens_per_microbatch === 0 && GA % c.num_mini_batches !== 0)
      add(
        'num_mini_batches',
        `must divide gradient_accumulation_steps (got ${c.num_mini_batches} mini-batches of ${GA} micro-batches); a mini-batch is a whole number of micro-batches, e.g. gradient_accumulation_steps ${GA * c.num_mini_batches}`,
      );
    checkValueModelPath(c, add);
  },

  usesReference: (c) => c.kl_coef > 0,
  needsOldLogps: () => true,
  iterations: (c) => c.num_ppo_epochs * c.num_mini_batches,

  metricKeys: () => [
    'objective/kl',
    'objective/non_score_reward',
    'objective/rlhf_reward',
    'objective/scores',
    'policy/approxkl_avg',
    'policy/clipfrac_avg',
    'loss/policy_avg',
    'loss/value_avg',
    'val/clipfrac_avg',
    'val/ratio',
    'ppo/value_mean',
    'ppo/returns_mean',
    'ppo/explained_variance',
    'ppo/value_grad_norm',
  ],

  companion: (c, ctx) => makeCritic(c, ctx, 'ppo'),

  updates(c, n, step) {
    const out: number[][] = [];
    for (let e = 0; e < c.num_ppo_epochs; e++) {
      // a fresh stream per (step, epoch): deterministic, so a resumed run shuffles the same way
      const rng = new Rng(c.seed, 2n ** 40n + BigInt(step) * BigInt(c.num_ppo_epochs) + BigInt(e));
      out.push(...miniBatches(n, c.num_mini_batches, rng));
    }
    return out;
  },

  async collect(_c, ctx) {
    return { groups: await ctx.sample(ctx.groupsPerStep, 0), skip: false, state: {} };
  },

  advantages: (_c, batch) => firstTokenAdvantages(batch),

  loss(c, batch, m) {
    if (!m.oldLp) throw new InvalidArgumentError('ppo: the loss needs old log-probs (needsOldLogps)');
    const out = ppoPolicyLoss({
      lp: m.lp,
      oldLp: m.oldLp,
      advantages: experience(batch, m.micro)[ADV]!,
      mask: m.mask,
      epsilon: c.epsilon,
      epsilonHigh: c.epsilon_high,
      tokens: m.denominators.tokens,
    });
    return {
      loss: out.loss,
      dlp: out.dlp,
      sums: {
        pgLoss: out.loss,
        clippedTokens: out.clippedTokens,
        approxKl: out.approxKlSum,
        ratio: out.ratioSum,
        tokens: out.localTokens,
      },
    };
  },

  metrics(_c, batch, sums, t) {
    const s = (k: string) => sums[k] ?? 0;
    const perToken = (k: string) => (s('tokens') > 0 ? s(k) / s('tokens') : NaN);
    const perUpdate = (k: string) => (t.iterations > 0 ? s(k) / t.iterations : NaN);
    const st = (k: string) => batch.state[k] ?? NaN;
    return {
      'objective/kl': st('objective/kl'),
      'objective/non_score_reward': st('objective/non_score_reward'),
      'objective/rlhf_reward': st('objective/rlhf_reward'),
      'objective/scores': st('objective/scores'),
      'policy/approxkl_avg': perToken('approxKl'),
      'policy/clipfrac_avg': perToken('clippedTokens'),
      'loss/policy_avg': perUpdate('pgLoss'),
      'loss/value_avg': perUpdate('vfLoss'),
      'val/clipfrac_avg': perToken('vfClipped'),
      'val/ratio': perToken('ratio'),
      'ppo/value_mean': st('ppo/value_mean'),
      'ppo/returns_mean': st('ppo/returns_mean'),
      'ppo/explained_variance': st('ppo/explained_variance'),
      'ppo/value_grad_norm': perUpdate('valueGradNorm'),
    };
  },
};
