/**
 * @module rl/advantages
 * Pure functions over group rewards. A batch of B completions is B/G groups of G contiguous
 * completions (one group per prompt). Statistics match PyTorch / TRL: `std` is unbiased
 * (`torch.std`, divisor G − 1), advantages are `r − mean_g` or `(r − mean_g)/(std_g + 1e-4)`
 * (DESIGN §5; GPG uses F_norm = 1, i.e. no scaling).
 */
import { InvalidArgumentError } from '../errors.ts';

/** Added to the group std before dividing (TRL `grpo_trainer.py`, the fixtures' make_fixtures.py). */
export const STD_EPS = 1e-4;

function checkGroups(n: number, G: number, fn: string): number {
  if (!Number.isInteger(G) || G < 2)
    throw new InvalidArgumentError(`${fn}: group size G must be an integer ≥ 2 (got ${G})`);
  if (n % G !== 0) throw new InvalidArgumentError(`${fn}: ${n} rewards do not split into groups of ${G}`);
  return n / G;
}

/** Mean reward of each group: [B/G]. */
export function groupMeans(rewards: ArrayLike<number>, G: number): Float64Array {
  const ng = checkGroups(rewards.length, G, 'groupMeans');
  const out = new Float64Array(ng);
  for (let g = 0; g < ng; g++) {
    let s = 0;
    for (let i = 0; i < G; i++) s += rewards[g * G + i]!;
    out[g] = s / G;
  }
  return out;
}

/** Unbiased (divisor G − 1) std of each group, as `torch.std`: [B/G]. */
export function groupStds(rewards: ArrayLike<number>, G: number): Float64Array {
  const mean = groupMeans(rewards, G);
  const out = new Float64Array(mean.length);
  for (let g = 0; g < mean.length; g++) {
    let s = 0;
    for (let i = 0; i < G; i++) {
      const d = rewards[g * G + i]! - mean[g]!;
      s += d * d;
    }
    out[g] = Math.sqrt(s / (G - 1));
  }
  return out;
}

/** True when a group's rewards are not all identical (GPG's "valid" group; it carries signal). */
export function isGroupValid(rewards: ArrayLike<number>, start = 0, G = rewards.length - start): boolean {
  const r0 = rewards[start]!;
  for (let i = 1; i < G; i++) if (rewards[start + i] !== r0) return true;
  return false;
}

/** Number of valid groups in a batch. */
export function countValidGroups(rewards: ArrayLike<number>, G: number): number {
  const ng = checkGroups(rewards.length, G, 'countValidGroups');
  let v = 0;
  for (let g = 0; g < ng; g++) if (isGroupValid(rewards, g * G, G)) v++;
  return v;
}

/** Per-completion advantages [B]: `r − mean_g`, or `(r − mean_g)/(std_g + 1e-4)` with scaleRewards. */
export function advantages(rewards: ArrayLike<number>, G: number, opts: { scaleRewards: boolean }): Float64Array {
  const mean = groupMeans(rewards, G);
  const std = opts.scaleRewards ? groupStds(rewards, G) : null;
  const out = new Float64Array(rewards.length);
  for (let b = 0; b < rewards.length; b++) {
    const g = Math.floor(b / G);
    const a = rewards[b]! - mean[g]!;
    out[b] = std ? a / (std[g]! + STD_EPS) : a;
  }
  return out;
}

/**
 * Total reward per completion: Σ_f w_f · r_f, with null (NaN) entries skipped (TRL `nansum`).
 * perFn: one Float64Array [B] per reward function; NaN = "not applicable to this row".
 */
export function weightedRewardSum(perFn: readonly Float64Array[], weights: readonly number[] | null): Float64Array {
  if (weights && weights.length !== perFn.length)
    throw new InvalidArgumentError(`weightedRewardSum: ${weights.length} weights for ${perFn.length} reward functions`);
  const B = perFn[0]?.length ?? 0;
  const out = new Float64Array(B);
  perFn.forEach((r, f) => {
    if (r.length !== B)
      throw new InvalidArgumentError(`weightedRewardSum: reward function ${f} gave ${r.length} values, expected ${B}`);
    const w = weights ? weights[f]! : 1;
    for (let b = 0; b < B; b++) if (!Number.isNaN(r[b]!)) out[b]! += w * r[b]!;
  });
  return out;
}

/** Mean and unbiased std over the non-NaN entries (NaN when there are none / fewer than 2). */
export function nanMeanStd(x: ArrayLike<number>): { mean: number; std: number } {
  let n = 0,
    s = 0;
  for (let i = 0; i < x.length; i++)
    if (!Number.isNaN(x[i]!)) {
      n++;
      s += x[i]!;
    }
  if (n === 0) return { mean: NaN, std: NaN };
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isNaN(x[i]!)) q += (x[i]! - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(q / (n - 1)) : NaN };
}

export interface RewardStats {
  /** `reward`: mean total reward over the batch. */
  reward: number;
  /** `reward_std`: mean of the per-group stds (TRL logs `std_rewards.mean()`). */
  rewardStd: number;
  /** `frac_reward_zero_std`: fraction of groups whose rewards are all identical. */
  fracRewardZeroStd: number;
  /** Groups with non-identical rewards (GPG's valid groups). */
  validGroups: number;
  groups: number;
}

/** The reward metrics of DESIGN §8 for one batch of total rewards. */
export function rewardStats(rewards: ArrayLike<number>, G: number): RewardStats {
  const std = groupStds(rewards, G);
  let s = 0;
  for (let i = 0; i < rewards.length; i++) s += rewards[i]!;
  const groups = std.length;
  const validGroups = countValidGroups(rewards, G);
  let ss = 0;
  for (const v of std) ss += v;
  return {
    reward: s / rewards.length,
    rewardStd: ss / groups,
    fracRewardZeroStd: (groups - validGroups) / groups,
    validGroups,
    groups,
  };
}

/** Total rewards of a step batch of groups in batch order [groups × G]. */
export function stepRewards(groups: ReadonlyArray<{ rewards: Float64Array }>, G: number): Float64Array {
  const all = new Float64Array(groups.length * G);
  groups.forEach((g, k) => all.set(g.rewards, k * G));
  return all;
}
