/**
 * @module rl/algorithms/group
 * The group-advantage family: GPG (arXiv 2504.02546), GRPO (arXiv 2402.03300), Dr. GRPO
 * (arXiv 2503.20783) and DAPO (arXiv 2503.14476). G completions per prompt; the advantage of a
 * completion is its reward minus its group's mean (÷ the group std with scale_rewards); the loss
 * is one formula per loss_type (group-loss.ts, DESIGN §5). What differs inside the family:
 *   collection   gpg + adjust_gd + min_inverse_alpha: β_th resampling (alpha.ts);
 *                dynamic_sampling (DAPO): drop groups with identical rewards and refill;
 *                otherwise one batch of groupsPerStep prompts
 *   α (AGE)      gpg + adjust_gd: the loss is divided by inverse_alpha = valid groups / groups
 *   loss         gpg: −lp·A token mean; grpo/dapo/dr_grpo: clipped ratio (+ β·k3 KL), three
 *                reductions
 * Defaults per loss_type are the DESIGN §5 table; the checks reject combinations the methods do
 * not define (adjust_gd with a clipped loss, gpg with μ > 1 or β > 0, …).
 */
import type { LossType } from '../config.ts';
import { advantages, isGroupValid, stepRewards } from '../advantages.ts';
import { collectDynamic, collectWithThreshold, inverseAlpha, validGroups } from '../alpha.ts';
import { computeLoss } from './group-loss.ts';
import type { Algorithm, AlgoConfig } from './types.ts';
import type { Group } from '../rollout.ts';
import { ConfigError } from '../../errors.ts';

export const GROUP_LOSS_TYPES = ['gpg', 'grpo', 'dapo', 'dr_grpo'] as const;

/** DESIGN §5 "Defaults per loss_type" (a recipe may override any of them). */
const DEFAULTS: Record<(typeof GROUP_LOSS_TYPES)[number], Record<string, unknown>> = {
  gpg: {
    scale_rewards: false,
    adjust_gd: true,
    min_inverse_alpha: 0.5,
    dynamic_sampling: false,
    beta: 0,
    epsilon_high: null,
  },
  grpo: {
    scale_rewards: true,
    adjust_gd: false,
    min_inverse_alpha: null,
    dynamic_sampling: false,
    beta: 0.04,
    epsilon_high: null,
  },
  dapo: {
    scale_rewards: true,
    adjust_gd: false,
    min_inverse_alpha: null,
    dynamic_sampling: true,
    beta: 0,
    epsilon_high: 0.28,
  },
  dr_grpo: {
    scale_rewards: false,
    adjust_gd: false,
    min_inverse_alpha: null,
    dynamic_sampling: false,
    beta: 0,
    epsilon_high: null,
  },
};

const isGpg = (c: Pick<AlgoConfig, 'loss_type'>) => c.loss_type === 'gpg';
/** GPG's AGE is on: the loss is divided by inverse_alpha. */
const usesAge = (c: AlgoConfig) => isGpg(c) && c.adjust_gd;
/** The clip ratio is logged where ratios can differ from 1 or a clipped loss runs. */
const logsClipRatio = (c: Pick<AlgoConfig, 'loss_type' | 'num_iterations'>) => c.num_iterations > 1 || !isGpg(c);

export const groupAlgorithms: Algorithm = {
  family: 'group advantage (GPG, GRPO, Dr. GRPO, DAPO)',
  lossTypes: GROUP_LOSS_TYPES,
  defaults: DEFAULTS,

  check(c, explicit, add) {
    if (!isGpg(c)) {
      if (c.adjust_gd)
        add(
          'adjust_gd',
          `is GPG's α and applies only to loss_type gpg (got loss_type ${c.loss_type}); remove adjust_gd`,
        );
      if (c.min_inverse_alpha !== null)
        add(
          'min_inverse_alpha',
          `is GPG's β_th and applies only to loss_type gpg (got loss_type ${c.loss_type}); remove min_inverse_alpha${c.loss_type === 'dapo' ? ' (DAPO resamples with dynamic_sampling)' : ''}`,
        );
    } else {
      if (c.num_iterations > 1)
        add(
          'num_iterations',
          `must be 1 for loss_type gpg (got ${c.num_iterations}): GPG has no ratio or clipping to keep reused batches on-policy; use loss_type grpo or dapo for μ > 1`,
        );
      if (c.beta > 0)
        add(
          'beta',
          `must be 0 for loss_type gpg (got ${c.beta}): GPG has no KL term; use loss_type grpo for a KL penalty`,
        );
      if (!c.adjust_gd && c.min_inverse_alpha !== null && explicit.has('min_inverse_alpha'))
        add(
          'min_inverse_alpha',
          `needs adjust_gd: true (β_th resampling is part of GPG's AGE; got adjust_gd false); remove min_inverse_alpha or set adjust_gd: true`,
        );
    }
    if (c.dynamic_sampling && c.min_inverse_alpha !== null && c.min_inverse_alpha > 0) {
      add(
        'dynamic_sampling',
        `and min_inverse_alpha (${c.min_inverse_alpha}) both resample groups; set one of them off (dynamic_sampling: false or min_inverse_alpha: null)`,
      );
    }
    if (c.dynamic_sampling_metric !== null && !c.dynamic_sampling)
      add(
        'dynamic_sampling_metric',
        `applies only with dynamic_sampling: true (got dynamic_sampling false); remove dynamic_sampling_metric or turn dynamic_sampling on`,
      );
    if (c.epsilon_high < c.epsilon)
      add(
        'epsilon_high',
        `must be ≥ epsilon (got epsilon_high ${c.epsilon_high} < epsilon ${c.epsilon}); clip-higher widens the upper bound only`,
      );
  },

  usesReference: (c) => c.beta > 0,
  needsOldLogps: (c) => c.num_iterations > 1,
  iterations: (c) => c.num_iterations,

  metricKeys(c) {
    const keys: string[] = [];
    if (c.beta > 0) keys.push('kl');
    if (logsClipRatio(c)) keys.push('clip_ratio/region_mean');
    keys.push('gpg/inverse_alpha', 'gpg/valid_groups', 'gpg/resample_rounds', 'gpg/skipped_steps');
    return keys;
  },

  async collect(c, ctx) {
    const isValid = (g: { rewards: Float64Array }) => isGroupValid(g.rewards);
    const { groupsPerStep } = ctx;
    if (usesAge(c) && c.min_inverse_alpha !== null && c.min_inverse_alpha > 0) {
      // β_th: resample until the valid fraction reaches min_inverse_alpha (DESIGN §5)
      const r = await collectWithThreshold(ctx.sample, isValid, {
        groupsPerStep,
        minInverseAlpha: c.min_inverse_alpha,
        maxRounds: c.max_resample_rounds,
      });
      if (!r.thresholdReached && !r.skip)
        ctx.log(
          `step ${ctx.step}: valid-group fraction ${(r.validGroups / r.groups.length).toFixed(2)} below min_inverse_alpha ${c.min_inverse_alpha} after ${r.rounds} resampling rounds; proceeding with inverse_alpha ${r.inverseAlpha.toFixed(3)}`,
        );
      return { groups: r.groups, skip: r.skip, state: { inverseAlpha: r.inverseAlpha, rounds: r.rounds } };
    }
    if (c.dynamic_sampling) {
      // DAPO keeps a group when its filter metric (accuracy by default, verl filter_groups.metric) differs within it
      const metric = filterMetric(c, ctx.rewardNames);
      const keep = (g: Group) => (metric === 'reward' ? isGroupValid(g.rewards) : varies(g.perFn[metric]!));
      const r = await collectDynamic(ctx.sample, keep, { groupsPerStep, maxRounds: c.max_resample_rounds });
      return { groups: r.groups, skip: r.skip, state: { inverseAlpha: 1, rounds: r.rounds } };
    }
    const groups = await ctx.sample(groupsPerStep, 0);
    if (!usesAge(c)) return { groups, skip: false, state: { inverseAlpha: 1, rounds: 0 } };
    const v = groups.filter(isValid).length;
    return { groups, skip: v === 0, state: { inverseAlpha: inverseAlpha(v, groups.length), rounds: 0 } };
  },

  advantages(c, batch) {
    const G = c.num_generations;
    return advantages(stepRewards(batch.groups, G), G, { scaleRewards: c.scale_rewards });
  },

  loss(c, batch, m) {
    const out = computeLoss({
      lossType: c.loss_type as LossType,
      lp: m.lp,
      oldLp: m.oldLp,
      refLp: m.refLp,
      mask: m.mask,
      advantages: m.advantages,
      B: m.B,
      Tm1: m.Tm1,
      epsilon: c.epsilon,
      epsilonHigh: c.epsilon_high,
      beta: c.beta,
      inverseAlpha: usesAge(c) ? batch.state.inverseAlpha! : 1,
      maxCompletionLength: c.max_completion_length,
      denominators: m.denominators,
    });
    return {
      loss: out.loss,
      dlp: out.dlp,
      sums: { klSum: out.metrics.klSum ?? 0, clippedTokens: out.metrics.clippedTokens ?? 0 },
    };
  },

  metrics(c, batch, sums, t) {
    const row: Record<string, number> = {};
    const perToken = (s: number) => (t.tokens > 0 ? s / t.iterations / t.tokens : NaN);
    if (c.beta > 0) row['kl'] = perToken(sums.klSum ?? 0);
    if (logsClipRatio(c)) row['clip_ratio/region_mean'] = perToken(sums.clippedTokens ?? 0);
    row['gpg/inverse_alpha'] = batch.skip ? 0 : usesAge(c) ? batch.state.inverseAlpha! : 1;
    row['gpg/valid_groups'] = validGroups(stepRewards(batch.groups, c.num_generations), c.num_generations);
    row['gpg/resample_rounds'] = batch.state.rounds ?? 0;
    row['gpg/skipped_steps'] = t.skippedSteps;
    return row;
  },
};

/** The per-completion values DAPO's dynamic sampling compares: a reward function's name, or `reward` (the total). */
export function filterMetric(c: Pick<AlgoConfig, 'dynamic_sampling_metric'>, rewardNames: readonly string[]): string {
  const m = c.dynamic_sampling_metric ?? (rewardNames.includes('accuracy') ? 'accuracy' : 'reward');
  if (m !== 'reward' && !rewardNames.includes(m)) {
    throw new ConfigError(
      `dynamic_sampling_metric: no reward function is called ${m} (reward functions: ${rewardNames.join(', ')}); use one of them or \`reward\` for the total reward`,
    );
  }
  return m;
}

/** True when a group's values are not all the same (NaN = not applicable counts as one value). */
function varies(values: ArrayLike<number>): boolean {
  const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));
  for (let i = 1; i < values.length; i++) if (!same(values[i]!, values[0]!)) return true;
  return false;
}
