/**
 * @module tensor/passes
 * Process-wide counts of the model passes that dominate training compute, for cost reports (the
 * ablation's components table): full-sequence decoder forwards (`CausalLM.hidden`, which every
 * policy, reference and critic forward goes through; generation's one-token `pagedStep` calls are
 * not counted here) and backward walks of the tape (`backward()`). Readers take differences of
 * snapshots around the work they measure; nothing resets them.
 */
export interface PassCounts {
  /** Full-sequence decoder forward passes (one per call, whatever B). */
  forward: number;
  /** Of those, passes whose output carries a gradient (the ones a backward later walks). */
  forwardWithGrad: number;
  /** Sequences (rows B) summed over the forward passes. */
  forwardSequences: number;
  /** Calls of tape backward() (a policy and a critic backward are two). */
  backward: number;
}

const counts: PassCounts = { forward: 0, forwardWithGrad: 0, forwardSequences: 0, backward: 0 };

/** A copy of the counts so far. */
export function passCounts(): PassCounts {
  return { ...counts };
}

/** `after − before`, field by field. */
export function passDelta(before: PassCounts, after: PassCounts = passCounts()): PassCounts {
  return {
    forward: after.forward - before.forward,
    forwardWithGrad: after.forwardWithGrad - before.forwardWithGrad,
    forwardSequences: after.forwardSequences - before.forwardSequences,
    backward: after.backward - before.backward,
  };
}

/** Called by CausalLM.hidden. */
export function countForward(rows: number, withGrad: boolean): void {
  counts.forward++;
  counts.forwardSequences += rows;
  if (withGrad) counts.forwardWithGrad++;
}

/** Called by tape backward(). */
export function countBackward(): void {
  counts.backward++;
}
