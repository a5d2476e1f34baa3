/**
 * @module rl/algorithms/gae
 * PPO's per-token experience as pure float64 math (InstructGPT, arXiv 2203.02155; TRL
 * `ppo_trainer.py`; verl `compute_gae_advantage_return`): the KL to the reference model per token,
 * per-token rewards, generalised advantage estimation (Schulman et al., arXiv 1506.02438) and
 * whitening.
 *
 * Shapes: B completions, Tm1 = T − 1 positions, arrays [B*Tm1] row-major aligned with token
 * log-probs (position t scores token t+1). `mask` is completion_mask[:, 1:]: 1 on the completion's
 * tokens (contiguous; the prompt's left padding and the completion's right padding are 0; a row
 * zeroed by mask_truncated_completions is all 0).
 *
 *   logr      = refLp − lp
 *   kl        = −logr (k1)  |  (e^logr − 1) − logr (k3)          (TRL kl_estimator; Schulman 2020)
 *   r[b, t]   = −kl_coef·kl[b, t]  +  score[b]·[t = last completion token of b]
 *   δ[b, t]   = r[b, t] + γ·V[b, next] − V[b, t]                 V[b, next] = 0 after the last token
 *   A[b, t]   = δ[b, t] + γλ·A[b, next]                          A = 0 after the last token
 *   returns   = A + V
 *
 * Every completion is an episode that ends at its last token (an end token, or the length limit:
 * a truncated completion is not bootstrapped, as in TRL and verl). Masked positions get 0 and
 * are skipped, so padding never leaks into the recursion (verl's masked form).
 */
import { InvalidArgumentError } from '../../errors.ts';

export type KlEstimator = 'k1' | 'k3';

function checkLen(what: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new InvalidArgumentError(`gae: ${what} has ${a.length} entries, expected ${n}`);
}

/** KL(π‖π_ref) per token, estimated at the sampled token (0 where mask is 0). */
export function klPerToken(
  lp: Float64Array,
  refLp: Float64Array,
  mask: Float64Array,
  estimator: KlEstimator,
): Float64Array {
  checkLen('refLp', refLp, lp.length);
  checkLen('mask', mask, lp.length);
  const kl = new Float64Array(lp.length);
  for (let i = 0; i < lp.length; i++) {
    if (!mask[i]) continue;
    const logr = refLp[i]! - lp[i]!;
    kl[i] = estimator === 'k1' ? -logr : Math.expm1(logr) - logr;
  }
  return kl;
}

/** Index of each row's last completion token in [0, Tm1), or −1 for a row without one. */
export function lastTokens(mask: Float64Array, B: number, Tm1: number): Int32Array {
  checkLen('mask', mask, B * Tm1);
  const last = new Int32Array(B).fill(-1);
  for (let b = 0; b < B; b++)
    for (let t = Tm1 - 1; t >= 0; t--)
      if (mask[b * Tm1 + t]) {
        last[b] = t;
        break;
      }
  return last;
}

/** Per-token rewards: −kl_coef·kl on completion tokens, plus the sequence score on the last one. */
export function tokenRewards(x: {
  scores: Float64Array;
  kl: Float64Array | null;
  mask: Float64Array;
  B: number;
  Tm1: number;
  klCoef: number;
}): Float64Array {
  const { scores, kl, mask, B, Tm1, klCoef } = x;
  checkLen('scores', scores, B);
  if (kl) checkLen('kl', kl, B * Tm1);
  const r = new Float64Array(B * Tm1);
  if (kl) for (let i = 0; i < r.length; i++) r[i] = mask[i] ? -klCoef * kl[i]! : 0;
  const last = lastTokens(mask, B, Tm1);
  for (let b = 0; b < B; b++) if (last[b]! >= 0) r[b * Tm1 + last[b]!]! += scores[b]!;
  return r;
}

/** GAE over each row's completion tokens (see the module header); 0 at masked positions. */
export function gae(x: {
  rewards: Float64Array;
  values: Float64Array;
  mask: Float64Array;
  B: number;
  Tm1: number;
  gamma: number;
  lam: number;
}): { advantages: Float64Array; returns: Float64Array } {
  const { rewards, values, mask, B, Tm1, gamma, lam } = x;
  const n = B * Tm1;
  checkLen('rewards', rewards, n);
  checkLen('values', values, n);
  checkLen('mask', mask, n);
  const advantages = new Float64Array(n);
  const returns = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    let nextValue = 0;
    let lastGae = 0;
    for (let t = Tm1 - 1; t >= 0; t--) {
      const i = b * Tm1 + t;
      if (!mask[i]) continue;
      const delta = rewards[i]! + gamma * nextValue - values[i]!;
      lastGae = delta + gamma * lam * lastGae;
      advantages[i] = lastGae;
      returns[i] = lastGae + values[i]!;
      nextValue = values[i]!;
    }
  }
  return { advantages, returns };
}

/**
 * TRL `masked_whiten`: (x − mean)·rsqrt(var + 1e-8) over the masked entries, var unbiased (Bessel;
 * biased for a single entry); `shiftMean: false` adds the mean back. 0 at masked positions.
 */
export function whiten(x: Float64Array, mask: Float64Array, shiftMean = true): Float64Array {
  checkLen('mask', mask, x.length);
  let n = 0,
    s = 0;
  for (let i = 0; i < x.length; i++)
    if (mask[i]) {
      n++;
      s += x[i]!;
    }
  const out = new Float64Array(x.length);
  if (n === 0) return out;
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) ss += (x[i]! - mean) ** 2;
  const variance = (ss / n) * (n > 1 ? n / (n - 1) : 1);
  const scale = 1 / Math.sqrt(variance + 1e-8);
  for (let i = 0; i < x.length; i++) if (mask[i]) out[i] = (x[i]! - mean) * scale + (shiftMean ? 0 : mean);
  return out;
}
