/**
 * @module rl/algorithms
 * The registry of algorithm families. `loss_type` picks the family; the trainer sees only the
 * `Algorithm` interface (types.ts). To add one: write `<family>.ts` implementing `Algorithm` and
 * add it to ALGORITHMS below (docs/architecture.md, "Add an algorithm").
 */
import { GpgRlError } from '../../errors.ts';
import { GROUP_LOSS_TYPES, groupAlgorithms } from './group.ts';
import { PPO_LOSS_TYPES, ppoAlgorithm } from './ppo.ts';
import { TRPO_LOSS_TYPES, trpoAlgorithm } from './trpo.ts';
import type { Algorithm } from './types.ts';

export type {
  Algorithm,
  AlgoConfig,
  CollectContext,
  Companion,
  LossResult,
  MicroBatchLoss,
  PreparedMicroBatch,
  StepBatch,
  UpdateOutcome,
} from './types.ts';

/** Every family, in the order their loss types are listed. */
const ALGORITHMS: readonly Algorithm[] = [groupAlgorithms, ppoAlgorithm, trpoAlgorithm];

/** Every `loss_type` value (the config's enum): each family's list, spread here in ALGORITHMS order. */
export const LOSS_TYPES = [...GROUP_LOSS_TYPES, ...PPO_LOSS_TYPES, ...TRPO_LOSS_TYPES] as const;

const byLossType = new Map<string, Algorithm>();
for (const a of ALGORITHMS) {
  for (const t of a.lossTypes) {
    if (byLossType.has(t))
      throw new GpgRlError(`algorithms: loss_type ${t} is claimed by two families`, 'GPG_ALGORITHM');
    byLossType.set(t, a);
  }
}
if (LOSS_TYPES.some((t) => !byLossType.has(t)) || byLossType.size !== LOSS_TYPES.length) {
  throw new GpgRlError(
    `algorithms: LOSS_TYPES (${LOSS_TYPES.join(', ')}) and the registered families (${[...byLossType.keys()].join(', ')}) differ`,
    'GPG_ALGORITHM',
  );
}

/**
 * Other trainers' names for a loss we implement: the loss_type it runs as, and the per-loss_type
 * fields it fixes unless the recipe sets them (recipes, `--set` and `--from-trl` read these).
 */
export const LOSS_TYPE_ALIASES: Readonly<
  Record<string, { lossType: (typeof LOSS_TYPES)[number]; defaults: Record<string, unknown>; note: string }>
> = {
  // TRL's bnpo: token-level mean (Σ loss·m / Σ m) with the clipped surrogate, no dynamic sampling,
  // no clip-higher. TRL divides by the tokens of the local batch, we by those of the whole step
  // batch (DESIGN §5), which is TRL's dapo normalisation.
  bnpo: {
    lossType: 'dapo',
    defaults: { dynamic_sampling: false, epsilon_high: null },
    note: 'token-level mean over the step batch (our dapo loss without dynamic sampling; epsilon_high = epsilon unless set)',
  },
};

/** The family implementing a loss_type. */
export function algorithmFor(lossType: string): Algorithm {
  const a = byLossType.get(lossType);
  if (!a)
    throw new GpgRlError(`Unknown loss type: ${lossType} (expected ${LOSS_TYPES.join('|')})`, 'GPG_CONFIG_INVALID');
  return a;
}

/**
 * Config fields some family owns (Algorithm.ownFields) that `lossType`'s family does not read:
 * field → the loss types that read it (setting one under another loss_type is a config error).
 */
export function foreignFields(lossType: string): Map<string, string[]> {
  const own = algorithmFor(lossType);
  const out = new Map<string, string[]>();
  for (const a of ALGORITHMS)
    if (a !== own)
      for (const f of a.ownFields ?? [])
        if (!own.ownFields?.includes(f)) out.set(f, [...(out.get(f) ?? []), ...a.lossTypes]);
  return out;
}

/** The per-loss_type default of a config field: loss_type → value (DESIGN §5 table). */
export function lossDefaults<T>(field: string): Record<(typeof LOSS_TYPES)[number], T> {
  return Object.fromEntries(
    LOSS_TYPES.map((t) => {
      const d = algorithmFor(t).defaults[t];
      if (!d || !(field in d))
        throw new GpgRlError(`algorithms: no default for ${field} under loss_type ${t}`, 'GPG_ALGORITHM');
      return [t, d[field] as T];
    }),
  ) as Record<(typeof LOSS_TYPES)[number], T>;
}
