/**
 * @module train/optimizer
 * What RL and SFT share around AdamW: the weight-decay rule (no decay on biases and norm weights,
 * as TRL / transformers' Trainer), building the optimizer over a model's trainable parameters,
 * and one optimizer step (clip or measure the gradient norm, step with the scheduled learning
 * rate unless the norm is non-finite, zero the gradients).
 */
import { AdamW, clipGradNorm, gradNorm } from '../tensor/optim.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** True for parameters that get weight decay: not biases, not norm weights (HF names). */
export function decays(name: string): boolean {
  return !name.endsWith('.bias') && !name.endsWith('norm.weight');
}

export interface OptimizerSettings {
  learningRate: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** AdamW over named parameters with the weight-decay rule. */
export function makeOptimizer(named: ReadonlyArray<[string, Tensor]>, o: OptimizerSettings): AdamW {
  return new AdamW(
    named.map(([n, p]) => ({ param: p, weightDecay: decays(n) ? o.weightDecay : 0 })),
    { lr: o.learningRate, beta1: o.beta1, beta2: o.beta2, eps: o.eps },
  );
}

export interface StepOutcome {
  /** Gradient L2 norm before clipping. */
  gradNorm: number;
  /** False when the norm was non-finite and the update was skipped. */
  stepped: boolean;
}

/**
 * Clips the gradients to `maxGradNorm` (0 = no clipping, norm only measured), runs AdamW at `lr`
 * when the norm is finite, and zeroes the gradients either way.
 */
export function optimizerStep(optimizer: AdamW, params: Tensor[], o: { lr: number; maxGradNorm: number }): StepOutcome {
  const norm = o.maxGradNorm > 0 ? clipGradNorm(params, o.maxGradNorm) : gradNorm(params);
  const stepped = Number.isFinite(norm);
  if (stepped) optimizer.step(o.lr);
  optimizer.zeroGrad();
  return { gradNorm: norm, stepped };
}
