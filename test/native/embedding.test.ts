/**
 * Embedding gather and its deterministic scatter-add backward (native/cpu/embedding.cc via
 * src/tensor/ops/embedding.ts): exact gather, gradient with repeated ids vs float64 and finite
 * differences, bit-identical results for 1 and 2 threads, out-of-range ids, bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { embedding } from '../../src/tensor/ops/embedding.ts';
import { checkFiniteDiff, checkTensor, randn, rng, assertSameAcrossThreads, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';

describeEachBackend('embedding', ['embeddingForward', 'embeddingBackward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  function randomIds(n: number, V: number, r: () => number, hot = 0): Int32Array {
    // `hot` > 0 draws half the ids from the first `hot` rows, so ids repeat a lot
    return Int32Array.from({ length: n }, () => (hot > 0 && r() < 0.5 ? Math.floor(r() * hot) : Math.floor(r() * V)));
  }

  function refGrad(ids: Int32Array, R: Float64Array, V: number, C: number): Float64Array {
    const dw = new Float64Array(V * C);
    for (let i = 0; i < ids.length; i++) for (let c = 0; c < C; c++) dw[ids[i]! * C + c] += R[i * C + c]!;
    return dw;
  }

  describe('embedding', () => {
    test('gather is exact and the output shape is [..., C]', () => {
      const r = rng(1);
      const V = 50,
        C = 24,
        B = 3,
        T = 7;
      const W = randn(V * C, r);
      const ids = randomIds(B * T, V, r);
      tidy(() => {
        const out = embedding(Tensor.fromArray(f32(W), [V, C]), Tensor.fromArray(ids, [B, T]));
        assert.deepEqual(out.shape, [B, T, C]);
        const got = out.toArray();
        for (let i = 0; i < B * T; i++)
          assert.deepEqual(got.subarray(i * C, (i + 1) * C), f32(W.subarray(ids[i]! * C, (ids[i]! + 1) * C)));
      });
    });

    for (const [label, V, C, N, hot] of [
      ['repeated ids, parallel path', 1000, 128, 4 * 256, 8],
      ['small vocabulary, every id repeated', 5, 3, 40, 0],
    ] as const) {
      test(`backward scatter-add: ${label}`, () => {
        const r = rng(V + C);
        const W = randn(V * C, r),
          R = randn(N * C, r);
        const ids = randomIds(N, V, r, hot);
        tidy(() => {
          const w = Tensor.fromArray(f32(W), [V, C]);
          w.requiresGrad = true;
          const out = embedding(w, Tensor.fromArray(ids, [N]));
          backward(out, Tensor.fromArray(f32(R), [N, C]));
          const dw = w.grad!.toArray();
          checkTensor('embedding', 'dweight', dw, refGrad(ids, R, V, C), 1e-6);
          const loss = (v: Float64Array) => {
            let s = 0;
            for (let i = 0; i < N; i++) for (let c = 0; c < C; c++) s += v[ids[i]! * C + c]! * R[i * C + c]!;
            return s;
          };
          checkFiniteDiff('embedding', 'dweight', dw, loss, Float64Array.from(W), r, { count: 24, tol: 1e-5 });
          w.grad!.dispose();
        });
      });
    }

    test('an existing leaf gradient takes the scatter-add in place (+=, untouched rows kept)', () => {
      const r = rng(9);
      const V = 400,
        C = 16,
        N = 300;
      const W = randn(V * C, r),
        R = randn(N * C, r),
        G0 = randn(V * C, r);
      const ids = randomIds(N, V, r, 6);
      tidy(() => {
        const w = Tensor.fromArray(f32(W), [V, C]);
        w.requiresGrad = true;
        const g0 = Tensor.fromArray(f32(G0), [V, C]).keep();
        w.grad = g0;
        backward(embedding(w, Tensor.fromArray(ids, [N])), Tensor.fromArray(f32(R), [N, C]));
        assert.equal(w.grad, g0, 'the same gradient tensor, written in place');
        const ref = refGrad(ids, R, V, C).map((x, i) => x + G0[i]!);
        checkTensor('embedding', 'dweight += ', w.grad.toArray(), ref, 1e-6);
        g0.dispose();
      });
    });

    test('dweight is bit-identical for 1 and 2 threads', () => {
      const r = rng(3);
      const V = 3000,
        C = 64,
        N = 2048;
      const W = randn(V * C, r),
        R = randn(N * C, r);
      const ids = randomIds(N, V, r, 4);
      assertSameAcrossThreads(() =>
        tidy(() => {
          const w = Tensor.fromArray(f32(W), [V, C]);
          w.requiresGrad = true;
          backward(embedding(w, Tensor.fromArray(ids, [N])), Tensor.fromArray(f32(R), [N, C]));
          const g = w.grad!.toArray();
          w.grad!.dispose();
          return g;
        }),
      );
    });

    test('bad input is a clear error', () => {
      tidy(() => {
        const isErr = (cls: typeof TensorOpError | typeof NativeOpError, re: RegExp) => (e: unknown) =>
          e instanceof cls && re.test((e as Error).message);
        const w = Tensor.zeros([100, 8]);
        assert.throws(
          () => embedding(w, Tensor.fromArray(Int32Array.from([3, 100, 5]), [3])),
          isErr(
            NativeOpError,
            /^embedding_forward: ids\[1\] = 100 is out of range for vocabulary size V = 100 \(valid ids are 0\.\.99\)/,
          ),
        );
        assert.throws(
          () => embedding(w, Tensor.fromArray(Int32Array.from([-7]), [1])),
          isErr(NativeOpError, /^embedding_forward: ids\[0\] = -7 is out of range for vocabulary size V = 100/),
        );
        assert.throws(
          () => embedding(w, Tensor.zeros([3])),
          isErr(TensorOpError, /^embedding: ids must be int32, got float32 \[3\]/),
        );
        assert.throws(
          () => embedding(Tensor.zeros([800]), Tensor.zeros([3], 'int32')),
          isErr(TensorOpError, /^embedding: weight must be \[V, C\], got \[800\]/),
        );
        assert.throws(
          () => embedding(Tensor.zeros([100, 8], 'bfloat16'), Tensor.zeros([3], 'int32')),
          isErr(TensorOpError, /^embedding: weight must be float32, got bfloat16 \[100,8\]/),
        );
        const ids = Tensor.zeros([2], 'int32');
        ids.dispose();
        assert.throws(() => embedding(w, ids), isErr(TensorOpError, /^embedding: ids was disposed \(shape \[2\]\)/));
      });
    });
  });
});
