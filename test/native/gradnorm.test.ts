/**
 * Gradient norm and clipping (native/cpu/gradnorm.cc `gradnorm_sumsq` + elementwise `scale`, via
 * src/tensor/optim.ts) against float64, thread-count determinism, torch clip_grad_norm_ semantics,
 * non-finite norms and bad input. (No backward: these act on gradients.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { clipGradNorm, gradNorm } from '../../src/tensor/optim.ts';
import { defaultBackend } from '../../src/backend/index.ts';
import { checkTensor, randn, rng, assertSameAcrossThreads, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';

describeEachBackend('gradnorm', ['gradnormSumsq'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  function withGrads(sizes: number[], seed: number, scale = 1): { params: Tensor[]; G: Float64Array[] } {
    const r = rng(seed);
    const G = sizes.map((n) => randn(n, r, scale));
    const params = sizes.map((n, i) => {
      const p = Tensor.zeros([n]);
      p.grad = Tensor.fromArray(f32(G[i]!), [n]);
      return p;
    });
    return { params, G };
  }

  const refNorm = (G: Float64Array[]) => Math.sqrt(G.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0));

  describe('gradNorm / clipGradNorm', () => {
    test('norm over every .grad matches float64 (params without grad skipped)', () => {
      tidy(() => {
        const { params, G } = withGrads([100_000, 512, 7], 1);
        const extra = Tensor.zeros([50]); // no grad
        const got = gradNorm([...params, extra]);
        assert.ok(Math.abs(got - refNorm(G)) <= 1e-12 * refNorm(G), `${got} vs ${refNorm(G)}`);
        assert.equal(gradNorm([extra]), 0);
      });
    });

    test('sum of squares is bit-identical for 1 and 2 threads', () => {
      const r = rng(2);
      const X = f32(randn(300_001, r));
      assertSameAcrossThreads(() =>
        tidy(() => defaultBackend().gradnormSumsq(Tensor.fromArray(X, [X.length]).deviceBuffer, X.length) as number),
      );
    });

    test('clips to maxNorm with coefficient maxNorm / (norm + 1e-6), returns the norm before clipping', () => {
      tidy(() => {
        const { params, G } = withGrads([40_000, 300], 3);
        const norm = refNorm(G);
        const got = clipGradNorm(params, 1.0);
        assert.ok(Math.abs(got - norm) <= 1e-12 * norm);
        const coef = 1.0 / (norm + 1e-6);
        for (let i = 0; i < params.length; i++)
          checkTensor(
            'clipGradNorm',
            `grad ${i}`,
            params[i]!.grad!.toArray(),
            G[i]!.map((g) => g * coef),
            1e-6,
          );
        assert.ok(Math.abs(gradNorm(params) - 1.0) < 1e-5);
      });
    });

    test('leaves gradients bit-identical when the norm is below maxNorm', () => {
      tidy(() => {
        const { params, G } = withGrads([1000], 4, 1e-3);
        const before = params[0]!.grad!.toArray();
        const got = clipGradNorm(params, 10);
        assert.ok(Math.abs(got - refNorm(G)) <= 1e-12 * refNorm(G));
        assert.deepEqual(params[0]!.grad!.toArray(), before);
      });
    });

    test('a non-finite norm is returned and the gradients are left unchanged', () => {
      tidy(() => {
        const { params } = withGrads([64, 64], 5);
        const g = params[1]!.grad!.toArray() as Float32Array;
        g[3] = Infinity;
        params[1]!.grad!.write(g);
        const before = params.map((p) => p.grad!.toArray());
        assert.equal(clipGradNorm(params, 1.0), Infinity);
        assert.deepEqual(
          params.map((p) => p.grad!.toArray()),
          before,
        );
        g[3] = NaN;
        params[1]!.grad!.write(g);
        assert.ok(Number.isNaN(clipGradNorm(params, 1.0)));
      });
    });

    test('bad input is a clear error', () => {
      const isErr = (cls: typeof TensorOpError | typeof NativeOpError, re: RegExp) => (e: unknown) =>
        e instanceof cls && re.test((e as Error).message);
      tidy(() => {
        const { params } = withGrads([8], 6);
        assert.throws(
          () => clipGradNorm(params, 0),
          isErr(TensorOpError, /^clipGradNorm: maxNorm must be a finite number > 0, got 0/),
        );
        params[0]!.name = 'lm_head.weight';
        params[0]!.grad!.dispose();
        assert.throws(
          () => gradNorm(params),
          isErr(TensorOpError, /^gradNorm: gradient of param 0 \(lm_head\.weight\) was disposed/),
        );
        params[0]!.grad = Tensor.zeros([8], 'bfloat16');
        assert.throws(
          () => clipGradNorm(params, 1),
          isErr(TensorOpError, /^clipGradNorm: gradient of param 0 \(lm_head\.weight\) must be float32, got bfloat16/),
        );
        assert.throws(
          () => defaultBackend().gradnormSumsq(Tensor.zeros([3]).deviceBuffer, 4),
          isErr(NativeOpError, /^gradnorm_sumsq: x holds 3 elements, needs 4/),
        );
      });
    });
  });
});
