/**
 * @module train/batch
 * Packs (prompt, completion) token sequences into a padded micro-batch the way DESIGN §4 lays
 * them out: left-padded prompts followed by right-padded completions,
 *
 *   [pad pad p p p | c c c pad]     attention_mask 0 0 1 1 1 1 1 1 0
 *                                   completion_mask 0 0 0 0 0 1 1 1 0
 *
 * and the shifted completion mask m = completion_mask[:, 1:] ([B, T-1]) that aligns with the
 * token log-probs.
 */
import { InvalidArgumentError } from '../errors.ts';

export interface PackedBatch {
  B: number;
  T: number;
  /** Prompt width P (all prompts end at column P-1). */
  P: number;
  ids: Int32Array;
  mask: Int32Array;
  /** completion_mask[:, 1:] as float64 [B*(T-1)], zeroed for masked (e.g. truncated) rows. */
  m: Float64Array;
}

export function packBatch(
  prompts: readonly number[][],
  completions: readonly number[][],
  padId: number,
  rowMask?: readonly boolean[],
): PackedBatch {
  const B = prompts.length;
  const P = Math.max(1, ...prompts.map((p) => p.length));
  const C = Math.max(1, ...completions.map((c) => c.length));
  const T = P + C;
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const m = new Float64Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    const p = prompts[b]!;
    const c = completions[b]!;
    for (let t = 0; t < p.length; t++) {
      ids[b * T + P - p.length + t] = p[t]!;
      mask[b * T + P - p.length + t] = 1;
    }
    const keep = rowMask ? rowMask[b] !== false : true;
    for (let t = 0; t < c.length; t++) {
      ids[b * T + P + t] = c[t]!;
      mask[b * T + P + t] = 1;
      // target at column P+t is predicted from position P+t-1: index (P+t)-1 in [B, T-1]
      if (keep) m[b * (T - 1) + P + t - 1] = 1;
    }
  }
  return { B, T, P, ids, mask, m };
}

/** A sequence's token counts, for planning micro-batches. */
export interface SeqLength {
  prompt: number;
  completion: number;
}

/**
 * Micro-batches by token budget: groups the sequences (indices into `lengths`) into micro-batches
 * whose padded size B·T stays ≤ maxTokens, where T = max prompt + max completion length of the
 * micro-batch (as packBatch lays it out, each at least 1). Sequences are taken longest first
 * (stable on ties), so similar lengths share a micro-batch (less padding) and the largest
 * activation footprint comes first. Every index appears once; the loss normaliser is the caller's
 * business (the RL losses count it over the whole step, so the split does not change the update).
 * A sequence longer than the budget on its own is an error naming it.
 */
export function planMicroBatches(lengths: readonly SeqLength[], maxTokens: number): number[][] {
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1))
    throw new InvalidArgumentError(`planMicroBatches: maxTokens must be a positive integer (got ${maxTokens})`);
  const width = (l: SeqLength) => Math.max(1, l.prompt) + Math.max(1, l.completion);
  const order = lengths.map((_, i) => i).sort((a, b) => width(lengths[b]!) - width(lengths[a]!) || a - b);
  const out: number[][] = [];
  let cur: number[] = [];
  let P = 1;
  let C = 1;
  for (const i of order) {
    const l = lengths[i]!;
    if (width(l) > maxTokens)
      throw new InvalidArgumentError(
        `micro-batch token budget ${maxTokens} is smaller than sequence ${i} alone (${l.prompt} prompt + ${l.completion} completion tokens); raise max_tokens_per_microbatch`,
      );
    const p = Math.max(P, l.prompt);
    const c = Math.max(C, l.completion);
    if (cur.length > 0 && (cur.length + 1) * (p + c) > maxTokens) {
      out.push(cur);
      cur = [i];
      P = Math.max(1, l.prompt);
      C = Math.max(1, l.completion);
      continue;
    }
    cur.push(i);
    P = p;
    C = c;
  }
  if (cur.length) out.push(cur);
  return out;
}
