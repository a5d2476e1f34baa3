/**
 * Activation checkpointing per decoder layer (`CausalLM.gradientCheckpointing`, tape.ts
 * `checkpoint`): the gradient of every parameter is bitwise the one without checkpointing (the HF
 * fixtures' tiny Qwen2 and Qwen3, with their left/right padding, fp32 and bf16 autocast), the
 * backend's live bytes at their peak during forward + backward are clearly lower with it, the
 * tape is left empty and nothing leaks; the primitive itself on a small graph (input gradient,
 * closed-over parameters, under noGrad, misuse).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel } from '../../src/model/init.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward, checkpoint, noGrad, tapeLength } from '../../src/tensor/tape.ts';
import { linear, setAutocast } from '../../src/tensor/ops/matmul.ts';
import { rmsnorm } from '../../src/tensor/ops/rmsnorm.ts';
import { add } from '../../src/tensor/ops/add.ts';
import { defaultBackend, liveBytes } from '../../src/backend/index.ts';
import { TensorOpError } from '../../src/errors.ts';
import { readSafetensorsFile, toInt32 } from '../../src/model/safetensors.ts';
import { rng, randn } from '../helpers.ts';

/** Every parameter's gradient after one backward of Σ seed·logps (the grads are reset first). */
function grads(
  model: CausalLM,
  batch: { ids: Int32Array; mask: Int32Array; B: number; T: number },
  ckpt: boolean,
  seedOf: (n: number) => Float32Array,
): Map<string, Float32Array> {
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  model.setRequiresGrad(true);
  tidy(() => {
    const { logps } = model.tokenLogps(batch, { checkpoint: ckpt });
    backward(logps, Tensor.fromArray(seedOf(logps.size), [logps.size]));
  });
  model.setRequiresGrad(false);
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.trainableParameters()) {
    assert.ok(p.grad, `${name} got no gradient`);
    out.set(name, p.grad.toFloat32());
    p.grad.dispose();
    p.grad = null;
  }
  return out;
}

const FIXTURES = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;

/** The fixture's padded batch (input_ids, attention_mask [B, T]). */
function fixtureBatch(kind: string): { ids: Int32Array; mask: Int32Array; B: number; T: number } {
  const ref = readSafetensorsFile(join(FIXTURES, kind, 'reference.safetensors')).tensors;
  const ids = ref.get('input_ids')!;
  const [B, T] = ids.shape as [number, number];
  return { ids: Int32Array.from(toInt32(ids)), mask: Int32Array.from(toInt32(ref.get('attention_mask')!)), B, T };
}

function firstDifference(a: Float32Array, b: Float32Array): string | null {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

for (const kind of ['qwen2-tiny', 'qwen3-tiny'] as const) {
  describe(`gradient checkpointing: ${kind}`, () => {
    const model = CausalLM.load(join(FIXTURES, kind));
    const batch = fixtureBatch(kind);
    const seedOf = (n: number) => Float32Array.from(randn(n, rng(7)));

    test('the batch has padding (left-padded prompts, right-padded completions)', () => {
      assert.ok(batch.mask.some((m) => m === 0));
    });

    for (const bf16 of [false, true]) {
      test(`every parameter gradient is bitwise equal with and without checkpointing${bf16 ? ' (bf16 autocast)' : ''}`, () => {
        const prev = setAutocast(bf16);
        try {
          const before = liveBytes();
          const plain = grads(model, batch, false, seedOf);
          const ckpt = grads(model, batch, true, seedOf);
          assert.equal(tapeLength(), 0);
          assert.equal(liveBytes(), before, 'checkpointing leaked native memory');
          assert.equal(ckpt.size, plain.size);
          for (const [name, g] of plain) {
            const diff = firstDifference(ckpt.get(name)!, g);
            assert.equal(diff, null, `${kind}: ${name} differs at ${diff}`);
            assert.ok(
              g.some((v) => v !== 0),
              `${name}: gradient is all zeros`,
            );
          }
        } finally {
          setAutocast(prev);
        }
      });
    }

    test('the model property turns it on for tokenLogps (same log-probs, same gradients)', () => {
      const plain = grads(model, batch, false, seedOf);
      model.gradientCheckpointing = true;
      try {
        for (const p of model.parameters()) p.grad = null;
        model.setRequiresGrad(true);
        const lp = tidy(() => {
          const { logps } = model.tokenLogps(batch);
          // the node on the tape above the layers is the checkpoint (one per layer)
          const v = logps.toFloat32();
          backward(logps, Tensor.fromArray(seedOf(logps.size), [logps.size]));
          return v;
        });
        model.setRequiresGrad(false);
        const ref = noGrad(() => tidy(() => model.tokenLogps(batch).logps.toFloat32()));
        assert.deepEqual(Array.from(lp), Array.from(ref));
        for (const [name, p] of model.trainableParameters()) {
          assert.equal(firstDifference(p.grad!.toFloat32(), plain.get(name)!), null, name);
          p.grad!.dispose();
          p.grad = null;
        }
      } finally {
        model.gradientCheckpointing = false;
      }
    });
  });
}

test('peak live bytes of forward + backward are clearly lower with checkpointing', () => {
  // activations dominate here: 6 layers, 64 positions × 8 rows, small vocabulary
  const shape = {
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 6,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 96,
  };
  const init = initModel(shape, { seed: 3 });
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  const B = 8;
  const T = 64;
  const r = rng(11);
  const ids = Int32Array.from({ length: B * T }, () => Math.floor(r() * 96));
  const mask = new Int32Array(B * T).fill(1);
  for (let b = 0; b < B; b++) for (let t = 0; t < b; t++) mask[b * T + t] = 0; // left padding
  const batch = { ids, mask, B, T };
  const be = defaultBackend();
  const allocate = be.allocate.bind(be);
  let peak = 0;
  be.allocate = (...a: Parameters<typeof be.allocate>) => {
    const buf = allocate(...a);
    peak = Math.max(peak, be.liveBytes());
    return buf;
  };
  const peakOf = (ckpt: boolean): number => {
    grads(model, batch, ckpt, (n) => new Float32Array(n).fill(1 / n)); // warm: gradients exist as in a later micro-batch
    const base = liveBytes();
    peak = base;
    grads(model, batch, ckpt, (n) => new Float32Array(n).fill(1 / n));
    return peak - base;
  };
  try {
    const plain = peakOf(false);
    const ckpt = peakOf(true);
    // per layer and token, un-checkpointed keeps ~12 tensors of C or I floats; checkpointed keeps
    // the layer input (C floats) plus one layer's worth during its backward
    assert.ok(ckpt < 0.5 * plain, `peak above baseline: ${ckpt} bytes with checkpointing vs ${plain} without`);
  } finally {
    be.allocate = allocate;
    model.dispose();
  }
});

describe('checkpoint()', () => {
  test('input and closed-over parameter gradients equal the plain graph; activations freed', () => {
    const r = rng(5);
    const W = Tensor.fromArray(Float32Array.from(randn(12 * 12, r, 0.3)), [12, 12]).keep();
    const g = Tensor.fromArray(Float32Array.from(randn(12, r, 0.3).map((v) => 1 + v)), [12]).keep();
    W.requiresGrad = true;
    g.requiresGrad = true;
    const block = (x: Tensor) => add(x, linear(rmsnorm(x, g, 1e-6), W));
    const xData = Float32Array.from(randn(5 * 12, r));
    const seed = Float32Array.from(randn(5 * 12, r));
    const run = (ckpt: boolean) =>
      tidy(() => {
        const x0 = Tensor.fromArray(xData, [5, 12]);
        x0.requiresGrad = true;
        const x = add(x0, x0); // x has a node: its gradient flows on through the checkpoint
        const y = ckpt ? checkpoint((xi) => block(block(xi)), [x]) : block(block(x));
        const live = liveBytes();
        backward(y, Tensor.fromArray(seed, [5, 12]));
        const out = { dx: x0.grad!.toFloat32(), dW: W.grad!.toFloat32(), dg: g.grad!.toFloat32(), live };
        for (const t of [x0, W, g]) {
          t.grad!.dispose();
          t.grad = null;
        }
        return out;
      });
    const plain = run(false);
    const ck = run(true);
    assert.deepEqual(Array.from(ck.dx), Array.from(plain.dx));
    assert.deepEqual(Array.from(ck.dW), Array.from(plain.dW));
    assert.deepEqual(Array.from(ck.dg), Array.from(plain.dg));
    assert.ok(ck.live < plain.live, `live bytes before backward: ${ck.live} (checkpointed) vs ${plain.live}`);
    assert.equal(tapeLength(), 0);
    W.dispose();
    g.dispose();
  });

  test('outside any tidy scope, after a node whose output was disposed: the same gradient', () => {
    const W = Tensor.fromArray([0.5, -1, 2, 0.25], [2, 2]);
    W.requiresGrad = true;
    const x = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    x.requiresGrad = true;
    add(x, x).dispose(); // its node stays on the tape until a scope ends
    const y = checkpoint((xi) => linear(add(xi, xi), W), [x]);
    backward(y, Tensor.fromArray([1, 0, 0, 1], [2, 2]));
    // y = 2x Wᵀ: dx = 2 · seed · W, dW = 2 · seedᵀ · x
    assert.deepEqual(Array.from(x.grad!.toArray()), [1, -2, 4, 0.5]);
    assert.deepEqual(Array.from(W.grad!.toArray()), [2, 4, 6, 8]);
    assert.equal(tapeLength(), 0);
    for (const t of [W, x, y, W.grad!, x.grad!]) t.dispose();
  });

  test('under noGrad it is the plain call; an output that needs no gradient records nothing', () => {
    const x = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    const W = Tensor.fromArray([1, 0, 0, 1], [2, 2]);
    const y = noGrad(() => checkpoint((xi) => linear(xi, W), [x]));
    assert.deepEqual(Array.from(y.toArray()), [1, 2, 3, 4]);
    const z = checkpoint((xi) => linear(xi, W), [x]); // nothing requires grad
    assert.equal(z.requiresGrad, false);
    assert.equal(tapeLength(), 0);
    for (const t of [x, W, y, z]) t.dispose();
  });

  test('fn returning its input is a clear error', () => {
    const x = Tensor.fromArray([1, 2], [1, 2]);
    x.requiresGrad = true;
    assert.throws(
      () => checkpoint((xi) => xi, [x]),
      (e: unknown) => e instanceof TensorOpError && /checkpoint/.test((e as Error).message),
    );
    assert.equal(tapeLength(), 0);
    x.dispose();
  });
});
