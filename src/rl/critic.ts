/**
 * @module rl/critic
 * A critic: a value model (model/value.ts, HF `…ForTokenClassification`, one output) with its own
 * AdamW, usable by any algorithm that wants a learned baseline (PPO's GAE here; a TRPO value
 * baseline). Three calls per use:
 *
 *   predict(batch, select)              values V[b, t] without gradient, dense [B*(T-1)]
 *   backward(batch, select, targets, o) the (clipped) value loss of a micro-batch, gradients added
 *   step(lr, maxGradNorm)               clip, AdamW step, zero the gradients
 *
 * and save(dir) / load(dir) (an HF folder plus `optimizer.safetensors`, AdamW moments by HF name
 * with the step count in its metadata) for checkpoints that resume bit-exactly.
 *
 * The value loss is TRL's (ppo_trainer.py), as a sum over the micro-batch's tokens divided by the
 * whole update's token count (so micro-batches add up to the un-split update, DESIGN §5):
 *
 *   V_clip = clamp(V, V_old − cliprange_value, V_old + cliprange_value)   (no clamp when null)
 *   vf     = 0.5 · Σ max((V − R)², (V_clip − R)²)·m / N
 *
 * Subgradients follow torch: `torch.max` splits the gradient on a tie, `torch.clamp` passes it
 * where V_old − c ≤ V ≤ V_old + c (bounds included).
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward, noGrad } from '../tensor/tape.ts';
import type { AdamW } from '../tensor/optim.ts';
import type { CausalLM, TokenBatch } from '../model/decoder.ts';
import { ValueModel } from '../model/value.ts';
import { tensorSource } from '../model/folder.ts';
import { readSafetensorsFile, toFloat32, writeSafetensorsFile, type StSource } from '../model/safetensors.ts';
import { makeOptimizer, optimizerStep, type OptimizerSettings, type StepOutcome } from '../train/optimizer.ts';
import { replaceDirAtomic } from '../io/atomic.ts';
import { CheckpointError, InvalidArgumentError } from '../errors.ts';

export const CRITIC_OPTIMIZER_FILE = 'optimizer.safetensors';

export interface ValueLossInput {
  /** Current values [n] (the quantity differentiated). */
  values: Float64Array;
  /** Values when the experience was collected [n] (the clip's centre). */
  oldValues: Float64Array;
  /** Regression targets [n] (PPO: returns = A + V_old). */
  returns: Float64Array;
  mask: Float64Array;
  /** ±range of the value clip around oldValues (TRL cliprange_value); null = plain squared error. */
  cliprangeValue: number | null;
  /** Tokens of the whole update (the denominator; clamped to ≥ 1). */
  tokens: number;
}

export interface ValueLossOutput {
  /** 0.5 · Σ max(…)·m / N (this micro-batch's share of the update's loss). */
  loss: number;
  /** dLoss/dV [n]. */
  dvalues: Float64Array;
  /** Σ m·[clipped term larger] (TRL vf_clipfrac numerator). */
  clippedTokens: number;
}

/** TRL's clipped value loss and its gradient (see the module header). */
export function valueLoss(x: ValueLossInput): ValueLossOutput {
  const n = x.values.length;
  for (const [k, a] of [
    ['oldValues', x.oldValues],
    ['returns', x.returns],
    ['mask', x.mask],
  ] as const)
    if (a.length !== n) throw new InvalidArgumentError(`valueLoss: ${k} has ${a.length} entries, expected ${n}`);
  const c = x.cliprangeValue;
  const N = Math.max(1, x.tokens);
  const dvalues = new Float64Array(n);
  let loss = 0,
    clipped = 0;
  for (let i = 0; i < n; i++) {
    const m = x.mask[i]!;
    if (!m) continue;
    const v = x.values[i]!,
      R = x.returns[i]!;
    const e1 = v - R;
    const l1 = e1 * e1;
    if (c === null) {
      loss += 0.5 * l1 * m;
      dvalues[i] = (e1 * m) / N;
      continue;
    }
    const lo = x.oldValues[i]! - c,
      hi = x.oldValues[i]! + c;
    const vc = Math.min(Math.max(v, lo), hi);
    const e2 = vc - R;
    const l2 = e2 * e2;
    const d1 = e1,
      d2 = v >= lo && v <= hi ? e2 : 0; // d(0.5·l)/dV
    const d = l1 > l2 ? d1 : l2 > l1 ? d2 : 0.5 * (d1 + d2);
    loss += 0.5 * Math.max(l1, l2) * m;
    dvalues[i] = (d * m) / N;
    if (l2 > l1) clipped += m;
  }
  return { loss: loss / N, dvalues, clippedTokens: clipped };
}

export interface CriticSettings extends OptimizerSettings {
  /** Recompute each decoder layer in backward (as the policy's gradient_checkpointing). */
  gradientCheckpointing?: boolean;
}

export class Critic {
  readonly model: ValueModel;
  private readonly optimizer: AdamW;
  private readonly named: Array<[string, Tensor]>;

  constructor(model: ValueModel, settings: CriticSettings) {
    this.model = model;
    model.backbone.gradientCheckpointing = !!settings.gradientCheckpointing;
    this.named = model.trainableParameters();
    this.optimizer = makeOptimizer(this.named, settings);
  }

  /** A critic whose value model starts as a copy of the policy with a fresh head (seeded). */
  static fromPolicy(policy: CausalLM, seed: number, settings: CriticSettings): Critic {
    return new Critic(ValueModel.fromPolicy(policy, seed), settings);
  }

  /** A critic from a value-model folder (…ForTokenClassification, …ForSequenceClassification or …ForCausalLM). */
  static load(dir: string, seed: number, settings: CriticSettings): Critic {
    return new Critic(ValueModel.load(dir, seed), settings);
  }

  /** Values at the selected positions, dense [B*(T-1)] (0 elsewhere), without gradient. */
  predict(batch: TokenBatch, select: ArrayLike<number>): Float64Array {
    const n = batch.B * (batch.T - 1);
    return noGrad(() =>
      tidy(() => {
        const { values, index } = this.model.values(batch, { select });
        const v = values.toFloat32();
        const out = new Float64Array(n);
        for (let i = 0; i < index.length; i++) out[index[i]!] = v[i]!;
        return out;
      }),
    );
  }

  /**
   * One micro-batch of a critic update: values with gradient, valueLoss, backward of
   * `coef`·loss (PPO: vf_coef). Gradients add up across calls until step().
   */
  backward(
    batch: TokenBatch,
    mask: Float64Array,
    targets: { oldValues: Float64Array; returns: Float64Array },
    o: { cliprangeValue: number | null; tokens: number; coef: number },
  ): ValueLossOutput & { values: Float64Array } {
    const n = batch.B * (batch.T - 1);
    this.model.setRequiresGrad(true);
    try {
      return tidy(() => {
        const { values, index } = this.model.values(batch, { select: mask });
        const v = values.toFloat32();
        const dense = new Float64Array(n);
        for (let i = 0; i < index.length; i++) dense[index[i]!] = v[i]!;
        const out = valueLoss({
          values: dense,
          oldValues: targets.oldValues,
          returns: targets.returns,
          mask,
          cliprangeValue: o.cliprangeValue,
          tokens: o.tokens,
        });
        if (index.length > 0) {
          const seed = new Float32Array(index.length);
          for (let i = 0; i < index.length; i++) seed[i] = o.coef * out.dvalues[index[i]!]!;
          backward(values, Tensor.fromArray(seed, [index.length]));
        }
        return { ...out, values: dense };
      });
    } finally {
      this.model.setRequiresGrad(false);
    }
  }

  /** Clips the critic's gradient norm, steps its AdamW at `lr`, zeroes the gradients. */
  step(lr: number, maxGradNorm: number): StepOutcome {
    return optimizerStep(this.optimizer, this.model.parameters(), { lr, maxGradNorm });
  }

  /**
   * An HF …ForTokenClassification folder at `dir` (created or replaced) plus, unless `weightsOnly`,
   * the AdamW moments (`m.<name>`, `v.<name>`) and step count in optimizer.safetensors. `dir` may
   * be a folder being staged (`into: true` writes into it as is).
   */
  save(dir: string, o: { weightsOnly?: boolean; into?: boolean; tokenizerFrom?: string } = {}): void {
    const write = (stage: string) => {
      this.model.writeInto(stage, { tokenizerFrom: o.tokenizerFrom });
      if (o.weightsOnly) return;
      // the moments streamed from the backend a piece at a time (no host copy)
      const st = this.optimizer.moments();
      const t = new Map<string, StSource>();
      this.named.forEach(([name], i) => {
        t.set(`m.${name}`, tensorSource(st.m[i]!)); // moments are [numel], as the file has them
        t.set(`v.${name}`, tensorSource(st.v[i]!));
      });
      writeSafetensorsFile(join(stage, CRITIC_OPTIMIZER_FILE), t, { format: 'pt', step: String(st.step) });
    };
    if (o.into) write(dir);
    else replaceDirAtomic(dir, write);
  }

  /** Restores weights and optimizer state from a save() folder (the same architecture and shapes). */
  load(dir: string): void {
    const optPath = join(dir, CRITIC_OPTIMIZER_FILE);
    if (!existsSync(optPath))
      throw new CheckpointError(
        `${dir}: no ${CRITIC_OPTIMIZER_FILE} (the critic's AdamW state); the checkpoint is incomplete`,
      );
    const saved = ValueModel.load(dir);
    try {
      this.model.copyFrom(saved);
    } finally {
      saved.dispose();
    }
    const f = readSafetensorsFile(optPath);
    const step = Number(f.metadata['step']);
    const get = (k: string) => {
      const t = f.tensors.get(k);
      if (!t) throw new CheckpointError(`${optPath}: no ${k}; the checkpoint does not belong to this critic`);
      return toFloat32(t);
    };
    this.optimizer.loadState({
      step,
      m: this.named.map(([n]) => get(`m.${n}`)),
      v: this.named.map(([n]) => get(`v.${n}`)),
    });
  }

  numParameters(): number {
    return this.model.numParameters();
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}
