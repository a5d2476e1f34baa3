/**
 * @module rl/alpha
 * GPG's AGE (accurate gradient estimation, arXiv 2504.02546 §3, in the form of the official
 * trainer): a group is valid when its rewards are not all identical; `inverse_alpha =
 * min(1, valid/groups)` counted over the whole optimizer-step batch; the gpg loss is divided by it.
 * The β_th controller (`collectWithThreshold`) resamples until the valid fraction reaches
 * `min_inverse_alpha` (DESIGN §5), and its sibling `collectDynamic` is DAPO's dynamic sampling
 * (arXiv 2503.14476 §3.2). Both are pure: sampling is a callback, so they are tested without a model.
 */
import { InvalidArgumentError } from '../errors.ts';
import { isGroupValid } from './advantages.ts';

export { isGroupValid };

/** Valid groups in a batch of total rewards (groups of G contiguous completions). */
export function validGroups(rewards: ArrayLike<number>, G: number): number {
  if (rewards.length % G !== 0)
    throw new InvalidArgumentError(`validGroups: ${rewards.length} rewards do not split into groups of ${G}`);
  let v = 0;
  for (let s = 0; s < rewards.length; s += G) if (isGroupValid(rewards, s, G)) v++;
  return v;
}

/** `min(1, valid/groups)`; 0 when there are no groups. */
export function inverseAlpha(valid: number, groups: number): number {
  return groups > 0 ? Math.min(1, valid / groups) : 0;
}

export interface ThresholdResult<Group> {
  /** The step batch: `groupsPerStep` groups (fewer only if the sampler ran dry), in batch order. */
  groups: Group[];
  /** What the loss divides by: min(1, valid/groups), or max(valid/groups, minInverseAlpha) at the round limit. */
  inverseAlpha: number;
  validGroups: number;
  /** Resampling rounds after the first batch (0 = the first batch was good enough). */
  rounds: number;
  /** No valid group at all: skip the optimizer step (counted in gpg/skipped_steps). */
  skip: boolean;
  /** The valid fraction reached minInverseAlpha (false = proceeded at the round limit, or skipped). */
  thresholdReached: boolean;
}

/**
 * GPG's β_th resampling (DESIGN §5). Round 0 samples a normal batch of `groupsPerStep` groups.
 * While the valid fraction is below `minInverseAlpha` and fewer than `maxRounds` extra rounds ran,
 * sample as many new prompts as there are invalid groups in the batch and let each new VALID group
 * replace an invalid one (in batch order); new invalid groups are discarded. At the round limit
 * proceed with `inverse_alpha = max(valid/groups, minInverseAlpha)`; with no valid group, `skip`.
 * `sample(nPrompts, round)` returns one group per prompt (fewer when the data runs out).
 */
export async function collectWithThreshold<Group>(
  sample: (nPrompts: number, round: number) => Promise<Group[]>,
  isValid: (g: Group) => boolean,
  opts: { groupsPerStep: number; minInverseAlpha: number; maxRounds: number },
): Promise<ThresholdResult<Group>> {
  const { groupsPerStep, minInverseAlpha, maxRounds } = opts;
  const groups = (await sample(groupsPerStep, 0)).slice(0, groupsPerStep);
  const valid = groups.map(isValid);
  let v = valid.filter(Boolean).length;
  const n = groups.length;
  const reached = () => n > 0 && v / n >= minInverseAlpha;
  let rounds = 0;
  while (!reached() && n > 0 && rounds < maxRounds) {
    rounds++;
    const fresh = await sample(n - v, rounds);
    if (fresh.length === 0) break; // the sampler ran dry: stop here, as at the round limit
    let slot = 0;
    for (const g of fresh) {
      if (!isValid(g)) continue;
      while (slot < n && valid[slot]) slot++;
      if (slot >= n) break;
      groups[slot] = g;
      valid[slot] = true;
      v++;
    }
  }
  if (v === 0) return { groups, inverseAlpha: 0, validGroups: 0, rounds, skip: true, thresholdReached: false };
  const ok = reached();
  const frac = v / n;
  return {
    groups,
    validGroups: v,
    rounds,
    skip: false,
    thresholdReached: ok,
    inverseAlpha: ok ? Math.min(1, frac) : Math.max(frac, minInverseAlpha),
  };
}

export interface DynamicResult<Group> {
  /** Only valid groups, at most `groupsPerStep`; fewer when the round limit was hit (`filled` false). */
  groups: Group[];
  validGroups: number;
  rounds: number;
  /** No valid group at all: skip the optimizer step. */
  skip: boolean;
  /** The batch reached `groupsPerStep` valid groups. */
  filled: boolean;
  /** Groups sampled and dropped because their rewards were all the same. */
  dropped: number;
}

/**
 * DAPO dynamic sampling: drop groups whose rewards are all identical and refill with new prompts
 * (as many as are missing) until the batch holds `groupsPerStep` valid groups or `maxRounds`
 * refill rounds ran. The batch is never padded with invalid groups: at the limit it is smaller.
 */
export async function collectDynamic<Group>(
  sample: (nPrompts: number, round: number) => Promise<Group[]>,
  isValid: (g: Group) => boolean,
  opts: { groupsPerStep: number; maxRounds: number },
): Promise<DynamicResult<Group>> {
  const { groupsPerStep, maxRounds } = opts;
  const kept: Group[] = [];
  let dropped = 0;
  let rounds = 0;
  for (let round = 0; ; round++) {
    const need = groupsPerStep - kept.length;
    const got = await sample(need, round);
    for (const g of got) {
      if (kept.length >= groupsPerStep) break;
      if (isValid(g)) kept.push(g);
      else dropped++;
    }
    rounds = round;
    if (kept.length >= groupsPerStep || got.length === 0 || round >= maxRounds) break;
  }
  return {
    groups: kept,
    validGroups: kept.length,
    rounds,
    skip: kept.length === 0,
    filled: kept.length >= groupsPerStep,
    dropped,
  };
}
