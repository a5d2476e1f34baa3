/**
 * @module tensor/ops/matmul
 * Matrix products through the native GEMM (our AVX-512 kernel for float32, oneDNN for bf16), with backward:
 *   linear(x [..., K], W [N, K], b [N]?) -> x @ W^T + b      (HF nn.Linear layout)
 *   matmul(a [..., M, K], b [..., K, N] or [K, N], {transA, transB})
 * Backward of C = op(A) op(B) is dA = dC op(B)^T, dB = op(A)^T dC: three GEMMs per product.
 *
 * Mixed precision (`setAutocast(true)`): GEMM operands are bf16 (the backend casts them and keeps
 * a frozen weight's copy until it is written; a weight being trained is cast per product),
 * accumulation and outputs stay fp32, as PyTorch autocast does.
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { isGradEnabled, needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';
import type { GemmArgs } from '../../backend/index.ts';

let autocast = false;

/** The weight copy that products read during generation (see setGenerationWeights). */
export type GenerationDtype = 'float32' | 'bfloat16';
let generationWeights: GenerationDtype | null = null;

/**
 * Inside generation: weight products (`linear` without gradient) read a copy of the weight that the
 * backend packs for its decode kernel, in `dtype` (bfloat16 halves the bytes streamed; accumulation
 * stays fp32); null outside generation. Returns the previous setting. The copies are kept until the
 * weight is written or releaseGenerationWeights() frees them.
 */
export function setGenerationWeights(dtype: GenerationDtype | null): GenerationDtype | null {
  const prev = generationWeights;
  generationWeights = dtype;
  return prev;
}

/** The generation weights' dtype now (setGenerationWeights), null outside generation. */
export function generationWeightsDtype(): GenerationDtype | null {
  return generationWeights;
}

/** A bf16 copy of t (an operand used by several products is cast once). */
export function toBf16(t: Tensor): Tensor {
  const out = Tensor.empty(t.shape, 'bfloat16', false, t.backend);
  t.backend.castF32Bf16(out.deviceBuffer, t.deviceBuffer, t.size);
  return out;
}

/**
 * Turns bf16 GEMM operands (mixed precision, as torch.autocast) on or off for every product;
 * returns the previous setting. The backend casts the operands (and keeps a weight's bf16 copy
 * until the weight is written); accumulation and outputs stay fp32.
 */
export function setAutocast(on: boolean): boolean {
  const prev = autocast;
  autocast = on;
  return prev;
}
export function isAutocast(): boolean {
  return autocast;
}

/**
 * Raw GEMM on tensors: C[b] = alpha * op(A[b]) op(B[b|0]) (+bias) + beta * C[b], on the backend
 * of C. `weight`: B is a parameter (the backend may cache its converted copy, unless B is being
 * trained: requiresGrad while gradients are recorded).
 */
export function gemmInto(
  C: Tensor,
  A: Tensor,
  B: Tensor,
  o: Omit<GemmArgs, 'bias' | 'bIsWeight' | 'bTrained'> & { bias?: Tensor | null; weight?: boolean },
): void {
  const be = check.backend('gemm', ['C', C], ['A', A], ['B', B], ['bias', o.bias]);
  const { bias, weight, ...rest } = o;
  be.gemm(C.deviceBuffer, A.deviceBuffer, B.deviceBuffer, {
    ...rest,
    bias: bias ? bias.deviceBuffer : null,
    bIsWeight: !!weight,
    // a weight being trained is rewritten by the next optimizer step: no kept bf16 copy
    bTrained: !!weight && B.requiresGrad && isGradEnabled(),
  });
}

/**
 * A bfloat16 weight is a frozen one (a LoRA base kept in bf16 to halve its memory): it never
 * receives a gradient, since master weights that train stay float32.
 */
export function frozenIfBf16(op: string, W: Tensor): void {
  if (W.dtype === 'bfloat16' && W.requiresGrad)
    check.fail(
      op,
      `weight ${shapeStr(W.shape)}${W.name ? ` (${W.name})` : ''} is bfloat16 and requires grad; only frozen weights may be bfloat16 (trained ones stay float32)`,
    );
}

/**
 * y = x @ W^T + b. x [..., K] float32, W [N, K] (float32, or bfloat16 when frozen: the backend
 * widens it per product), b [N] or null. No dW product when W is frozen (requiresGrad false).
 */
export function linear(x: Tensor, W: Tensor, b: Tensor | null = null): Tensor {
  const name = 'linear';
  check.live(name, ['x', x], ['weight', W], ['bias', b]);
  check.dtype(name, 'x', x, 'float32');
  check.dtype(name, 'weight', W, 'float32', 'bfloat16');
  check.rank(name, 'weight', W, 2);
  frozenIfBf16(name, W);
  const [N, K] = W.shape as [number, number];
  if (x.shape[x.shape.length - 1] !== K)
    check.fail(
      name,
      `x ${shapeStr(x.shape)} vs weight ${shapeStr(W.shape)}${W.name ? ` (${W.name})` : ''}: last dims differ`,
    );
  if (b && (b.shape.length !== 1 || b.shape[0] !== N))
    check.fail(name, `bias ${shapeStr(b.shape)} vs weight ${shapeStr(W.shape)}: expected [${N}]`);
  const M = x.size / K;
  const y = Tensor.empty([...x.shape.slice(0, -1), N], 'float32', false, x.backend);
  const grad = needsGrad(x, W, b);
  if (!grad && generationWeights) {
    gemmInto(y, x, W, { M, N, K, transB: true, bias: b, weight: true, packed: generationWeights });
    return y;
  }
  gemmInto(y, x, W, { M, N, K, transB: true, bias: b, bf16: autocast, weight: true });
  if (!grad) return y;
  return record(name, [x, W, b], y, (dy) => {
    let dx: Tensor | null = null;
    let dW: Tensor | null = null;
    let db: Tensor | null = null;
    const cast = autocast;
    const be = dy.backend;
    // dy is cast to bf16 once for both products
    const dyb = cast ? toBf16(dy) : dy;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, 'float32', false, be);
      gemmInto(dx, dyb, W, { M, N: K, K: N, bf16: cast, weight: true }); // dx = dy @ W
    }
    if (W.requiresGrad) {
      dW = Tensor.empty(W.shape, 'float32', false, be);
      gemmInto(dW, dyb, x, { M: N, N: K, K: M, transA: true, bf16: cast }); // dW = dy^T @ x
    }
    if (b && b.requiresGrad) {
      db = Tensor.empty(b.shape, 'float32', false, be);
      be.sumRows(db.deviceBuffer, dy.deviceBuffer, M, N, 0);
    }
    if (cast) dyb.dispose();
    return [dx, dW, db];
  });
}

/**
 * Batched matmul: a [..., M, K] (or [..., K, M] with transA) times b [..., K, N] (or [..., N, K]
 * with transB); b may be 2-D (broadcast over the batch).
 */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  const name = 'matmul';
  check.live(name, ['a', a], ['b', b]);
  check.dtype(name, 'a', a, 'float32');
  check.dtype(name, 'b', b, 'float32');
  if (a.shape.length < 2 || b.shape.length < 2)
    check.fail(name, `a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} must have rank ≥ 2`);
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  const ar = a.shape.length;
  const br = b.shape.length;
  const M = tA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const K = tA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const Kb = tB ? b.shape[br - 1]! : b.shape[br - 2]!;
  const N = tB ? b.shape[br - 2]! : b.shape[br - 1]!;
  if (K !== Kb)
    check.fail(
      name,
      `a ${shapeStr(a.shape)}${tA ? 'ᵀ' : ''} @ b ${shapeStr(b.shape)}${tB ? 'ᵀ' : ''}: inner dims ${K} ≠ ${Kb}`,
    );
  const batch = a.size / (M * K);
  const batchB = b.size / (K * N);
  if (batchB !== 1 && batchB !== batch)
    check.fail(name, `batch dims of a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} differ`);
  const c = Tensor.empty([...a.shape.slice(0, -2), M, N], 'float32', false, a.backend);
  const cast = autocast;
  const ab = cast ? toBf16(a) : a;
  const bb = cast ? toBf16(b) : b;
  gemmInto(c, ab, bb, { batch, batchB, M, N, K, transA: tA, transB: tB, bf16: cast });
  if (!needsGrad(a, b)) {
    if (cast) {
      ab.dispose();
      bb.dispose();
    }
    return c;
  }
  return record(name, [a, b], c, (dc) => {
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    const dcb = cast ? toBf16(dc) : dc;
    if (a.requiresGrad) {
      da = Tensor.empty(a.shape, 'float32', false, a.backend);
      // op(A) = dC op(B)^T  → A = (dC op(B)^T) or its transpose
      if (!tA) gemmInto(da, dcb, bb, { batch, batchB, M, N: K, K: N, transB: !tB });
      else if (batchB === batch)
        gemmInto(da, bb, dcb, { batch, batchB: batch, M: K, N: M, K: N, transA: tB, transB: true }); // A = op(B) dCᵀ
      else
        for (let i = 0; i < batch; i++)
          gemmInto(da, bb, dcb, { M: K, N: M, K: N, transA: tB, transB: true, bOff: i * M * N, cOff: i * M * K });
    }
    if (b.requiresGrad) {
      db = Tensor.empty(b.shape, 'float32', false, b.backend);
      if (batchB === 1) {
        // dB = Σ_batch op(A)^T dC: fold the batch into the rows (needs A untransposed per batch)
        if (!tA) {
          if (!tB) gemmInto(db, ab, dcb, { M: K, N, K: batch * M, transA: true });
          else gemmInto(db, dcb, ab, { M: N, N: K, K: batch * M, transA: true });
        } else {
          // A stored [batch, K, M]: accumulate per batch element
          for (let i = 0; i < batch; i++) {
            if (!tB) gemmInto(db, ab, dcb, { M: K, N, K: M, aOff: i * M * K, bOff: i * M * N, beta: i === 0 ? 0 : 1 });
            else
              gemmInto(db, dcb, ab, {
                M: N,
                N: K,
                K: M,
                transA: true,
                transB: true,
                aOff: i * M * N,
                bOff: i * M * K,
                beta: i === 0 ? 0 : 1,
              });
          }
        }
      } else {
        if (!tB) gemmInto(db, ab, dcb, { batch, batchB: batch, M: K, N, K: M, transA: !tA });
        else gemmInto(db, dcb, ab, { batch, batchB: batch, M: N, N: K, K: M, transA: true, transB: tA });
      }
    }
    if (cast) {
      dcb.dispose();
      ab.dispose();
      bb.dispose();
    }
    return [da, db];
  });
}
