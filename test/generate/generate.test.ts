/**
 * Generation: seeded and reproducible; the returned log-probs are the sampling policy's
 * log_softmax(logits / T) of the chosen tokens (they equal teacher-forced token log-probs at the
 * same temperature, which is what RL ratios rely on); top_k = 1 is greedy; stop strings and eos
 * end a sequence; left-padded batches give the same result as one prompt at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel } from '../../src/model/init.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { generate } from '../../src/generate/generate.ts';
import { Rng } from '../../src/data/rng.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { noGrad } from '../../src/tensor/tape.ts';
import { packBatch } from '../../src/train/batch.ts';
import { applyLora } from '../../src/model/lora.ts';

const init = initModel(
  {
    hidden_size: 48,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    initializer_range: 0.2,
  },
  { seed: 4, charVocab: true },
);
const model = CausalLM.fromHost(init.cfg, init.tensors);
const tok = TextTokenizer.fromJson(init.tokenizer!.tokenizerJson, init.tokenizer!.tokenizerConfig);
const prompts = ['12+7=', '3+40-1=', '9='].map((p) => tok.encode(p));
const base = {
  maxNewTokens: 12,
  eosTokenIds: [] as number[],
  padTokenId: tok.padTokenId!,
  decode: (ids: number[]) => tok.decode(ids),
};

test('seeded sampling is reproducible; different seeds differ', () => {
  const a = generate(model, prompts, { ...base, temperature: 1, rng: new Rng(7) });
  const b = generate(model, prompts, { ...base, temperature: 1, rng: new Rng(7) });
  const c = generate(model, prompts, { ...base, temperature: 1, rng: new Rng(8) });
  assert.deepEqual(a.tokens, b.tokens);
  assert.deepEqual(a.logps, b.logps);
  assert.notDeepEqual(a.tokens, c.tokens);
});

test('sampling log-probs equal teacher-forced log_softmax(logits / T) of the same tokens', () => {
  const T = 0.7;
  const g = generate(model, prompts, { ...base, temperature: T, rng: new Rng(3) });
  const packed = packBatch(prompts, g.tokens, tok.padTokenId!);
  const { values, index } = noGrad(() =>
    tidy(() => {
      const r = model.tokenLogps(packed, { temperature: T, select: packed.m });
      return { values: r.logps.toFloat32(), index: r.index };
    }),
  );
  const flat = g.logps.flat();
  assert.equal(values.length, flat.length);
  let worst = 0;
  for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(values[i]! - flat[i]!));
  assert.ok(worst < 1e-4, `max |sampling − teacher-forced| = ${worst}`);
  assert.equal(index.length, flat.length);
});

test('top_k = 1 equals greedy; a left-padded batch equals prompts one at a time', () => {
  const greedy = generate(model, prompts, { ...base, greedy: true });
  const k1 = generate(model, prompts, { ...base, temperature: 1.3, topK: 1, rng: new Rng(1) });
  assert.deepEqual(k1.tokens, greedy.tokens);
  for (let i = 0; i < prompts.length; i++) {
    const one = generate(model, [prompts[i]!], { ...base, greedy: true });
    assert.deepEqual(one.tokens[0], greedy.tokens[i]);
  }
  const nucleus = generate(model, prompts, { ...base, temperature: 1, topP: 0.5, rng: new Rng(2) });
  assert.equal(nucleus.tokens.length, 3);
});

test('stop strings and eos end a sequence (the stop text and eos are kept)', () => {
  const free = generate(model, [prompts[0]!], { ...base, greedy: true });
  const text = free.texts![0]!;
  assert.ok(text.length >= 4);
  const stop = text.slice(2, 4);
  const s = generate(model, [prompts[0]!], { ...base, greedy: true, stopStrings: [stop] });
  assert.ok(s.finished[0]);
  assert.ok(s.texts![0]!.endsWith(stop) || s.texts![0]!.includes(stop));
  assert.ok(s.tokens[0]!.length < free.tokens[0]!.length || text.indexOf(stop) + stop.length === text.length);
  const eosId = free.tokens[0]![1]!;
  const e = generate(model, [prompts[0]!], { ...base, greedy: true, eosTokenIds: [eosId] });
  assert.deepEqual(e.tokens[0], free.tokens[0]!.slice(0, free.tokens[0]!.indexOf(eosId) + 1));
  assert.ok(e.finished[0]);
  assert.ok(!free.finished[0]);
});

test('with LoRA adapters on a bf16 base (generation reads packed copies of W and A): log-probs equal teacher-forced scoring, a batch equals prompts one at a time', () => {
  const m = CausalLM.fromHost(init.cfg, init.tensors);
  const lora = applyLora(m, { r: 4, alpha: 8, baseDtype: 'bfloat16', seed: 5 });
  try {
    // B = 0 at init makes the adapter a no-op: give it values so both of its products count
    for (const { B } of lora.pairs.values())
      B.write(Float32Array.from({ length: B.size }, (_, i) => Math.sin(i) * 0.05));
    for (const weightsDtype of ['float32', 'bfloat16'] as const) {
      const T = 0.8;
      const g = generate(m, prompts, { ...base, temperature: T, rng: new Rng(4), weightsDtype });
      const packed = packBatch(prompts, g.tokens, tok.padTokenId!);
      const values = noGrad(() =>
        tidy(() => m.tokenLogps(packed, { temperature: T, select: packed.m }).logps.toFloat32()),
      );
      const flat = g.logps.flat();
      let worst = 0;
      for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(values[i]! - flat[i]!));
      // bf16 generation rounds x and the weight copies to bf16; scoring runs in fp32
      assert.ok(
        worst < (weightsDtype === 'float32' ? 1e-4 : 0.05),
        `${weightsDtype}: max |sampling − teacher-forced| = ${worst}`,
      );
      const greedy = generate(m, prompts, { ...base, greedy: true, weightsDtype });
      for (let i = 0; i < prompts.length; i++)
        assert.deepEqual(
          generate(m, [prompts[i]!], { ...base, greedy: true, weightsDtype }).tokens[0],
          greedy.tokens[i],
        );
    }
  } finally {
    lora.dispose();
    m.dispose();
  }
});
