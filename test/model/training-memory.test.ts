/**
 * What a training step allocates: no [N, V] logits tensor ever exists whole (forward or
 * backward; token log-probs are chunked over rows); the [V, C] gradients of the lm_head and the
 * embedding go into the parameter's existing `.grad` in place (one [V, C] buffer per step, none
 * in later micro-batches); and under bf16 autocast a weight being
 * trained keeps no bf16 copy (cast per product; a copy kept from generation is dropped), while a
 * frozen weight (generation, a reference model) keeps its copy until it is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel } from '../../src/model/init.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward, noGrad } from '../../src/tensor/tape.ts';
import { linear, setAutocast } from '../../src/tensor/ops/matmul.ts';
import { defaultBackend, liveBytes } from '../../src/backend/index.ts';

/** Runs fn and returns the largest single allocation (bytes) and the peak live bytes above the start. */
function allocations(fn: () => void): { largest: number; peak: number; sizes: number[] } {
  const be = defaultBackend();
  const allocate = be.allocate.bind(be);
  const base = be.liveBytes();
  let largest = 0;
  let peak = 0;
  const sizes: number[] = [];
  be.allocate = (dtype, numel, zero) => {
    const buf = allocate(dtype, numel, zero);
    sizes.push(numel);
    largest = Math.max(largest, numel * (dtype === 'bfloat16' ? 2 : 4));
    peak = Math.max(peak, be.liveBytes() - base);
    return buf;
  };
  try {
    fn();
  } finally {
    be.allocate = allocate;
  }
  return { largest, peak, sizes };
}

test('training never holds the [N, V] logits whole: the largest buffer is one row chunk', () => {
  const V = 2048;
  const init = initModel(
    {
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      vocab_size: V,
    },
    { seed: 2 },
  );
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  const B = 4;
  const T = 160;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
  const mask = new Int32Array(B * T).fill(1);
  model.setRequiresGrad(true);
  for (const bf16 of [false, true]) {
    const prev = setAutocast(bf16);
    try {
      const { largest } = allocations(() =>
        tidy(() => {
          const { logps } = model.tokenLogps({ ids, mask, B, T }, { entropy: true });
          backward(logps, Tensor.full([logps.size], -1 / logps.size));
        }),
      );
      const rows = B * (T - 1);
      // the chunk of logits is [128, V] float32; the whole would be [rows, V]
      assert.ok(largest <= 128 * V * 4, `largest allocation ${largest} bytes > one [128, ${V}] chunk`);
      assert.ok(rows * V * 4 > 4 * largest, 'the test shape must make the whole logits much larger than a chunk');
    } finally {
      setAutocast(prev);
    }
  }
  model.dispose();
});

test('tied lm_head + embedding: one [V, C] gradient buffer in the first micro-batch, none after', () => {
  const V = 2048;
  const C = 32;
  const init = initModel(
    {
      hidden_size: C,
      intermediate_size: 48,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      vocab_size: V,
      tie_word_embeddings: true,
    },
    { seed: 4 },
  );
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  const B = 2;
  const T = 40;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 104729) % V);
  const mask = new Int32Array(B * T).fill(1);
  model.setRequiresGrad(true);
  const micro = () =>
    allocations(() =>
      tidy(() => {
        const { logps } = model.tokenLogps({ ids, mask, B, T });
        backward(logps, Tensor.full([logps.size], -1 / logps.size));
      }),
    ).sizes.filter((n) => n === V * C).length;
  const emb = model.params.get('model.embed_tokens.weight')!;
  assert.equal(micro(), 1, 'first micro-batch: the lm_head gradient becomes .grad, the embedding adds into it');
  const first = emb.grad!.toFloat32();
  assert.equal(micro(), 0, 'second micro-batch: both add into .grad');
  const second = emb.grad!.toFloat32();
  // the same batch twice: the accumulated gradient is twice the first (up to rounding)
  let num = 0;
  let den = 0;
  for (let i = 0; i < first.length; i++) {
    num += (second[i]! - 2 * first[i]!) ** 2;
    den += (2 * first[i]!) ** 2;
  }
  assert.ok(den > 0 && Math.sqrt(num / den) < 1e-6, `relative error ${Math.sqrt(num / den)}`);
  model.dispose();
});

test('autocast: a trained weight keeps no bf16 copy and drops a kept one; a frozen weight keeps it', () => {
  const prev = setAutocast(true);
  const N = 256;
  const K = 128;
  const W = Tensor.fromArray(
    Float32Array.from({ length: N * K }, (_, i) => Math.sin(i)),
    [N, K],
  );
  const x = Tensor.fromArray(
    Float32Array.from({ length: 4 * K }, (_, i) => Math.cos(i)),
    [4, K],
  );
  const copy = N * K * 2; // bytes of W's bf16 copy
  try {
    // frozen (no requiresGrad; or generation under noGrad): the copy stays after the product
    const before = liveBytes();
    const y0 = noGrad(() => linear(x, W));
    assert.equal(liveBytes() - before, y0.size * 4 + copy, 'frozen weight: output + kept bf16 copy');
    // trained: each product casts a transient copy, and the kept one is dropped
    W.requiresGrad = true;
    const y1 = tidy(() => {
      const y = linear(x, W);
      backward(y, Tensor.full(y.shape, 1));
      return y.toFloat32();
    });
    assert.equal(liveBytes() - before, y0.size * 4 + W.size * 4, 'trained weight: output + W.grad, no copy');
    assert.deepEqual(Array.from(y1), Array.from(y0.toFloat32()), 'the same bf16 product either way');
    W.grad!.dispose();
    W.grad = null;
    // frozen again (the next generation): the copy is made once more and kept
    W.requiresGrad = false;
    const y2 = noGrad(() => linear(x, W));
    assert.equal(liveBytes() - before, 2 * y0.size * 4 + copy);
    y0.dispose();
    y2.dispose();
    assert.equal(liveBytes() - before, copy);
  } finally {
    setAutocast(prev);
    W.dispose();
    x.dispose();
  }
});
