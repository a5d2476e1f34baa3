/**
 * @module sft/sft
 * Supervised fine-tuning on (prompt, solution) pairs with the loss on solution tokens only:
 *   L = −Σ lp(solution tokens + eos) / Σ (solution tokens + eos)
 * Used to warm-start a tiny model trained from scratch (issue 6) and as the `sft_more` control arm
 * of the ablation. Same engine, packing (left-padded prompts, right-padded solutions), AdamW,
 * schedule, weight-decay rule and optimizer step as the RL trainer (src/train).
 */
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward } from '../tensor/tape.ts';
import { makeOptimizer, optimizerStep } from '../train/optimizer.ts';
import type { CausalLM } from '../model/decoder.ts';
import { packBatch } from '../train/batch.ts';
import { learningRateAt } from '../train/schedule.ts';
import { Rng } from '../data/rng.ts';
import { GpgRlError } from '../errors.ts';

export interface SftPair {
  prompt: number[];
  /** Solution token ids, eos included. */
  completion: number[];
}

export interface SftOptions {
  learningRate: number;
  batchSize: number;
  maxSteps: number;
  warmupRatio?: number;
  scheduler?: 'constant' | 'cosine' | 'linear';
  weightDecay?: number;
  maxGradNorm?: number;
  seed: number;
  padTokenId: number;
  /** Stop when this returns true (called every `evalEvery` steps with the step number). */
  evalEvery?: number;
  onEval?: (step: number) => boolean | Promise<boolean>;
  /** Stop after this many seconds of training (the ablation's equal-wall-time control). */
  maxSeconds?: number;
  onStep?: (step: number, loss: number) => void;
  /** Activation checkpointing per decoder layer (same gradients, less memory, one more forward). */
  gradientCheckpointing?: boolean;
}

export interface SftResult {
  steps: number;
  losses: number[];
  seconds: number;
}

/** Draws batches with replacement-free epochs (seeded) from `next()` and trains. */
export async function sftTrain(model: CausalLM, nextPair: (rng: Rng) => SftPair, o: SftOptions): Promise<SftResult> {
  const rng = new Rng(o.seed, 7);
  const opt = makeOptimizer(model.trainableParameters(), {
    learningRate: o.learningRate,
    weightDecay: o.weightDecay ?? 0,
  });
  const params = model.parameters();
  const losses: number[] = [];
  const t0 = performance.now();
  model.setRequiresGrad(true);
  let step = 0;
  try {
    for (; step < o.maxSteps; step++) {
      if (o.maxSeconds !== undefined && (performance.now() - t0) / 1000 >= o.maxSeconds) break;
      await new Promise((r) => setImmediate(r)); // let N-API finalizers of freed storages run
      const pairs = Array.from({ length: o.batchSize }, () => nextPair(rng));
      const packed = packBatch(
        pairs.map((p) => p.prompt),
        pairs.map((p) => p.completion),
        o.padTokenId,
      );
      const { B, T } = packed;
      const loss = tidy(() => {
        const { logps, index } = model.tokenLogps(packed, { select: packed.m, checkpoint: !!o.gradientCheckpointing });
        const n = index.length;
        const lp = logps.toFloat32();
        let s = 0;
        for (const v of lp) s += v;
        if (!Number.isFinite(s))
          throw new GpgRlError(
            `sft step ${step + 1}: non-finite token log-probs (loss ${-s / Math.max(1, n)}); the weights have diverged (lower the learning rate)`,
            'GPG_NONFINITE',
          );
        backward(logps, Tensor.full([n], -1 / Math.max(1, n)));
        return -s / Math.max(1, n);
      });
      const lr = learningRateAt(step, o.maxSteps, {
        learningRate: o.learningRate,
        warmupRatio: o.warmupRatio ?? 0,
        scheduler: o.scheduler ?? 'constant',
      });
      optimizerStep(opt, params, { lr, maxGradNorm: o.maxGradNorm ?? 0 });
      losses.push(loss);
      o.onStep?.(step + 1, loss);
      if (o.onEval && o.evalEvery && (step + 1) % o.evalEvery === 0) {
        model.setRequiresGrad(false);
        const stop = await o.onEval(step + 1);
        model.setRequiresGrad(true);
        if (stop) {
          step++;
          break;
        }
      }
    }
  } finally {
    model.setRequiresGrad(false);
    opt.dispose();
  }
  return { steps: step, losses, seconds: (performance.now() - t0) / 1000 };
}
