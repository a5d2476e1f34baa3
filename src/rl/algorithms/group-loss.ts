/**
 * @module rl/algorithms/group-loss
 * Every policy loss of DESIGN §5 as pure float64 math, with its analytic gradient with respect to
 * the token log-probs. One switch on `lossType`, one formula per branch (TRL
 * `grpo_trainer.py:_compute_loss`). The engine turns `dlp` into parameter gradients by
 * back-propagating it through the log-prob op.
 *
 * Shapes: B completions, Tm1 = T − 1 token positions. `lp`, `oldLp`, `refLp`, `mask`, `dlp`:
 * [B*Tm1] row-major; `advantages`: [B]. `mask` is completion_mask[:, 1:] (aligned with lp).
 *
 *   ratio = exp(lp − oldLp)              (1 on-policy, but dratio/dlp = ratio, not 0)
 *   clipped(A) = −min(ratio·A, clamp(ratio, 1−ε_low, 1+ε_high)·A)
 *   kl = exp(ref − lp) − (ref − lp) − 1   (k3, Schulman 2020)
 *
 *   gpg     Σ(−lp·A·m) / N / inverse_alpha        (inverse_alpha = 1 for gpg_no_age / gpg_std)
 *   grpo    Σ_b [Σ_t((clipped + β·kl)·m) / max(1, Σ_t m)] / S
 *   dapo    Σ((clipped + β·kl)·m) / N
 *   dr_grpo Σ((clipped + β·kl)·m) / (S · max_completion_length)
 *
 * N (tokens) and S (sequences) are counted over the WHOLE optimizer-step batch when
 * `denominators` is given, so the losses (and gradients) of gradient-accumulation micro-batches sum
 * to the loss of the whole batch; every denominator is clamped to ≥ 1.
 *
 * Subgradients follow torch autograd: `torch.min(a, b)` sends half the gradient to each side on a
 * tie; `torch.clamp` passes the gradient where lo ≤ x ≤ hi (bounds included).
 */
import { InvalidArgumentError } from '../../errors.ts';
import type { LossType } from '../config.ts';

export interface LossInput {
  lossType: LossType;
  /** Current policy token log-probs [B*Tm1]. */
  lp: Float64Array;
  /** Log-probs of the policy that sampled the batch [B*Tm1]; absent = on-policy (lp, detached). */
  oldLp?: Float64Array;
  /** Reference-model log-probs [B*Tm1]; needed when beta > 0. */
  refLp?: Float64Array;
  /** completion_mask[:, 1:] [B*Tm1] (0/1, or 0 rows for masked truncated completions). */
  mask: Float64Array;
  /** Per-completion advantages [B]. */
  advantages: Float64Array;
  B: number;
  Tm1: number;
  /** Lower clip ε (grpo/dapo/dr_grpo). */
  epsilon?: number;
  /** Upper clip ε_high; default epsilon. */
  epsilonHigh?: number;
  /** KL coefficient (not allowed for gpg). */
  beta?: number;
  /** GPG's inverse_alpha over the whole step batch (1 = no AGE). */
  inverseAlpha?: number;
  /** dr_grpo's constant length normaliser. */
  maxCompletionLength?: number;
  /** Batch-wide counts across micro-batches: Σm (tokens) and number of completions (sequences). */
  denominators?: { tokens: number; sequences: number };
}

export interface LossMetrics {
  /** Σm of this micro-batch (for aggregating the means below across micro-batches). */
  tokens: number;
  /** Σ m·kl over this micro-batch (beta > 0 only). */
  klSum?: number;
  /** Token mean of kl (beta > 0 only). */
  kl?: number;
  /** Σ m·[token clipped] where the clip bounds the objective (TRL is_region_clipped). */
  clippedTokens?: number;
  /** Token mean of region clipping (non-gpg losses). */
  clipRatioRegionMean?: number;
}

export interface LossOutput {
  loss: number;
  /** dLoss/dlp [B*Tm1]. */
  dlp: Float64Array;
  metrics: LossMetrics;
}

/** Masked sum of `mask` (token count). */
export function maskSum(mask: Float64Array): number {
  let s = 0;
  for (let i = 0; i < mask.length; i++) s += mask[i]!;
  return s;
}

function checkInput(x: LossInput): void {
  const n = x.B * x.Tm1;
  const bad = (what: string, len: number | undefined, want: number) => {
    if (len !== undefined && len !== want)
      throw new InvalidArgumentError(
        `computeLoss(${x.lossType}): ${what} has ${len} entries, expected ${want} (B ${x.B} × Tm1 ${x.Tm1})`,
      );
  };
  bad('lp', x.lp.length, n);
  bad('mask', x.mask.length, n);
  bad('oldLp', x.oldLp?.length, n);
  bad('refLp', x.refLp?.length, n);
  if (x.advantages.length !== x.B)
    throw new InvalidArgumentError(
      `computeLoss(${x.lossType}): advantages has ${x.advantages.length} entries, expected B = ${x.B}`,
    );
}

/**
 * Per-token clipped surrogate + β·kl and its derivative wrt lp, written into pt / dpt [B*Tm1].
 * Also counts region-clipped tokens and the kl sum (masked).
 */
function clippedTokens(x: LossInput, lo: number, hi: number, beta: number, pt: Float64Array, dpt: Float64Array) {
  const { lp, oldLp, refLp, mask, advantages, B, Tm1 } = x;
  if (beta > 0 && !refLp)
    throw new InvalidArgumentError(
      `computeLoss(${x.lossType}): beta ${beta} > 0 needs refLp (reference-model log-probs)`,
    );
  let clipped = 0,
    klSum = 0;
  for (let b = 0; b < B; b++) {
    const A = advantages[b]!;
    for (let t = 0; t < Tm1; t++) {
      const i = b * Tm1 + t;
      const ratio = oldLp ? Math.exp(lp[i]! - oldLp[i]!) : 1;
      const c = Math.min(Math.max(ratio, 1 - lo), 1 + hi); // torch.clamp
      const inRange = ratio >= 1 - lo && ratio <= 1 + hi ? 1 : 0;
      const u = ratio * A,
        v = c * A;
      // d/dlp of min(u, v): u' = A·ratio, v' = A·ratio·inRange; ties split evenly (torch.minimum)
      const du = A * ratio,
        dv = A * ratio * inRange;
      const dmin = u < v ? du : u > v ? dv : 0.5 * (du + dv);
      pt[i] = -Math.min(u, v);
      dpt[i] = -dmin;
      if ((ratio < 1 - lo && A < 0) || (ratio > 1 + hi && A > 0)) clipped += mask[i]!;
      if (beta > 0) {
        const d = refLp![i]! - lp[i]!;
        const e = Math.exp(d);
        const kl = e - d - 1;
        pt[i]! += beta * kl;
        dpt[i]! += beta * (1 - e); // dkl/dlp = −e^d + 1
        klSum += kl * mask[i]!;
      }
    }
  }
  return { clipped, klSum };
}

/** The loss of DESIGN §5 for one (micro-)batch and dLoss/dlp. Throws on an unknown loss type. */
export function computeLoss(x: LossInput): LossOutput {
  checkInput(x);
  const { lp, mask, advantages, B, Tm1 } = x;
  const n = B * Tm1;
  const dlp = new Float64Array(n);
  const localTokens = maskSum(mask);
  const N = Math.max(1, x.denominators?.tokens ?? localTokens);
  const S = Math.max(1, x.denominators?.sequences ?? B);
  const lo = x.epsilon ?? 0.2;
  const hi = x.epsilonHigh ?? lo;
  const beta = x.beta ?? 0;
  const metrics: LossMetrics = { tokens: localTokens };
  let loss = 0;

  switch (x.lossType) {
    case 'gpg': {
      // GPG (arXiv 2504.02546 eq. 7, official trainer): token mean of −lp·A, then ÷ inverse_alpha.
      if (beta > 0)
        throw new InvalidArgumentError(`computeLoss(gpg): beta must be 0 (got ${beta}); GPG has no KL term`);
      const ia = x.inverseAlpha ?? 1;
      if (!(ia > 0))
        throw new InvalidArgumentError(
          `computeLoss(gpg): inverseAlpha must be > 0 (got ${ia}); skip steps with no valid group`,
        );
      const scale = 1 / N / ia;
      for (let b = 0; b < B; b++) {
        const A = advantages[b]!;
        for (let t = 0; t < Tm1; t++) {
          const i = b * Tm1 + t;
          loss += -lp[i]! * A * mask[i]!;
          dlp[i] = -A * mask[i]! * scale;
        }
      }
      loss *= scale;
      return { loss, dlp, metrics };
    }
    case 'grpo': {
      // GRPO (TRL loss_type "grpo"): per-sequence token mean, then mean over sequences.
      const pt = new Float64Array(n),
        dpt = new Float64Array(n);
      const { clipped, klSum } = clippedTokens(x, lo, hi, beta, pt, dpt);
      for (let b = 0; b < B; b++) {
        let ms = 0,
          s = 0;
        for (let t = 0; t < Tm1; t++) ms += mask[b * Tm1 + t]!;
        const w = 1 / Math.max(1, ms) / S;
        for (let t = 0; t < Tm1; t++) {
          const i = b * Tm1 + t;
          s += pt[i]! * mask[i]!;
          dlp[i] = dpt[i]! * mask[i]! * w;
        }
        loss += s * w;
      }
      fillClipMetrics(metrics, clipped, klSum, beta, localTokens);
      return { loss, dlp, metrics };
    }
    case 'dapo':
    case 'dr_grpo': {
      // DAPO: token mean over the batch (arXiv 2503.14476 eq. 8). Dr. GRPO: ÷ S·max_completion_length
      // with a constant length, so long completions are not down-weighted (arXiv 2503.20783 §3).
      let denom = N;
      if (x.lossType === 'dr_grpo') {
        const L = x.maxCompletionLength;
        if (L === undefined || !(L >= 1))
          throw new InvalidArgumentError(`computeLoss(dr_grpo): maxCompletionLength must be ≥ 1 (got ${L})`);
        denom = S * L;
      }
      const pt = new Float64Array(n),
        dpt = new Float64Array(n);
      const { clipped, klSum } = clippedTokens(x, lo, hi, beta, pt, dpt);
      for (let i = 0; i < n; i++) {
        loss += pt[i]! * mask[i]!;
        dlp[i] = (dpt[i]! * mask[i]!) / denom;
      }
      loss /= denom;
      fillClipMetrics(metrics, clipped, klSum, beta, localTokens);
      return { loss, dlp, metrics };
    }
    default:
      throw new InvalidArgumentError(
        `Unknown loss type: ${String((x as { lossType: unknown }).lossType)} (expected gpg|grpo|dapo|dr_grpo)`,
      );
  }
}

function fillClipMetrics(m: LossMetrics, clipped: number, klSum: number, beta: number, tokens: number): void {
  const d = Math.max(1, tokens);
  m.clippedTokens = clipped;
  m.clipRatioRegionMean = clipped / d;
  if (beta > 0) {
    m.klSum = klSum;
    m.kl = klSum / d;
  }
}

/**
 * The loss-side settings of the named variants in the fixtures / DESIGN §5 table:
 * gpg (AGE on), gpg_no_age (adjust_gd off), gpg_std (scale_rewards on, adjust_gd off).
 */
export const GPG_VARIANTS = {
  gpg: { scaleRewards: false, adjustGd: true },
  gpg_no_age: { scaleRewards: false, adjustGd: false },
  gpg_std: { scaleRewards: true, adjustGd: false },
} as const;
