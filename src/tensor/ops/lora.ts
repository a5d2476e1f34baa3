/**
 * @module tensor/ops/lora
 * A linear layer with a LoRA adapter (Hu et al., arXiv 2106.09685; PEFT's `lora.Linear`) as one
 * op, so the adapter's small products share the layer's input and output buffers:
 *
 *   y = x Wᵀ (+ b) + scale · (drop(x) Aᵀ) Bᵀ         x [M, K], W [N, K], A [r, K], B [N, r]
 *
 * scale = lora_alpha / r (or / √r with rsLoRA); drop = inverted dropout with a seeded mask
 * (ops/dropout.ts), only when `dropout` is given. Forward saves u = drop(x) Aᵀ [M, r]; the dropped
 * input is recomputed in backward from the seed instead of being stored (it is as big as x).
 * Backward, with du = scale · dy B [M, r]:
 *   dB = scale · dyᵀ u        dA = duᵀ drop(x)        dx = dy W + drop'(du A)
 * and, only for a W / b that require grad (a frozen base never does): dW = dyᵀ x, db = Σ dy.
 * The frozen W may be bfloat16 (the backend widens it per product). Inside generation (no
 * gradient, setGenerationWeights) W and A are read through their packed generation copies, as
 * `linear` reads its weight.
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';
import { frozenIfBf16, gemmInto, generationWeightsDtype, isAutocast, toBf16 } from './matmul.ts';
import { checkDropout } from './dropout.ts';

export interface LoraArgs {
  /** lora_alpha / r (rsLoRA: lora_alpha / √r). */
  scale: number;
  /** Dropout on the adapter's input (training only; the caller decides): probability and seed. */
  dropout?: { p: number; seed: number } | null;
}

/** x [..., K] float32, W [N, K], b [N] | null, A [r, K], B [N, r] → [..., N]. */
export function loraLinear(x: Tensor, W: Tensor, b: Tensor | null, A: Tensor, B: Tensor, o: LoraArgs): Tensor {
  const name = 'lora_linear';
  const be = check.backend(name, ['x', x], ['weight', W], ['bias', b], ['lora_A', A], ['lora_B', B]);
  check.dtype(name, 'x', x, 'float32');
  check.dtype(name, 'weight', W, 'float32', 'bfloat16');
  check.dtype(name, 'lora_A', A, 'float32');
  check.dtype(name, 'lora_B', B, 'float32');
  check.rank(name, 'weight', W, 2);
  check.rank(name, 'lora_A', A, 2);
  check.rank(name, 'lora_B', B, 2);
  frozenIfBf16(name, W);
  const [N, K] = W.shape as [number, number];
  const r = A.shape[0]!;
  const label = W.name ? ` (${W.name})` : '';
  if (x.shape[x.shape.length - 1] !== K)
    check.fail(name, `x ${shapeStr(x.shape)} vs weight ${shapeStr(W.shape)}${label}: last dims differ`);
  if (A.shape[1] !== K || B.shape[0] !== N || B.shape[1] !== r)
    check.fail(
      name,
      `lora_A ${shapeStr(A.shape)} and lora_B ${shapeStr(B.shape)} do not fit weight ${shapeStr(W.shape)}${label}: expected [r, ${K}] and [${N}, r]`,
    );
  if (b && (b.shape.length !== 1 || b.shape[0] !== N))
    check.fail(name, `bias ${shapeStr(b.shape)} vs weight ${shapeStr(W.shape)}: expected [${N}]`);
  if (!Number.isFinite(o.scale)) check.fail(name, `scale must be finite, got ${o.scale}`);
  const drop = o.dropout && o.dropout.p > 0 ? o.dropout : null;
  if (drop) checkDropout(name, drop.p, drop.seed);
  const M = x.size / K;
  const cast = isAutocast();
  const dropped = (): Tensor => {
    if (!drop) return x;
    const t = Tensor.empty(x.shape, 'float32', false, be);
    be.dropoutForward(t.deviceBuffer, x.deviceBuffer, x.size, drop.p, drop.seed);
    return t;
  };

  const y = Tensor.empty([...x.shape.slice(0, -1), N], 'float32', false, be);
  // inside generation (no gradient): W and A through their packed generation copies, as `linear`
  const grad = needsGrad(x, W, b, A, B);
  const gen = grad ? null : generationWeightsDtype();
  const prod = gen ? { packed: gen } : { bf16: cast };
  gemmInto(y, x, W, { M, N, K, transB: true, bias: b, weight: true, ...prod }); // y = x Wᵀ + b
  const u = Tensor.empty([M, r], 'float32', false, be);
  const xd = dropped();
  gemmInto(u, xd, A, { M, N: r, K, transB: true, weight: true, ...prod }); // u = drop(x) Aᵀ
  if (xd !== x) xd.dispose();
  gemmInto(y, u, B, { M, N, K: r, transB: true, alpha: o.scale, beta: 1, bf16: cast, weight: true }); // y += s·u Bᵀ
  if (!grad) {
    u.dispose();
    return y;
  }
  return record(name, [x, W, b, A, B], y, (dy) => {
    check.live(`${name} backward`, ['x', x], ['weight', W], ['lora_A', A], ['lora_B', B]);
    const dyb = cast ? toBf16(dy) : dy; // cast once for every product that reads dy
    const du = Tensor.empty([M, r], 'float32', false, be);
    gemmInto(du, dyb, B, { M, N: r, K: N, alpha: o.scale, bf16: cast, weight: true }); // du = s·dy B
    let dB: Tensor | null = null;
    let dA: Tensor | null = null;
    let dx: Tensor | null = null;
    let dW: Tensor | null = null;
    let db: Tensor | null = null;
    if (B.requiresGrad) {
      dB = Tensor.empty(B.shape, 'float32', false, be);
      gemmInto(dB, dyb, u, { M: N, N: r, K: M, transA: true, alpha: o.scale, bf16: cast }); // dB = s·dyᵀ u
    }
    if (A.requiresGrad) {
      dA = Tensor.empty(A.shape, 'float32', false, be);
      const xd2 = dropped();
      gemmInto(dA, du, xd2, { M: r, N: K, K: M, transA: true, bf16: cast }); // dA = duᵀ drop(x)
      if (xd2 !== x) xd2.dispose();
    }
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, 'float32', false, be);
      gemmInto(dx, dyb, W, { M, N: K, K: N, bf16: cast, weight: true }); // dx = dy W
      if (!drop)
        gemmInto(dx, du, A, { M, N: K, K: r, beta: 1, bf16: cast, weight: true }); // dx += du A
      else {
        const t = Tensor.empty(x.shape, 'float32', false, be);
        gemmInto(t, du, A, { M, N: K, K: r, bf16: cast, weight: true });
        be.dropoutBackward(t.deviceBuffer, t.deviceBuffer, t.size, drop.p, drop.seed);
        be.axpy(dx.deviceBuffer, t.deviceBuffer, 1, t.size); // dx += drop'(du A)
        t.dispose();
      }
    }
    if (W.requiresGrad) {
      dW = Tensor.empty(W.shape, 'float32', false, be);
      gemmInto(dW, dyb, x, { M: N, N: K, K: M, transA: true, bf16: cast }); // dW = dyᵀ x
    }
    if (b && b.requiresGrad) {
      db = Tensor.empty(b.shape, 'float32', false, be);
      be.sumRows(db.deviceBuffer, dy.deviceBuffer, M, N, 0);
    }
    if (cast) dyb.dispose();
    du.dispose();
    u.dispose();
    return [dx, dW, db, dA, dB];
  });
}
