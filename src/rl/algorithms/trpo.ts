/**
 * @module rl/algorithms/trpo
 * TRPO (Schulman et al., arXiv 1502.05477; the step of OpenAI baselines' trpo_mpi) on LLM
 * completions, `loss_type: trpo`. No optimizer, no reference model, no clipping: each step
 *
 *   1) g = ∇θ L(θ_old), the surrogate L(θ) = Σ_t ratio_t·A_t·m_t / N over the step's completion
 *      tokens (ratio = π_θ/π_old per token; N = completion tokens of the whole step batch, as in
 *      dapo/gpg; A = r − mean_g, the group baseline, ÷ std_g with scale_rewards)
 *   2) s ≈ F⁻¹ g by conjugate gradient (cg_iters, damping cg_damping) on Fisher-vector products of
 *      the mean token KL(π_old ‖ π_θ) (src/rl/update.ts, over a cg_subsample of the completions)
 *   3) the full step β·s with β = sqrt(2δ / sᵀ(F + λI)s): the quadratic model's KL equals δ = max_kl
 *   4) backtracking line search over β·s·rᵏ (k < line_search_steps): the first point whose
 *      surrogate improves on L(θ_old) and whose exact mean KL is ≤ max_kl is taken; if none is,
 *      the weights are put back bit for bit (trpo/kl = 0).
 *
 * trpo_baseline: value replaces A = r − mean_g by per-token GAE advantages on a critic V (its own
 * value model, the GaeCritic of ppo.ts: gamma, lam, whitened over the step), as the TRPO paper and
 * baselines' trpo_mpi do; after the policy step the trainer fits V once over the step's
 * micro-batches (clipped value loss, its own AdamW at learning_rate).
 *
 * The natural-gradient direction does not depend on the scale of A or of L, and the trust region
 * fixes the size, so every accepted step moves the policy by at most max_kl per token.
 */
import { advantages, isGroupValid, stepRewards } from '../advantages.ts';
import { collectDynamic } from '../alpha.ts';
import { conjugateGradient } from './cg.ts';
import { dot, norm, type UpdateContext } from '../update.ts';
import { Rng } from '../../data/rng.ts';
import { CRITIC_FIELDS, checkValueModelPath, firstTokenAdvantages, makeCritic, tokenAdvantages } from './ppo.ts';
import type { Algorithm, AlgoConfig, LossResult, MicroBatchLoss, StepBatch, UpdateOutcome } from './types.ts';

export const TRPO_LOSS_TYPES = ['trpo'] as const;

/** Metric columns of the critic with trpo_baseline: value (TRL PPO's names where they exist). */
const VALUE_KEYS = [
  'loss/value_avg',
  'val/clipfrac_avg',
  'trpo/value_mean',
  'trpo/returns_mean',
  'trpo/explained_variance',
  'trpo/value_grad_norm',
];

/** The per-loss_type fields TRPO fixes (DESIGN §5 table): no AGE, no β_th, no reference, no clip. */
const DEFAULTS = {
  trpo: {
    scale_rewards: false,
    adjust_gd: false,
    min_inverse_alpha: null,
    dynamic_sampling: false,
    beta: 0,
    epsilon_high: null,
  },
};

/** Stream of the Fisher-subsample RNG (mixed with the seed and the step, so resume is exact). */
const SUBSAMPLE_STREAM = 0x7290;

/**
 * −L(θ): minus the token-mean surrogate Σ ratio·A·m / N, and its gradient in lp. A is one number
 * per completion (m.advantages, the group baseline) or, given `tokenAdv` [B*Tm1], per token (GAE
 * with the critic's values, trpo_baseline: value).
 */
export function surrogateLoss(m: MicroBatchLoss, tokenAdv?: Float64Array): LossResult {
  const { lp, oldLp, mask, advantages: adv, B, Tm1 } = m;
  const N = Math.max(1, m.denominators.tokens);
  const dlp = new Float64Array(B * Tm1);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tm1; t++) {
      const i = b * Tm1 + t;
      if (!mask[i]) continue;
      const A = tokenAdv ? tokenAdv[i]! : adv[b]!;
      const ratio = oldLp ? Math.exp(lp[i]! - oldLp[i]!) : 1;
      loss -= (ratio * A * mask[i]!) / N;
      dlp[i] = -(ratio * A * mask[i]!) / N;
    }
  }
  return { loss, dlp, sums: {} };
}

/** The step's surrogate: per-completion advantages (group baseline) or the critic's per-token GAE (value). */
function surrogateFor(c: AlgoConfig, batch: StepBatch): (m: MicroBatchLoss) => LossResult {
  return c.trpo_baseline === 'value'
    ? (m) => surrogateLoss(m, tokenAdvantages(batch, m.micro))
    : (m) => surrogateLoss(m);
}

/** cg_subsample of the step's completions (at least one), a seeded function of (seed, step). */
export function fisherRows(c: Pick<AlgoConfig, 'seed' | 'cg_subsample'>, step: number, sequences: number): number[] {
  const k = Math.min(sequences, Math.max(1, Math.round(c.cg_subsample * sequences)));
  if (k === sequences) return Array.from({ length: sequences }, (_, i) => i);
  const rng = new Rng(c.seed, SUBSAMPLE_STREAM + step);
  const idx = Array.from({ length: sequences }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.nextInt(sequences - i);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k).sort((a, b) => a - b);
}

/** One TRPO step on the UpdateContext: CG, step size, line search (module header). */
export function trpoStep(
  c: AlgoConfig,
  ctx: UpdateContext,
  surrogate: (m: MicroBatchLoss) => LossResult = (m) => surrogateLoss(m),
): UpdateOutcome {
  const g0 = ctx.gradient(surrogate);
  const loss0 = g0.loss; // −L(θ_old)
  const g = g0.grad.map((x) => -x); // ascent direction of L
  const gradNorm = norm(g);
  const sums = { kl: 0, stepSize: 0, lineSearchSteps: 0, improvement: 0 };
  if (!(gradNorm > 0)) return { loss: loss0, gradNorm, sums };
  const Fv = ctx.fisher(fisherRows(c, ctx.step, ctx.sequences));
  const cg = conjugateGradient(Fv, g, { iters: c.cg_iters, damping: c.cg_damping });
  const sFs = dot(cg.x, cg.Ax); // sᵀ(F + λI)s from the CG's own products
  if (!(sFs > 0)) return { loss: loss0, gradNorm, sums };
  const beta = Math.sqrt((2 * c.max_kl) / sFs);
  const theta = new Float64Array(ctx.size);
  let frac = 1;
  for (let k = 0; k < c.line_search_steps; k++, frac *= c.line_search_backtrack_ratio) {
    const a = beta * frac;
    for (let i = 0; i < theta.length; i++) theta[i] = ctx.theta0[i]! + a * cg.x[i]!;
    ctx.moveTo(theta);
    const e = ctx.evaluate(surrogate);
    sums.lineSearchSteps = k + 1;
    const improvement = loss0 - e.loss;
    if (e.kl <= c.max_kl && improvement > 0 && Number.isFinite(e.loss)) {
      sums.kl = e.kl;
      sums.stepSize = a;
      sums.improvement = improvement;
      return { loss: loss0, gradNorm, sums };
    }
  }
  ctx.restore(); // rejected: θ_old bit for bit
  return { loss: loss0, gradNorm, sums };
}

export const trpoAlgorithm: Algorithm = {
  family: 'TRPO (natural gradient in a KL trust region)',
  lossTypes: TRPO_LOSS_TYPES,
  defaults: DEFAULTS,
  // set under another loss_type, these are config errors (algorithms/index.ts)
  ownFields: [
    'max_kl',
    'cg_iters',
    'cg_damping',
    'cg_subsample',
    'line_search_steps',
    'line_search_backtrack_ratio',
    'trpo_baseline',
    ...CRITIC_FIELDS, // with trpo_baseline: value (check() refuses them with group)
  ],

  check(c, explicit, add) {
    if (c.beta > 0)
      add(
        'beta',
        `must be 0 for loss_type trpo (got ${c.beta}): TRPO has no reference model; its KL trust region is max_kl`,
      );
    if (c.num_iterations > 1)
      add(
        'num_iterations',
        `must be 1 for loss_type trpo (got ${c.num_iterations}): TRPO makes one constrained step per batch`,
      );
    if (c.adjust_gd) add('adjust_gd', `is GPG's α and applies only to loss_type gpg; remove adjust_gd`);
    if (c.min_inverse_alpha !== null)
      add('min_inverse_alpha', `is GPG's β_th and applies only to loss_type gpg; remove min_inverse_alpha`);
    if (c.bf16)
      add(
        'bf16',
        `must be false for loss_type trpo: its Fisher-vector products take finite differences of the model's outputs, which bf16 products round away`,
      );
    if (c.trpo_baseline === 'group')
      for (const f of CRITIC_FIELDS)
        if (explicit.has(f))
          add(f, `configures the critic, which loss_type trpo has only with trpo_baseline: value; remove ${f}`);
    if (c.trpo_baseline === 'value') {
      if (c.use_peft)
        add(
          'use_peft',
          `is not supported with trpo_baseline: value yet: the critic would be a full trainable copy of the base model beside the adapters; use trpo_baseline: group`,
        );
      checkValueModelPath(c, add);
      if (c.scale_rewards && explicit.has('scale_rewards'))
        add(
          'scale_rewards',
          `does not apply with trpo_baseline: value: the advantages come from GAE and are whitened over the batch; remove scale_rewards`,
        );
      if (c.dynamic_sampling)
        add('dynamic_sampling', `filters groups by their rewards, which trpo_baseline: value does not use; remove it`);
    }
  },

  // with trpo_baseline: value, TRPO's own critic (baselines trpo_mpi: GAE on a learned V, fitted by
  // regression on the returns); the trainer fits it once over the step's micro-batches after the step
  companion: (c, ctx) => (c.trpo_baseline === 'value' ? makeCritic(c, ctx, 'trpo') : null),

  usesReference: () => false,
  needsOldLogps: () => false,
  iterations: () => 1,

  metricKeys: (c) => [
    'trpo/kl',
    'trpo/step_size',
    'trpo/line_search_steps',
    'trpo/improvement',
    ...(c.trpo_baseline === 'value' ? VALUE_KEYS : []),
  ],

  async collect(c, ctx) {
    const isValid = (g: { rewards: Float64Array }) => isGroupValid(g.rewards);
    if (c.dynamic_sampling) {
      const r = await collectDynamic(ctx.sample, isValid, {
        groupsPerStep: ctx.groupsPerStep,
        maxRounds: c.max_resample_rounds,
      });
      return { groups: r.groups, skip: r.skip, state: { rounds: r.rounds } };
    }
    const groups = await ctx.sample(ctx.groupsPerStep, 0);
    // group baseline: no group with differing rewards means every advantage is 0, so is the
    // gradient; a critic's baseline r − V is informative whatever the groups are
    return { groups, skip: c.trpo_baseline === 'group' && !groups.some(isValid), state: { rounds: 0 } };
  },

  advantages(c, batch) {
    if (c.trpo_baseline === 'value') return firstTokenAdvantages(batch);
    const G = c.num_generations;
    return advantages(stepRewards(batch.groups, G), G, { scaleRewards: c.scale_rewards });
  },

  loss: (c, batch, m) => surrogateFor(c, batch)(m),

  update: (c, batch: StepBatch, ctx) => trpoStep(c, ctx, surrogateFor(c, batch)),

  metrics(c, batch, sums, t) {
    const v = (k: string) => (batch.skip ? 0 : (sums[k] ?? 0));
    const out: Record<string, number> = {
      'trpo/kl': v('kl'),
      'trpo/step_size': v('stepSize'),
      'trpo/line_search_steps': v('lineSearchSteps'),
      'trpo/improvement': v('improvement'),
    };
    if (c.trpo_baseline === 'value') {
      const perUpdate = (k: string) => (t.iterations > 0 && !batch.skip ? (sums[k] ?? 0) / t.iterations : NaN);
      out['loss/value_avg'] = perUpdate('vfLoss');
      out['val/clipfrac_avg'] = t.tokens > 0 && !batch.skip ? (sums.vfClipped ?? 0) / (t.tokens * t.iterations) : NaN;
      out['trpo/value_mean'] = batch.state['ppo/value_mean'] ?? NaN;
      out['trpo/returns_mean'] = batch.state['ppo/returns_mean'] ?? NaN;
      out['trpo/explained_variance'] = batch.state['ppo/explained_variance'] ?? NaN;
      out['trpo/value_grad_norm'] = perUpdate('valueGradNorm');
    }
    return out;
  },
};
