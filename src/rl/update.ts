/**
 * @module rl/update
 * The UpdateContext: what the trainer hands an algorithm that owns its parameter update instead of
 * the trainer's loss → backward → AdamW loop (TRPO, src/rl/algorithms/trpo.ts). It works on the
 * trainable parameters as one flat float64 vector θ (trainableParameters() order) and offers:
 *
 *   gradient(loss)     ∇θ of the algorithm's loss summed over the step's micro-batches, at θ_old
 *   evaluate(loss)     that loss (no gradient) and the mean KL(π_old ‖ π_θ) over the completion
 *                      tokens, at the current weights
 *   fisher(rows)(v)    F v: the Fisher of the mean token KL at θ_old over the completions `rows`
 *   moveTo(θ), restore()   set the weights; restore() puts θ_old back bit for bit
 *
 * Fisher-vector products without second-order autograd, in Gauss–Newton form: the mean token
 * KL(π_old ‖ π_θ) has zero gradient at θ_old, so its Hessian there is exactly
 *   F = (1/N) Σ_t J_tᵀ (diag(p_t) − p_t p_tᵀ) J_t,   J_t = ∂(logits_t/τ)/∂θ
 * (the Fisher of the policy). logits = h Wᵀ with h the final hidden states and W the lm_head, so
 *   J v = (J_h v) Wᵀ + h (v_W)ᵀ
 * where J_h v comes from central finite differences of h, (h(θ + εv) − h(θ − εv)) / 2ε (O(ε²),
 * fp32 rounding O(1/ε)), and the lm_head part h v_Wᵀ is exact. diag(p) − p pᵀ is the native
 * kl_hvp kernel (src/tensor/ops/kl.ts), and Jᵀ(·) is the logits' transpose (below) followed by one
 * backward pass from h. Each product costs two forwards without gradient and one forward + backward over the
 * subsampled completions. The π_old logits for the KL are kept per micro-batch as the selected
 * hidden states [N, C] (plus a copy of the lm_head when it is trained), not as [N, V] logits, and
 * both the KL and the Fisher products compute logits in chunks of rows (klChunkRows, ≈ 64 MB of
 * [rows, V] at a time): dL/dh = (M J v) W and the lm_head's Σ (M J v)ᵀ h per chunk, then one
 * backward from h. No [N, V] buffer exists at a real vocabulary (151,936 × 2,048 tokens = 1.2 GB).
 */
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward, noGrad } from '../tensor/tape.ts';
import { linear, matmul } from '../tensor/ops/matmul.ts';
import { klDivergence, klHvp } from '../tensor/ops/kl.ts';
import { tokenLogprobs } from '../tensor/ops/logprobs.ts';
import { add } from '../tensor/ops/add.ts';
import type { CausalLM } from '../model/decoder.ts';
import type { PackedBatch } from '../train/batch.ts';
import type { LossResult, MicroBatchLoss } from './algorithms/types.ts';
import { GpgRlError } from '../errors.ts';

/** The loss an algorithm evaluates on one micro-batch (the MicroBatchLoss it gets has lp = current log-probs, oldLp = π_old's). */
export type MicroLoss = (m: MicroBatchLoss) => LossResult;

export interface UpdateContext {
  /** Trainable parameters (the length of every vector). */
  readonly size: number;
  /** 1-based step number (messages, seeds). */
  readonly step: number;
  /** Completions in the step batch (rows for fisher() are indices into it, batch order). */
  readonly sequences: number;
  /** θ_old as float64 (exactly the float32 weights). */
  readonly theta0: Float64Array;
  /** Gradient of Σ_micro-batches loss at the current weights (θ_old on the first call), and the loss and its sums. */
  gradient(loss: MicroLoss): { grad: Float64Array; loss: number; sums: Record<string, number> };
  /** The loss (no gradient) and the mean KL(π_old ‖ π_θ) over all completion tokens at the current weights. */
  evaluate(loss: MicroLoss): { loss: number; kl: number };
  /** A Fisher-vector product at θ_old over the completions `rows` (mean over their tokens). */
  fisher(rows: readonly number[]): (v: Float64Array) => Float64Array;
  /** Sets the weights to θ (rounded to float32). */
  moveTo(theta: Float64Array): void;
  /** θ_old back, bit for bit. */
  restore(): void;
}

/** One micro-batch of the step: its completions (batch order) and their packed tokens. */
export interface UpdateMicroBatch {
  rows: number[];
  packed: PackedBatch;
}

export interface PolicyUpdateOptions {
  model: CausalLM;
  micro: UpdateMicroBatch[];
  /** Packs the given completions into micro-batches (for the Fisher subsample). */
  pack: (rows: number[]) => UpdateMicroBatch[];
  advantages: Float64Array;
  denominators: { tokens: number; sequences: number };
  temperature: number;
  checkpoint: boolean;
  step: number;
  /** Central-difference step relative to ‖θ‖/‖v‖ (default 1e-3). */
  fdScale?: number;
  /** Rows of [rows, V] logits the KL and Fisher products compute at a time (default: ≈ 64 MB of them). */
  klChunkRows?: number;
  /** Called with each micro-batch's first-pass log-probs (entropy, sampling diff bookkeeping). */
  onFirstPass?: (k: number, lp: Float64Array, entropy: Float32Array | null, mb: UpdateMicroBatch) => void;
}

interface OldState {
  /** π_old's selected hidden states per micro-batch [N_k, C], on the host (the KL reads them in row chunks). */
  h: Float32Array[];
  /** π_old's log-probs per micro-batch, dense [B·(T−1)]. */
  lp: Float64Array[];
}

/** The UpdateContext over a model and the step's packed micro-batches (the trainer builds it). */
export class PolicyUpdate implements UpdateContext {
  readonly size: number;
  readonly step: number;
  readonly sequences: number;
  readonly theta0: Float64Array;
  /** θ_old bits per parameter (restore() writes these back). */
  private readonly saved: Float32Array[];
  private readonly params: Tensor[];
  private readonly lmHead: Tensor;
  /** Index of the lm_head among the trainable parameters, −1 when it is frozen (LoRA). */
  private readonly lmHeadIndex: number;
  /** A copy of W_old when the lm_head is trained (π_old's logits = h_old W_oldᵀ). */
  private readonly lmHeadOld: Tensor | null;
  private old: OldState | null = null;
  private readonly fisherCache = new Map<string, UpdateMicroBatch[]>();
  private readonly chunkRows: number;
  private disposed = false;

  constructor(private readonly o: PolicyUpdateOptions) {
    this.params = o.model.parameters();
    this.step = o.step;
    this.sequences = o.denominators.sequences;
    this.saved = this.params.map((p) => p.toFloat32());
    this.size = this.saved.reduce((s, a) => s + a.length, 0);
    this.theta0 = new Float64Array(this.size);
    let off = 0;
    for (const a of this.saved) {
      this.theta0.set(a, off);
      off += a.length;
    }
    this.lmHead = o.model.lmHeadWeight();
    this.lmHeadIndex = this.params.indexOf(this.lmHead);
    this.lmHeadOld = this.lmHeadIndex >= 0 ? this.lmHead.clone().keep() : null;
    this.chunkRows = Math.max(1, Math.floor(o.klChunkRows ?? (16 << 20) / this.lmHead.shape[0]!));
  }

  /** Releases the kept π_old tensors (the trainer calls it after the update). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lmHeadOld?.dispose();
    this.old = null;
  }

  private microLoss(loss: MicroLoss, k: number, mb: UpdateMicroBatch, lp: Float64Array): LossResult {
    const { B, T, m } = mb.packed;
    return loss({
      lp,
      oldLp: this.old?.lp[k] ?? lp,
      mask: m,
      advantages: Float64Array.from(mb.rows, (r) => this.o.advantages[r]!),
      B,
      Tm1: T - 1,
      denominators: this.o.denominators,
      micro: k,
    });
  }

  gradient(loss: MicroLoss): { grad: Float64Array; loss: number; sums: Record<string, number> } {
    const { model, temperature, checkpoint } = this.o;
    const first = this.old === null;
    const old: OldState = this.old ?? { h: [], lp: [] };
    let total = 0;
    const sums: Record<string, number> = {};
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
    for (const [k, mb] of this.o.micro.entries()) {
      const { B, T } = mb.packed;
      const res = tidy(() => {
        const { h, targets, index } = model.selectedHidden(mb.packed, { checkpoint, select: mb.packed.m });
        const { logps, entropy } = tokenLogprobs(h, this.lmHead, targets, { temperature, entropy: first });
        const lp = dense(logps.toFloat32(), index, B * (T - 1), this.step, k + 1);
        if (first) {
          // π_old at θ_old: its log-probs (ratios) and selected hidden states (evaluate()'s KL)
          old.lp.push(lp.slice());
          old.h.push(h.toFloat32());
          this.o.onFirstPass?.(k, lp, entropy ? entropy.toFloat32() : null, mb);
        }
        const out = this.microLoss(loss, k, mb, lp);
        if (index.length > 0) {
          const seed = new Float32Array(index.length);
          for (let i = 0; i < index.length; i++) seed[i] = out.dlp[index[i]!]!;
          backward(logps, Tensor.fromArray(seed, [index.length]));
        }
        return out;
      });
      total += res.loss;
      for (const [key, v] of Object.entries(res.sums)) sums[key] = (sums[key] ?? 0) + v;
    }
    if (first) this.old = old;
    return { grad: this.takeGrads(), loss: total, sums };
  }

  evaluate(loss: MicroLoss): { loss: number; kl: number } {
    const old = this.requireOld('evaluate');
    const { model, temperature } = this.o;
    let total = 0;
    let klSum = 0;
    let tokens = 0;
    noGrad(() => {
      for (const [k, mb] of this.o.micro.entries()) {
        const { B, T } = mb.packed;
        tidy(() => {
          const { h, targets, index } = model.selectedHidden(mb.packed, { select: mb.packed.m });
          if (index.length === 0) return;
          const hNew = h.toFloat32();
          const hOld = old.h[k]!;
          // the KL over the vocabulary, [rows, V] logits at a time (never [N, V] at a real vocabulary)
          this.rowChunks(index.length, (r0, r1) =>
            tidy(() => {
              const zNew = linear(this.rows(hNew, r0, r1), this.lmHead);
              const zOld = linear(this.rows(hOld, r0, r1), this.lmHeadOld ?? this.lmHead);
              for (const x of klDivergence(zOld, zNew, temperature).toFloat32()) klSum += x;
            }),
          );
          tokens += index.length;
          const { logps } = tokenLogprobs(h, this.lmHead, targets, { temperature });
          total += this.microLoss(loss, k, mb, dense(logps.toFloat32(), index, B * (T - 1), this.step, k + 1)).loss;
        });
      }
    });
    return { loss: total, kl: tokens > 0 ? klSum / tokens : 0 };
  }

  /** Calls f(r0, r1) over [0, n) in runs of klChunkRows rows. */
  private rowChunks(n: number, f: (r0: number, r1: number) => void): void {
    for (let r0 = 0; r0 < n; r0 += this.chunkRows) f(r0, Math.min(n, r0 + this.chunkRows));
  }

  /** Rows [r0, r1) of a host [N, C] matrix as a tensor (C = hidden size). */
  private rows(h: Float32Array, r0: number, r1: number): Tensor {
    const C = this.lmHead.shape[1]!;
    return Tensor.fromArray(h.subarray(r0 * C, r1 * C), [r1 - r0, C]);
  }

  fisher(rows: readonly number[]): (v: Float64Array) => Float64Array {
    const key = rows.join(',');
    let batches = this.fisherCache.get(key);
    if (!batches) {
      batches = this.o.pack([...rows]);
      this.fisherCache.set(key, batches);
    }
    const sub = batches;
    let tokens = 0;
    for (const mb of sub) for (const x of mb.packed.m) tokens += x;
    const N = Math.max(1, tokens);
    return (v) => this.fisherVector(v, sub, N);
  }

  private fisherVector(v: Float64Array, sub: UpdateMicroBatch[], N: number): Float64Array {
    if (v.length !== this.size)
      throw new GpgRlError(`fisherVector: v has ${v.length} entries, expected ${this.size}`, 'GPG_INTERNAL');
    const { model, temperature, checkpoint } = this.o;
    const vNorm = norm(v);
    if (vNorm === 0) return new Float64Array(this.size);
    const eps = ((this.o.fdScale ?? 1e-3) * Math.max(norm(this.theta0), 1)) / vNorm;
    const hidden = (mb: UpdateMicroBatch) =>
      noGrad(() => tidy(() => model.selectedHidden(mb.packed, { select: mb.packed.m }).h.toFloat32()));
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
    const vW = this.lmHeadIndex >= 0 ? this.slice(v, this.lmHeadIndex) : null;
    const C = this.lmHead.shape[1]!;
    // the lm_head's own part Σ gᵀ h (the logits' Jᵀ in W), accumulated over chunks when W is trained
    const gW = vW ? new Float32Array(this.lmHead.size) : null;
    const s = 1 / (temperature * temperature * N); // J_zᵀ M J_z = J_logitsᵀ M J_logits / τ²
    for (const mb of sub) {
      // J_h v by central differences of the final hidden states
      this.moveTo(this.theta0, v, eps);
      const hPlus = hidden(mb);
      this.moveTo(this.theta0, v, -eps);
      const hMinus = hidden(mb);
      this.restore();
      if (hPlus.length === 0) continue;
      const dh = new Float32Array(hPlus.length);
      for (let i = 0; i < dh.length; i++) dh[i] = (hPlus[i]! - hMinus[i]!) / (2 * eps);
      tidy(() => {
        const { h } = model.selectedHidden(mb.packed, { select: mb.packed.m, checkpoint }); // recorded
        const n = h.shape[0]!;
        const hHost = h.toFloat32();
        const vWt = vW ? Tensor.fromArray(vW, this.lmHead.shape) : null;
        // dL/dh = (M J v) W per chunk of rows ([rows, V] logits at a time), then one backward from h
        const gh = new Float32Array(n * C);
        noGrad(() =>
          this.rowChunks(n, (r0, r1) =>
            tidy(() => {
              const hc = this.rows(hHost, r0, r1);
              const logits = linear(hc, this.lmHead);
              let ju = linear(this.rows(dh, r0, r1), this.lmHead);
              if (vWt) ju = add(ju, linear(hc, vWt)); // + h v_Wᵀ (exact)
              const g = klHvp(logits, ju, temperature); // M J_logits v (1/τ² and 1/N are in s)
              const d = matmul(g, this.lmHead).toFloat32();
              for (let i = 0; i < d.length; i++) gh[r0 * C + i] = d[i]! * s;
              if (gW) {
                const w = matmul(g, hc, { transA: true }).toFloat32();
                for (let i = 0; i < w.length; i++) gW[i]! += w[i]! * s;
              }
            }),
          ),
        );
        backward(h, Tensor.fromArray(gh, [n, C]));
      });
    }
    const out = this.takeGrads();
    if (gW) {
      let off = 0;
      for (let i = 0; i < this.lmHeadIndex; i++) off += this.params[i]!.size;
      for (let i = 0; i < gW.length; i++) out[off + i]! += gW[i]!;
    }
    return out;
  }

  moveTo(theta: Float64Array, dir?: Float64Array, scale = 0): void {
    let off = 0;
    for (const p of this.params) {
      const n = p.size;
      const a = new Float32Array(n);
      if (dir) for (let i = 0; i < n; i++) a[i] = theta[off + i]! + scale * dir[off + i]!;
      else for (let i = 0; i < n; i++) a[i] = theta[off + i]!;
      p.write(a);
      off += n;
    }
  }

  restore(): void {
    this.params.forEach((p, i) => p.write(this.saved[i]!));
  }

  private requireOld(what: string): OldState {
    if (!this.old) throw new GpgRlError(`${what}: call gradient() first (it records π_old at θ_old)`, 'GPG_INTERNAL');
    return this.old;
  }

  /** The flattened .grad of every parameter (0 where none), then the grads are dropped. */
  private takeGrads(): Float64Array {
    const out = new Float64Array(this.size);
    let off = 0;
    for (const p of this.params) {
      if (p.grad) out.set(p.grad.toFloat32(), off);
      p.grad?.dispose();
      p.grad = null;
      off += p.size;
    }
    return out;
  }

  private slice(v: Float64Array, index: number): Float32Array {
    let off = 0;
    for (let i = 0; i < index; i++) off += this.params[i]!.size;
    return Float32Array.from(v.subarray(off, off + this.params[index]!.size));
  }
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function norm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}

/** Compact log-probs spread to a dense [B·(T−1)] array; a non-finite one is a clear error. */
function dense(values: Float32Array, index: Int32Array, n: number, step: number, micro: number): Float64Array {
  const lp = new Float64Array(n);
  for (let i = 0; i < index.length; i++) {
    if (!Number.isFinite(values[i]!))
      throw new GpgRlError(
        `step ${step}: the policy produced a non-finite token log-prob (${values[i]}) in micro-batch ${micro}; the weights have diverged (lower max_kl, or check the model files)`,
        'GPG_NONFINITE',
      );
    lp[index[i]!] = values[i]!;
  }
  return lp;
}
