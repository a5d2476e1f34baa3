/**
 * The tensor layer: tidy scopes dispose what they do not return, views share storage, the tape
 * accumulates gradients of reused inputs and into existing leaf grads, noGrad records nothing,
 * and misuse is a clear TensorOpError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward, noGrad, tapeLength, type BackwardRoot } from '../../src/tensor/tape.ts';
import { add } from '../../src/tensor/ops/add.ts';
import { linear } from '../../src/tensor/ops/matmul.ts';
import { reshape } from '../../src/tensor/ops/reshape.ts';
import { liveBytes as liveNativeBytes } from '../../src/backend/index.ts';
import { TensorOpError } from '../../src/errors.ts';

test('tidy disposes intermediates and keeps returned tensors', () => {
  const before = liveNativeBytes();
  let inner: Tensor | null = null;
  const out = tidy(() => {
    inner = Tensor.zeros([100]);
    return { keep: Tensor.full([10], 2) };
  });
  assert.ok(inner!.disposed);
  assert.ok(!out.keep.disposed);
  assert.deepEqual(Array.from(out.keep.toArray()), new Array(10).fill(2));
  out.keep.dispose();
  assert.equal(liveNativeBytes(), before);
});

test('views share storage and free it with the last reference', () => {
  const before = liveNativeBytes();
  const a = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
  const v = a.view([3, 2]);
  a.dispose();
  assert.deepEqual(Array.from(v.toArray()), [1, 2, 3, 4, 5, 6]);
  v.dispose();
  assert.equal(liveNativeBytes(), before);
  assert.throws(() => a.toArray(), TensorOpError);
});

test('gradient of an input used twice is the sum; leaf grads accumulate across backward calls', () => {
  tidy(() => {
    const x = Tensor.fromArray([1, 2, 3], [1, 3]);
    x.requiresGrad = true;
    const y = add(x, x); // dy/dx = 2
    backward(y, Tensor.fromArray([1, 1, 1], [1, 3]));
    assert.deepEqual(Array.from(x.grad!.toArray()), [2, 2, 2]);
    const w = Tensor.fromArray([1, 0, 0, 0, 1, 0], [2, 3]);
    const z = reshape(linear(x, w), [2]);
    backward(z, Tensor.fromArray([1, 1], [2])); // d/dx sum(W x) = col sums of W = [1, 1, 0]
    assert.deepEqual(Array.from(x.grad!.toArray()), [3, 3, 2]);
    x.grad!.dispose();
  });
});

test('noGrad records nothing; backward on an untracked tensor is an error', () => {
  tidy(() => {
    const x = Tensor.fromArray([1, 2], [1, 2]);
    x.requiresGrad = true;
    const n0 = tapeLength();
    const y = noGrad(() => add(x, x));
    assert.equal(tapeLength(), n0);
    assert.throws(
      () => backward(y),
      (e: unknown) => e instanceof TensorOpError && /does not require grad/.test((e as Error).message),
    );
  });
});

test('backward with several roots adds their gradients in one walk (policy loss beside a value loss)', () => {
  const W = Tensor.fromArray([0.5, -1, 2, 0.25, 1.5, -0.75], [2, 3]).keep();
  const V = Tensor.fromArray([1, -2, 0.5], [1, 3]).keep();
  W.requiresGrad = true;
  V.requiresGrad = true;
  const x = Tensor.fromArray([1, 2, -1, 0.5, -0.5, 3], [2, 3]).keep();
  const U = Tensor.fromArray([0.75, -1.25], [1, 2]).keep();
  const seedP = [0.3, -0.7, 1.1, 0.2];
  const run = (mode: 'both' | 'policy' | 'value') =>
    tidy(() => {
      const h = linear(x, W); // shared trunk [2, 2]
      const policy = reshape(h, [4]);
      const v2 = add(linear(x, V), linear(h, U)); // [2, 1]: a value head on the input and on the shared trunk
      const roots: BackwardRoot[] = [];
      if (mode !== 'value') roots.push({ root: policy, seed: Tensor.fromArray(seedP, [4]) });
      if (mode !== 'policy') roots.push({ root: v2 });
      backward(roots);
    });
  const grads = () => [Array.from(W.grad?.toArray() ?? []), Array.from(V.grad?.toArray() ?? [])];
  const clear = () => {
    for (const p of [W, V]) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  run('both');
  const both = grads();
  clear();
  run('policy');
  const gp = grads();
  clear();
  run('value');
  const gv = grads();
  clear();
  // W gets gradient from both roots (through the trunk), V only from the value root
  both[0]!.forEach((g, i) =>
    assert.ok(Math.abs(g - (gp[0]![i]! + gv[0]![i]!)) <= 1e-6 * (1 + Math.abs(g)), `dW[${i}]`),
  );
  assert.deepEqual(both[1], gv[1]);
  assert.deepEqual(gp[1], []);
  assert.ok(both[0]!.some((g) => g !== 0) && both[1]!.some((g) => g !== 0));
  assert.equal(tapeLength(), 0);
  assert.throws(() => backward([]), /backward: no root given/);
  for (const t of [W, V, x, U]) t.dispose();
});
