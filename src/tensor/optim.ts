/**
 * @module tensor/optim
 * AdamW (torch.optim.AdamW semantics: decoupled weight decay, bias-corrected moments; one fused
 * native kernel per parameter tensor, native/cpu/adamw.cc) and gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_ semantics; sum of squares in double, native/cpu/gradnorm.cc).
 * Moments are float32 tensors kept outside tidy scopes until dispose().
 */
import { Tensor, shapeStr } from './tensor.ts';
import { TensorOpError } from '../errors.ts';

export interface ParamGroupOpts {
  weightDecay: number;
}

export interface AdamWOpts {
  lr: number;
  /** default 0.9 */
  beta1?: number;
  /** default 0.999 */
  beta2?: number;
  /** default 1e-8 */
  eps?: number;
  /** default 0.0; a parameter's own `weightDecay` overrides it */
  weightDecay?: number;
}

interface Slot {
  param: Tensor;
  weightDecay: number;
  m: Tensor; // exp_avg, float32, same size as param
  v: Tensor; // exp_avg_sq
}

function paramLabel(p: Tensor, i: number): string {
  return p.name ? `param ${i} (${p.name})` : `param ${i}`;
}

function checkHyper(name: string, value: number, ok: boolean, want: string): void {
  if (!ok) throw new TensorOpError('AdamW', `${name} must be ${want}, got ${value}`);
}

export class AdamW {
  private slots: Slot[];
  private lr: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private step_ = 0;
  private disposed = false;

  constructor(params: Array<{ param: Tensor; weightDecay?: number }>, opts: AdamWOpts) {
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    const wd = opts.weightDecay ?? 0.0;
    checkHyper('lr', this.lr, Number.isFinite(this.lr) && this.lr >= 0, 'a finite number ≥ 0');
    checkHyper('beta1', this.beta1, this.beta1 >= 0 && this.beta1 < 1, 'in [0, 1)');
    checkHyper('beta2', this.beta2, this.beta2 >= 0 && this.beta2 < 1, 'in [0, 1)');
    checkHyper('eps', this.eps, Number.isFinite(this.eps) && this.eps >= 0, 'a finite number ≥ 0');
    checkHyper('weightDecay', wd, Number.isFinite(wd) && wd >= 0, 'a finite number ≥ 0');
    const seen = new Set<Tensor>();
    this.slots = params.map(({ param, weightDecay }, i) => {
      if (param.disposed)
        throw new TensorOpError('AdamW', `${paramLabel(param, i)} was disposed (shape ${shapeStr(param.shape)})`);
      if (param.dtype !== 'float32')
        throw new TensorOpError(
          'AdamW',
          `${paramLabel(param, i)} must be float32 (master weights), got ${param.dtype}`,
        );
      if (seen.has(param)) throw new TensorOpError('AdamW', `${paramLabel(param, i)} is listed twice`);
      seen.add(param);
      const w = weightDecay ?? wd;
      checkHyper(`weightDecay of ${paramLabel(param, i)}`, w, Number.isFinite(w) && w >= 0, 'a finite number ≥ 0');
      return {
        param,
        weightDecay: w,
        m: Tensor.zeros([param.size], 'float32', param.backend).keep(),
        v: Tensor.zeros([param.size], 'float32', param.backend).keep(),
      };
    });
  }

  get stepCount(): number {
    return this.step_;
  }

  /**
   * One optimizer step over every parameter that has a gradient (others are skipped, their
   * moments untouched). `lr` overrides the learning rate from now on (schedulers call step(lr)).
   * The step count (bias correction) is one per optimizer; torch keeps one per parameter, which
   * differs only for a parameter that skipped earlier steps.
   */
  step(lr?: number): void {
    this.alive('step');
    if (lr !== undefined) {
      checkHyper('lr', lr, Number.isFinite(lr) && lr >= 0, 'a finite number ≥ 0');
      this.lr = lr;
    }
    // Validate every gradient before touching any parameter, so a bad one leaves all unchanged.
    this.slots.forEach(({ param }, i) => {
      if (param.disposed) throw new TensorOpError('AdamW.step', `${paramLabel(param, i)} was disposed`);
      const g = param.grad;
      if (!g) return;
      if (g.disposed) throw new TensorOpError('AdamW.step', `gradient of ${paramLabel(param, i)} was disposed`);
      if (g.dtype !== 'float32' || g.size !== param.size) {
        throw new TensorOpError(
          'AdamW.step',
          `gradient ${shapeStr(g.shape)} ${g.dtype} of ${paramLabel(param, i)} ${shapeStr(param.shape)}: expected float32 of the same size`,
        );
      }
    });
    this.step_++;
    for (const s of this.slots) {
      const g = s.param.grad;
      if (!g) continue;
      // (the backend drops converted copies of a weight it writes, e.g. the bf16 GEMM operand)
      s.param.backend.adamwStep(
        s.param.deviceBuffer,
        g.deviceBuffer,
        s.m.deviceBuffer,
        s.v.deviceBuffer,
        s.param.size,
        this.lr,
        this.beta1,
        this.beta2,
        this.eps,
        s.weightDecay,
        this.step_,
      );
    }
  }

  /** Disposes every parameter's .grad and sets it to null. */
  zeroGrad(): void {
    for (const { param } of this.slots) {
      if (param.grad) param.grad.dispose();
      param.grad = null;
    }
  }

  /** Copies of the optimizer state (for checkpoints); m[i], v[i] follow the constructor's order. */
  state(): { step: number; m: Float32Array[]; v: Float32Array[] } {
    this.alive('state');
    return { step: this.step_, m: this.slots.map((s) => s.m.toFloat32()), v: this.slots.map((s) => s.v.toFloat32()) };
  }

  /**
   * The live moment tensors (not copies; do not dispose or write them), for saves that stream
   * them to disk a piece at a time; m[i], v[i] follow the constructor's order.
   */
  moments(): { step: number; m: readonly Tensor[]; v: readonly Tensor[] } {
    this.alive('moments');
    return { step: this.step_, m: this.slots.map((s) => s.m), v: this.slots.map((s) => s.v) };
  }

  /** Restores state() output; lengths must match the parameters exactly. */
  loadState(st: { step: number; m: Float32Array[]; v: Float32Array[] }): void {
    this.alive('loadState');
    const name = 'AdamW.loadState';
    if (!Number.isInteger(st.step) || st.step < 0)
      throw new TensorOpError(name, `step must be an integer ≥ 0, got ${st.step}`);
    if (st.m.length !== this.slots.length || st.v.length !== this.slots.length) {
      throw new TensorOpError(
        name,
        `state has ${st.m.length} exp_avg and ${st.v.length} exp_avg_sq tensors, the optimizer has ${this.slots.length} parameters`,
      );
    }
    this.slots.forEach((s, i) => {
      for (const [k, a] of [
        ['exp_avg', st.m[i]!],
        ['exp_avg_sq', st.v[i]!],
      ] as const) {
        if (!(a instanceof Float32Array) || a.length !== s.param.size) {
          throw new TensorOpError(
            name,
            `${k}[${i}] has ${a instanceof Float32Array ? a.length : 'no Float32Array of'} values, ${paramLabel(s.param, i)} ${shapeStr(s.param.shape)} has ${s.param.size}`,
          );
        }
      }
    });
    this.slots.forEach((s, i) => {
      s.m.write(st.m[i]!);
      s.v.write(st.v[i]!);
    });
    this.step_ = st.step;
  }

  /** Frees the moment tensors; the optimizer is unusable afterwards. Idempotent. */
  dispose(): void {
    for (const s of this.slots) {
      s.m.dispose();
      s.v.dispose();
    }
    this.disposed = true;
  }

  private alive(what: string): void {
    if (this.disposed) throw new TensorOpError(`AdamW.${what}`, 'the optimizer was disposed');
  }
}

function gradsOf(opName: string, params: Tensor[]): Tensor[] {
  const out: Tensor[] = [];
  params.forEach((p, i) => {
    const g = p.grad;
    if (!g || out.includes(g)) return; // a parameter listed twice counts once
    if (g.disposed) throw new TensorOpError(opName, `gradient of ${paramLabel(p, i)} was disposed`);
    if (g.dtype !== 'float32')
      throw new TensorOpError(opName, `gradient of ${paramLabel(p, i)} must be float32, got ${g.dtype}`);
    out.push(g);
  });
  return out;
}

function totalNorm(grads: Tensor[]): number {
  let ss = 0; // double, params in order: deterministic
  for (const g of grads) ss += g.backend.gradnormSumsq(g.deviceBuffer, g.size);
  return Math.sqrt(ss);
}

/** L2 norm over every parameter's .grad (params without a gradient are skipped). */
export function gradNorm(params: Tensor[]): number {
  return totalNorm(gradsOf('gradNorm', params));
}

/**
 * torch.nn.utils.clip_grad_norm_: returns the total norm before clipping; when
 * maxNorm / (norm + 1e-6) < 1 every gradient is scaled by that factor. A non-finite norm leaves the
 * gradients unchanged and is returned as is (the caller decides to skip the step).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm))
    throw new TensorOpError('clipGradNorm', `maxNorm must be a finite number > 0, got ${maxNorm}`);
  const grads = gradsOf('clipGradNorm', params);
  const norm = totalNorm(grads);
  if (!Number.isFinite(norm)) return norm;
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const g of grads) g.backend.scale(g.deviceBuffer, coef, g.size);
  }
  return norm;
}
