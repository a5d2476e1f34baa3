/**
 * The fused LoRA linear layer (src/tensor/ops/lora.ts): y = x Wᵀ + b + scale · (drop(x) Aᵀ) Bᵀ,
 * forward and backward against a float64 reference and finite differences, with and without
 * dropout (the reference takes the kernel's mask from ops/dropout.ts with the same seed), with a
 * frozen bfloat16 W (the reference uses its rounded values), no gradient into a frozen W, and
 * bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { loraLinear } from '../../src/tensor/ops/lora.ts';
import { dropout } from '../../src/tensor/ops/dropout.ts';
import { TensorOpError } from '../../src/errors.ts';
import { checkFiniteDiff, checkTensor, describeEachBackend, randn, rng, roundBf16 } from '../helpers.ts';

/** Float64 reference: returns y and the loss Σ y ⊙ R; mask [M·K] (1/(1−p) or 0) or null. */
function ref(
  X: Float64Array,
  W: Float64Array,
  b: Float64Array,
  A: Float64Array,
  B: Float64Array,
  R: Float64Array,
  d: { M: number; N: number; K: number; r: number; scale: number },
  mask: Float64Array | null,
) {
  const { M, N, K, r, scale } = d;
  const y = new Float64Array(M * N);
  const u = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k]! * (mask ? mask[m * K + k]! : 1) * A[j * K + k]!;
      u[m * r + j] = s;
    }
    for (let n = 0; n < N; n++) {
      let s = b[n]!;
      for (let k = 0; k < K; k++) s += X[m * K + k]! * W[n * K + k]!;
      for (let j = 0; j < r; j++) s += scale * u[m * r + j]! * B[n * r + j]!;
      y[m * N + n] = s;
    }
  }
  let loss = 0;
  for (let i = 0; i < y.length; i++) loss += y[i]! * R[i]!;
  // gradients
  const du = new Float64Array(M * r);
  for (let m = 0; m < M; m++)
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += R[m * N + n]! * B[n * r + j]!;
      du[m * r + j] = scale * s;
    }
  const dB = new Float64Array(N * r);
  for (let n = 0; n < N; n++)
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += R[m * N + n]! * u[m * r + j]!;
      dB[n * r + j] = scale * s;
    }
  const dA = new Float64Array(r * K);
  for (let j = 0; j < r; j++)
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += du[m * r + j]! * X[m * K + k]! * (mask ? mask[m * K + k]! : 1);
      dA[j * K + k] = s;
    }
  const dx = new Float64Array(M * K);
  for (let m = 0; m < M; m++)
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += R[m * N + n]! * W[n * K + k]!;
      let t = 0;
      for (let j = 0; j < r; j++) t += du[m * r + j]! * A[j * K + k]!;
      dx[m * K + k] = s + t * (mask ? mask[m * K + k]! : 1);
    }
  return { y, loss, dA, dB, dx };
}

describeEachBackend('lora_linear', ['gemm'], () => {
  const shapes = [
    { label: 'M 6 (decode-sized rows), K 40, N 24, r 4', M: 6, K: 40, N: 24, r: 4 },
    { label: 'M 70, K 96, N 48, r 8', M: 70, K: 96, N: 48, r: 8 },
  ];
  for (const s of shapes)
    for (const variant of ['fp32', 'dropout 0.25', 'bf16 frozen W'] as const) {
      test(`forward + backward vs float64: ${s.label}, ${variant}`, () => {
        const { M, K, N, r } = s;
        const g = rng(M * 7 + K + (variant === 'fp32' ? 0 : variant === 'bf16 frozen W' ? 2 : 1));
        const X = randn(M * K, g);
        let W = randn(N * K, g, 0.2);
        const bias = randn(N, g);
        const A = randn(r * K, g, 0.3);
        const B = randn(N * r, g, 0.3);
        const R = randn(M * N, g);
        const scale = 2.5;
        const p = variant === 'dropout 0.25' ? 0.25 : 0;
        const seed = 4242;
        if (variant === 'bf16 frozen W') W = roundBf16(W);
        tidy(() => {
          const mask = p
            ? Float64Array.from(
                dropout(Tensor.fromArray(new Float32Array(M * K).fill(1), [M * K]), p, seed).toFloat32(),
              )
            : null;
          const x = Tensor.fromArray(Float32Array.from(X), [M, K]);
          const w = Tensor.fromArray(
            Float32Array.from(W),
            [N, K],
            variant === 'bf16 frozen W' ? 'bfloat16' : 'float32',
          );
          const b = Tensor.fromArray(Float32Array.from(bias), [N]);
          const a = Tensor.fromArray(Float32Array.from(A), [r, K]);
          const bb = Tensor.fromArray(Float32Array.from(B), [N, r]);
          x.requiresGrad = a.requiresGrad = bb.requiresGrad = true;
          const y = loraLinear(x, w, b, a, bb, { scale, dropout: p ? { p, seed } : null });
          const d = { M, N, K, r, scale };
          const want = ref(
            Float64Array.from(Float32Array.from(X)),
            W,
            bias,
            Float64Array.from(Float32Array.from(A)),
            Float64Array.from(Float32Array.from(B)),
            R,
            d,
            mask,
          );
          checkTensor('lora_linear', 'y', y.toArray(), want.y, 1e-5);
          backward(y, Tensor.fromArray(Float32Array.from(R), [M, N]));
          checkTensor('lora_linear', 'dx', x.grad!.toArray(), want.dx, 1e-5);
          checkTensor('lora_linear', 'dA', a.grad!.toArray(), want.dA, 1e-5);
          checkTensor('lora_linear', 'dB', bb.grad!.toArray(), want.dB, 1e-5);
          assert.equal(w.grad, null, 'the frozen weight gets no gradient');
          assert.equal(b.grad, null, 'the frozen bias gets no gradient');
          const f = (Av: Float64Array, Bv: Float64Array, Xv: Float64Array) => ref(Xv, W, bias, Av, Bv, R, d, mask).loss;
          const X64 = Float64Array.from(Float32Array.from(X));
          const A64 = Float64Array.from(Float32Array.from(A));
          const B64 = Float64Array.from(Float32Array.from(B));
          checkFiniteDiff('lora_linear', 'dA', a.grad!.toArray(), (v) => f(v, B64, X64), A64.slice(), g, {
            tol: 1e-4,
          });
          checkFiniteDiff('lora_linear', 'dB', bb.grad!.toArray(), (v) => f(A64, v, X64), B64.slice(), g, {
            tol: 1e-4,
          });
          checkFiniteDiff('lora_linear', 'dx', x.grad!.toArray(), (v) => f(A64, B64, v), X64.slice(), g, {
            tol: 1e-4,
          });
          for (const t of [x, a, bb]) t.grad!.dispose();
        });
      });
    }

  test('a trainable W gets dW = dyᵀ x; the B = 0 start equals the plain linear layer', () => {
    const M = 5,
      K = 12,
      N = 7,
      r = 2;
    const g = rng(9);
    const X = randn(M * K, g),
      W = randn(N * K, g),
      R = randn(M * N, g);
    tidy(() => {
      const x = Tensor.fromArray(Float32Array.from(X), [M, K]);
      const w = Tensor.fromArray(Float32Array.from(W), [N, K]);
      const a = Tensor.fromArray(Float32Array.from(randn(r * K, g)), [r, K]);
      const bb = Tensor.zeros([N, r]);
      w.requiresGrad = true;
      const y = loraLinear(x, w, null, a, bb, { scale: 2 });
      const X32 = Float64Array.from(Float32Array.from(X)),
        W32 = Float64Array.from(Float32Array.from(W));
      const plain = new Float64Array(M * N);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) plain[m * N + n] += X32[m * K + k]! * W32[n * K + k]!;
      checkTensor('lora_linear', 'y (B = 0)', y.toArray(), plain, 1e-6);
      backward(y, Tensor.fromArray(Float32Array.from(R), [M, N]));
      const dW = new Float64Array(N * K);
      for (let n = 0; n < N; n++)
        for (let k = 0; k < K; k++) for (let m = 0; m < M; m++) dW[n * K + k] += R[m * N + n]! * X32[m * K + k]!;
      checkTensor('lora_linear', 'dW', w.grad!.toArray(), dW, 1e-5);
      w.grad!.dispose();
    });
  });

  test('bad input is a clear error', () => {
    tidy(() => {
      const isErr = (re: RegExp) => (e: unknown) => e instanceof TensorOpError && re.test((e as Error).message);
      const x = Tensor.zeros([3, 8]);
      const w = Tensor.zeros([5, 8]);
      assert.throws(
        () => loraLinear(x, w, null, Tensor.zeros([2, 7]), Tensor.zeros([5, 2]), { scale: 1 }),
        isErr(
          /^lora_linear: lora_A \[2,7\] and lora_B \[5,2\] do not fit weight \[5,8\]: expected \[r, 8\] and \[5, r\]/,
        ),
      );
      assert.throws(
        () => loraLinear(Tensor.zeros([3, 9]), w, null, Tensor.zeros([2, 8]), Tensor.zeros([5, 2]), { scale: 1 }),
        isErr(/^lora_linear: x \[3,9\] vs weight \[5,8\]: last dims differ/),
      );
      const wb = Tensor.zeros([5, 8], 'bfloat16');
      wb.requiresGrad = true;
      assert.throws(
        () => loraLinear(x, wb, null, Tensor.zeros([2, 8]), Tensor.zeros([5, 2]), { scale: 1 }),
        isErr(/weight \[5,8\] is bfloat16 and requires grad; only frozen weights may be bfloat16/),
      );
      assert.throws(
        () =>
          loraLinear(x, w, null, Tensor.zeros([2, 8]), Tensor.zeros([5, 2]), { scale: 1, dropout: { p: 1, seed: 0 } }),
        isErr(/^lora_linear: dropout probability must be in \[0, 1\)/),
      );
    });
  });
});
