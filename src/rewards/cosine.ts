/**
 * @module rewards/cosine
 * `cosine`: accuracy scaled by length with a cosine schedule (Yeo et al. 2025, "Demystifying Long
 * Chain-of-Thought Reasoning", App. C.1), as open-r1's `get_cosine_scaled_reward` computes it and
 * the GPG paper's distilled 1.5B recipe (open-rs) uses it:
 *
 *   progress = len / max_len;  c = cos(progress · π)
 *   correct: lo = min_value_correct (0.5), hi = max_value_correct (1.0)
 *   wrong:   lo = max_value_wrong (−0.5),  hi = min_value_wrong (0.0)   ← open-r1 swaps them
 *   reward = lo + ½ (hi − lo)(1 + c)
 *
 * So with the open-r1/open-rs defaults a short correct answer gets 1.0 falling to 0.5 at
 * max_len, and a short wrong answer 0.0 falling to −0.5. Length is counted in characters
 * (Unicode code points, as Python's len(str)) by default, or in completion tokens.
 *
 * One deliberate difference: open-r1 does not clamp `progress`, so past max_len the cosine
 * swings back up (open-r1 issue #312); we clamp len to max_len unless `clampLength: false`
 * asks for the exact open-r1 behaviour. Rows without a gold answer score null (open-r1 gives 1).
 */
import { ConfigError } from '../errors.ts';
import { goldColumn, verifyCompletions, type AnswerVerifier } from './accuracy.ts';
import type { RewardFn } from './index.ts';

export interface CosineParams {
  minValueWrong: number;
  maxValueWrong: number;
  minValueCorrect: number;
  maxValueCorrect: number;
  /** cosine_max_len, in `lengthUnit`s */
  maxLen: number;
  lengthUnit: 'chars' | 'tokens';
  /** clamp len at maxLen (default true); false reproduces open-r1's unclamped cosine */
  clampLength: boolean;
}

/** open-r1 / open-rs `GRPOScriptArguments` defaults. */
export const COSINE_DEFAULTS: CosineParams = {
  minValueWrong: 0.0,
  maxValueWrong: -0.5,
  minValueCorrect: 0.5,
  maxValueCorrect: 1.0,
  maxLen: 1000,
  lengthUnit: 'chars',
  clampLength: true,
};

/** The cosine-scaled value for one completion of length `len`. */
export function cosineScaled(len: number, correct: boolean, p: CosineParams = COSINE_DEFAULTS): number {
  const progress = (p.clampLength ? Math.min(len, p.maxLen) : len) / p.maxLen;
  const c = Math.cos(progress * Math.PI);
  const lo = correct ? p.minValueCorrect : p.maxValueWrong;
  const hi = correct ? p.maxValueCorrect : p.minValueWrong;
  return lo + 0.5 * (hi - lo) * (1.0 + c);
}

/** Length in Unicode code points (Python's len(str)); JS `.length` would count UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export interface CosineOptions extends Partial<CosineParams> {
  verifier: AnswerVerifier;
  answerField?: string;
}

export function cosineReward(opts: CosineOptions): RewardFn {
  const p: CosineParams = { ...COSINE_DEFAULTS };
  for (const k of Object.keys(COSINE_DEFAULTS) as (keyof CosineParams)[]) {
    if (opts[k] !== undefined) (p as unknown as Record<string, unknown>)[k] = opts[k];
  }
  if (!(Number.isFinite(p.maxLen) && p.maxLen > 0))
    throw new ConfigError(`cosine_max_len: must be a positive number (got ${p.maxLen})`);
  if (p.lengthUnit !== 'chars' && p.lengthUnit !== 'tokens')
    throw new ConfigError(`cosine_length_unit: must be chars or tokens (got ${String(p.lengthUnit)})`);
  const field = opts.answerField ?? 'answer';
  return async (input, ctx) => {
    const ok = await verifyCompletions(opts.verifier, goldColumn(input, field, 'cosine'), input.completions, ctx);
    return ok.map((correct, i) => {
      if (correct === null) return null;
      const len = p.lengthUnit === 'tokens' ? input.completionIds[i]!.length : charLength(input.completions[i]!);
      return cosineScaled(len, correct, p);
    });
  };
}
