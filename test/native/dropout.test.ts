/**
 * Seeded inverted dropout (native/cpu/dropout.cc via src/tensor/ops/dropout.ts): kept values are
 * x / (1 − p), the drop fraction is p, the mask is a function of the seed only (same seed, same
 * mask; backward recomputes it; identical across thread counts), p = 0 is the identity, and bad
 * input is one clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { dropout } from '../../src/tensor/ops/dropout.ts';
import { TensorOpError } from '../../src/errors.ts';
import { assertSameAcrossThreads, checkTensor, describeEachBackend, randn, rng } from '../helpers.ts';

describeEachBackend('dropout', ['dropoutForward', 'dropoutBackward'], () => {
  const n = 200_003; // odd, above the kernel's parallel threshold
  const X = Float32Array.from(randn(n, rng(3)));

  test('forward: kept values scaled by 1/(1-p), drop fraction ≈ p, deterministic per seed', () => {
    for (const p of [0.05, 0.5]) {
      tidy(() => {
        const x = Tensor.fromArray(X, [n]);
        const y = dropout(x, p, 12345).toFloat32();
        let dropped = 0;
        for (let i = 0; i < n; i++) {
          if (y[i] === 0) dropped++;
          else assert.equal(y[i], Math.fround(X[i]! * Math.fround(1 / (1 - p))), `element ${i}`);
        }
        const frac = dropped / n;
        // binomial: sd = √(p(1−p)/n) ≤ 0.0012; 6 sd
        assert.ok(Math.abs(frac - p) < 0.007, `p=${p}: dropped fraction ${frac}`);
        assert.deepEqual(dropout(x, p, 12345).toFloat32(), y);
        const other = dropout(x, p, 12346).toFloat32();
        let differ = 0;
        for (let i = 0; i < n; i++) if ((other[i] === 0) !== (y[i] === 0)) differ++;
        assert.ok(differ > n * p * 0.5, `seed 12346 gives another mask (${differ} positions differ)`);
      });
    }
  });

  test('backward applies the forward mask; p = 0 is the identity; same across thread counts', () => {
    tidy(() => {
      const x = Tensor.fromArray(X.subarray(0, 1000), [10, 100]);
      x.requiresGrad = true;
      const y = dropout(x, 0.3, 7);
      const R = Float32Array.from(randn(1000, rng(4)));
      backward(y, Tensor.fromArray(R, [10, 100]));
      const yv = y.toFloat32();
      const want = Float64Array.from(R, (r, i) => (yv[i] === 0 ? 0 : r / 0.7));
      checkTensor('dropout', 'dx', x.grad!.toArray(), want, 1e-6);
      x.grad!.dispose();
      assert.equal(dropout(x, 0, 7), x);
    });
    assertSameAcrossThreads(() => tidy(() => Array.from(dropout(Tensor.fromArray(X, [n]), 0.2, 99).toFloat32())));
  });

  test('bad input is a clear error', () => {
    tidy(() => {
      const isErr = (re: RegExp) => (e: unknown) => e instanceof TensorOpError && re.test((e as Error).message);
      const x = Tensor.zeros([4]);
      assert.throws(() => dropout(x, 1, 0), isErr(/^dropout: dropout probability must be in \[0, 1\), got 1/));
      assert.throws(() => dropout(x, -0.1, 0), isErr(/probability must be in \[0, 1\)/));
      assert.throws(() => dropout(x, 0.1, 1.5), isErr(/^dropout: dropout seed must be an integer/));
      assert.throws(() => dropout(Tensor.zeros([4], 'int32'), 0.1, 0), isErr(/^dropout: x must be float32, got int32/));
    });
  });
});
