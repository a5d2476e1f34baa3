/**
 * RMSNorm forward and backward (native/cpu/rmsnorm.cc via src/tensor/ops/rmsnorm.ts) against a
 * float64 reference, finite differences, per-head (Qwen3 q_norm) shapes, thread-count determinism
 * of the weight gradient, and bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { rmsnorm } from '../../src/tensor/ops/rmsnorm.ts';
import { defaultBackend } from '../../src/backend/index.ts';
import { checkFiniteDiff, checkTensor, randn, rng, assertSameAcrossThreads, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';

describeEachBackend('rmsnorm', ['rmsnormForward', 'rmsnormBackward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  function refForward(x: ArrayLike<number>, w: ArrayLike<number>, N: number, C: number, eps: number): Float64Array {
    const y = new Float64Array(N * C);
    for (let r = 0; r < N; r++) {
      let ss = 0;
      for (let c = 0; c < C; c++) ss += x[r * C + c]! * x[r * C + c]!;
      const rs = 1 / Math.sqrt(ss / C + eps);
      for (let c = 0; c < C; c++) y[r * C + c] = w[c]! * x[r * C + c]! * rs;
    }
    return y;
  }

  /** Analytic float64 gradients of L = Σ R ⊙ y. */
  function refBackward(
    x: Float64Array,
    w: Float64Array,
    R: Float64Array,
    N: number,
    C: number,
    eps: number,
  ): { dx: Float64Array; dw: Float64Array } {
    const dx = new Float64Array(N * C);
    const dw = new Float64Array(C);
    for (let r = 0; r < N; r++) {
      let ss = 0;
      for (let c = 0; c < C; c++) ss += x[r * C + c]! ** 2;
      const rs = 1 / Math.sqrt(ss / C + eps);
      let dot = 0;
      for (let c = 0; c < C; c++) dot += w[c]! * R[r * C + c]! * x[r * C + c]! * rs;
      for (let c = 0; c < C; c++) {
        const xh = x[r * C + c]! * rs;
        dw[c] += R[r * C + c]! * xh;
        dx[r * C + c] = rs * (w[c]! * R[r * C + c]! - (xh * dot) / C);
      }
    }
    return { dx, dw };
  }

  function lossRef(x: Float64Array, w: Float64Array, R: Float64Array, N: number, C: number, eps: number): number {
    const y = refForward(x, w, N, C, eps);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i]! * R[i]!;
    return s;
  }

  describe('rmsnorm', () => {
    for (const [shape, eps, seed] of [
      [[4, 16, 512], 1e-6, 1],
      [[2, 5, 3, 64], 1e-6, 2], // Qwen3 per-head q_norm: [B,T,H,D] with w [D]
      [[3, 7], 1e-5, 3],
    ] as const) {
      test(`forward + backward ${JSON.stringify(shape)} vs float64`, () => {
        const r = rng(seed);
        const C = shape[shape.length - 1]!;
        const n = shape.reduce((a, b) => a * b, 1);
        const N = n / C;
        const X = randn(n, r, 2),
          W = randn(C, r, 0.5).map((v) => Math.fround(1 + v)),
          R = randn(n, r);
        tidy(() => {
          const x = Tensor.fromArray(f32(X), shape);
          const w = Tensor.fromArray(f32(W), [C]);
          x.requiresGrad = w.requiresGrad = true;
          const y = rmsnorm(x, w, eps);
          assert.deepEqual(y.shape, shape);
          // HF computes in float32; against float64 we are within ~1e-7 (well inside 1e-6)
          checkTensor('rmsnorm', 'y', y.toArray(), refForward(X, W, N, C, eps), 1e-6);
          backward(y, Tensor.fromArray(f32(R), shape));
          const ref = refBackward(X, W, R, N, C, eps);
          checkTensor('rmsnorm', 'dx', x.grad!.toArray(), ref.dx, 1e-5);
          checkTensor('rmsnorm', 'dw', w.grad!.toArray(), ref.dw, 1e-5);
          checkFiniteDiff(
            'rmsnorm',
            'dx',
            x.grad!.toArray(),
            (v) => lossRef(v, W, R, N, C, eps),
            Float64Array.from(X),
            r,
            { count: 16, tol: 1e-4 },
          );
          checkFiniteDiff(
            'rmsnorm',
            'dw',
            w.grad!.toArray(),
            (v) => lossRef(X, v, R, N, C, eps),
            Float64Array.from(W),
            r,
            { count: 16, tol: 1e-4 },
          );
          x.grad!.dispose();
          w.grad!.dispose();
        });
      });
    }

    test('only the inputs that require grad get one; no tape without grad', () => {
      const r = rng(7);
      const X = randn(6 * 32, r),
        W = randn(32, r);
      tidy(() => {
        const x = Tensor.fromArray(f32(X), [6, 32]);
        const w = Tensor.fromArray(f32(W), [32]);
        assert.equal(rmsnorm(x, w, 1e-6).requiresGrad, false);
        w.requiresGrad = true;
        const y = rmsnorm(x, w, 1e-6);
        backward(y, Tensor.fromArray(f32(randn(6 * 32, r)), [6, 32]));
        assert.equal(x.grad, null);
        assert.ok(w.grad);
        w.grad!.dispose();
      });
    });

    test('dw is bit-identical for 1 and 2 threads (fixed-order reduction)', () => {
      const r = rng(8);
      const N = 300,
        C = 96;
      const X = randn(N * C, r),
        W = randn(C, r),
        R = randn(N * C, r);
      assertSameAcrossThreads(() =>
        tidy(() => {
          const x = Tensor.fromArray(f32(X), [N, C]);
          const w = Tensor.fromArray(f32(W), [C]);
          w.requiresGrad = true;
          backward(rmsnorm(x, w, 1e-6), Tensor.fromArray(f32(R), [N, C]));
          const g = w.grad!.toArray();
          w.grad!.dispose();
          return g;
        }),
      );
    });

    test('bad input is a clear error', () => {
      tidy(() => {
        const x = Tensor.zeros([4, 256, 512]);
        const isErr = (cls: typeof TensorOpError | typeof NativeOpError, re: RegExp) => (e: unknown) =>
          e instanceof cls && re.test((e as Error).message);
        assert.throws(
          () => rmsnorm(x, Tensor.zeros([384]), 1e-6),
          isErr(TensorOpError, /^rmsnorm: x \[4,256,512\] vs weight \[384\]: last dims differ/),
        );
        assert.throws(
          () => rmsnorm(x, Tensor.zeros([512, 1]), 1e-6),
          isErr(TensorOpError, /^rmsnorm: weight must have rank 1, got \[512,1\]/),
        );
        assert.throws(
          () => rmsnorm(Tensor.zeros([2, 512], 'int32'), Tensor.zeros([512]), 1e-6),
          isErr(TensorOpError, /^rmsnorm: x must be float32, got int32 \[2,512\]/),
        );
        assert.throws(
          () => rmsnorm(x, Tensor.zeros([512], 'bfloat16'), 1e-6),
          isErr(TensorOpError, /^rmsnorm: weight must be float32, got bfloat16/),
        );
        assert.throws(
          () => rmsnorm(x, Tensor.zeros([512]), -1),
          isErr(TensorOpError, /^rmsnorm: eps must be a finite number ≥ 0, got -1/),
        );
        const d = Tensor.zeros([512]);
        d.dispose();
        assert.throws(
          () => rmsnorm(x, d, 1e-6),
          isErr(TensorOpError, /^rmsnorm: weight was disposed \(shape \[512\]\)/),
        );
        // the native layer re-checks sizes
        const y = Tensor.empty([3]);
        assert.throws(
          () =>
            defaultBackend().rmsnormForward(
              y.deviceBuffer,
              Tensor.empty([2]).deviceBuffer,
              Tensor.zeros([2, 4]).deviceBuffer,
              Tensor.zeros([4]).deviceBuffer,
              2,
              4,
              1e-6,
            ),
          isErr(NativeOpError, /^rmsnorm_forward: y holds 3 elements, needs 8/),
        );
      });
    });
  });
});
