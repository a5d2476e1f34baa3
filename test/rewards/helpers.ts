/** @module test/rewards/helpers — builds RewardInputs for reward tests. */
import type { RewardInput } from '../../src/rewards/index.ts';

/** One completion per entry; prompts are placeholders; completionIds one id per character unless given. */
export function input(completions: string[], fields: Record<string, unknown[]> = {}, ids?: number[][]): RewardInput {
  return {
    prompts: completions.map((_, i) => `prompt ${i}`),
    completions,
    completionIds: ids ?? completions.map((c) => Array.from(c, (_, j) => j)),
    ...fields,
  };
}

export function assertClose(actual: (number | null)[], expected: (number | null)[], tol = 1e-12): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const ok = e === null ? a === null : a !== null && Math.abs(a - e) <= tol;
    if (!ok) throw new Error(`index ${i}: got ${a}, expected ${e} (all: ${JSON.stringify(actual)})`);
  });
}
