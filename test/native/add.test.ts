/**
 * Residual add: forward against float64, backward (dy passed to both inputs) by finite
 * differences, and bad input (shape mismatch, wrong dtype, disposed tensor).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { add } from '../../src/tensor/ops/add.ts';
import { TensorOpError } from '../../src/errors.ts';
import { checkFiniteDiff, checkTensor, randn, rng, describeEachBackend } from '../helpers.ts';

describeEachBackend('add', ['addForward'], () => {
  test('add: forward and backward', () => {
    const r = rng(12);
    const n = 4 * 37;
    const A = randn(n, r),
      B = randn(n, r),
      R = randn(n, r);
    tidy(() => {
      const a = Tensor.fromArray(Float32Array.from(A), [4, 37]);
      const b = Tensor.fromArray(Float32Array.from(B), [4, 37]);
      a.requiresGrad = b.requiresGrad = true;
      const y = add(a, b);
      checkTensor(
        'add',
        'y',
        y.toArray(),
        A.map((v, i) => v + B[i]!),
        1e-7,
      );
      backward(y, Tensor.fromArray(Float32Array.from(R), [4, 37]));
      const f = (x: Float64Array) => x.reduce((s, v, i) => s + R[i]! * (v + B[i]!), 0);
      checkFiniteDiff('add', 'da', a.grad!.toArray(), f, Float64Array.from(A), r);
      checkTensor('add', 'db', b.grad!.toArray(), R, 1e-7);
      a.grad!.dispose();
      b.grad!.dispose();
    });
  });

  test('add: bad input is a TensorOpError naming the op and shapes', () => {
    tidy(() => {
      assert.throws(
        () => add(Tensor.zeros([2, 3]), Tensor.zeros([3, 2])),
        (e: unknown) =>
          e instanceof TensorOpError && /^add: a \[2,3\] vs b \[3,2\]: shapes differ/.test((e as Error).message),
      );
      assert.throws(
        () => add(Tensor.zeros([2], 'int32'), Tensor.zeros([2])),
        (e: unknown) => e instanceof TensorOpError && /add: a must be float32, got int32/.test((e as Error).message),
      );
      const d = Tensor.zeros([2]);
      d.dispose();
      assert.throws(
        () => add(d, Tensor.zeros([2])),
        (e: unknown) => e instanceof TensorOpError && /add: a was disposed/.test((e as Error).message),
      );
    });
  });
});
