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
