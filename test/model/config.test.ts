import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelLoadError } from '../../src/errors.ts';
import {
  modelConfigToJson,
  parameterNames,
  parseModelConfig,
  readGenerationConfig,
  readModelConfig,
} from '../../src/model/config.ts';

const FIX = '/work/shared/fixtures/hf-reference';

function expectLoad(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof ModelLoadError && re.test(e.message) && !e.message.includes('\n'));
}

/** A transformers-4 Qwen2.5-style config (top-level rope_theta, inactive sliding window). */
function qwen25(): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    hidden_act: 'silu',
    hidden_size: 896,
    initializer_range: 0.02,
    intermediate_size: 4864,
    max_position_embeddings: 32768,
    max_window_layers: 21,
    model_type: 'qwen2',
    num_attention_heads: 14,
    num_hidden_layers: 24,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000.0,
    sliding_window: 131072,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    transformers_version: '4.43.1',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  };
}

describe('parseModelConfig', () => {
  test('the three transformers-5 fixtures', () => {
    const q2 = readModelConfig(join(FIX, 'qwen2-tiny'));
    assert.equal(q2.architecture, 'Qwen2ForCausalLM');
    assert.deepEqual(
      [q2.hiddenSize, q2.numHeads, q2.numKvHeads, q2.headDim, q2.intermediateSize, q2.numLayers, q2.vocabSize],
      [64, 4, 2, 16, 176, 2, 384],
    );
    assert.equal(q2.ropeTheta, 10000);
    assert.equal(q2.attentionBias, true);
    assert.equal(q2.qkNorm, false);
    assert.equal(q2.tieWordEmbeddings, true);
    assert.equal(q2.padTokenId, 0);
    assert.deepEqual(q2.eosTokenIds, []);
    const ll = readModelConfig(join(FIX, 'llama-tiny'));
    assert.deepEqual(
      [ll.architecture, ll.headDim, ll.numKvHeads, ll.ropeTheta, ll.attentionBias, ll.tieWordEmbeddings],
      ['LlamaForCausalLM', 16, 1, 500000, false, false],
    );
    const q3 = readModelConfig(join(FIX, 'qwen3-tiny'));
    assert.deepEqual(
      [q3.architecture, q3.headDim, q3.ropeTheta, q3.attentionBias, q3.qkNorm, q3.intermediateSize],
      ['Qwen3ForCausalLM', 24, 1e6, false, true, 192],
    );
    assert.equal(q3.rmsNormEps, 1e-6);
  });

  test('transformers-4 Qwen2.5 style: top-level rope_theta, inactive sliding window', () => {
    const c = parseModelConfig(qwen25());
    assert.equal(c.ropeTheta, 1e6);
    assert.equal(c.headDim, 64);
    assert.equal(c.bosTokenId, 151643);
    assert.deepEqual(c.eosTokenIds, [151645]);
    assert.equal(c.padTokenId, null);
    // sliding window named but beyond the context / not enabled: fine
    assert.doesNotThrow(() => parseModelConfig({ ...qwen25(), use_sliding_window: true, sliding_window: 32768 }));
    assert.doesNotThrow(() =>
      parseModelConfig({ ...qwen25(), use_sliding_window: true, sliding_window: 4096, max_window_layers: 24 }),
    );
    // Llama defaults: head_dim = hidden / heads, attention_bias false, kv heads = heads
    const l = parseModelConfig({
      architectures: ['LlamaForCausalLM'],
      vocab_size: 10,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      eos_token_id: [1, 2],
    });
    assert.deepEqual(
      [l.headDim, l.numKvHeads, l.attentionBias, l.ropeTheta, l.maxPositionEmbeddings],
      [8, 4, false, 10000, 2048],
    );
    assert.deepEqual(l.eosTokenIds, [1, 2]);
  });

  test('refuses what the decoder does not compute, naming the file and field', () => {
    const s = 'cfg/config.json';
    expectLoad(
      () => parseModelConfig({ ...qwen25(), rope_scaling: { type: 'yarn', factor: 4 } }, s),
      /^cfg\/config\.json: rope_scaling of type "yarn" is not supported/,
    );
    expectLoad(
      () => parseModelConfig({ ...qwen25(), rope_scaling: { rope_type: 'llama3', factor: 8 } }, s),
      /rope_scaling of type "llama3"/,
    );
    assert.doesNotThrow(() => parseModelConfig({ ...qwen25(), rope_scaling: { rope_type: 'default' } }, s));
    expectLoad(
      () => parseModelConfig({ ...qwen25(), rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } }, s),
      /rope_parameters\.rope_type "yarn" is not supported/,
    );
    expectLoad(
      () => parseModelConfig({ ...qwen25(), use_sliding_window: true, sliding_window: 4096 }, s),
      /use_sliding_window is true with sliding_window 4096/,
    );
    expectLoad(
      () => parseModelConfig({ ...qwen25(), layer_types: Array(24).fill('sliding_attention') }, s),
      /layer_types\[0\] is "sliding_attention"/,
    );
    expectLoad(
      () => parseModelConfig({ ...qwen25(), architectures: ['MistralForCausalLM'] }, s),
      /architecture "MistralForCausalLM" is not supported/,
    );
    const { hidden_size: _h, ...noHidden } = qwen25();
    expectLoad(() => parseModelConfig(noHidden, s), /^cfg\/config\.json: missing required field "hidden_size"/);
    expectLoad(
      () => parseModelConfig({ ...qwen25(), num_key_value_heads: 3 }, s),
      /not a multiple of num_key_value_heads 3/,
    );
    expectLoad(
      () => parseModelConfig({ ...qwen25(), vocab_size: '10' }, s),
      /field "vocab_size" must be a positive integer \(got "10"\)/,
    );
    expectLoad(() => parseModelConfig({ ...qwen25(), hidden_act: 'gelu' }, s), /hidden_act "gelu"/);
    const llama = {
      architectures: ['LlamaForCausalLM'],
      vocab_size: 10,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 4,
    };
    expectLoad(
      () => parseModelConfig({ ...llama, attention_bias: true }, s),
      /attention_bias true is not supported for LlamaForCausalLM/,
    );
    expectLoad(() => parseModelConfig({ ...llama, mlp_bias: true }, s), /mlp_bias/);
    expectLoad(() => parseModelConfig([], s), /must be a JSON object/);
  });

  test('readModelConfig / readGenerationConfig: missing and broken files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    try {
      expectLoad(() => readModelConfig(dir), /no config\.json/);
      writeFileSync(join(dir, 'config.json'), '{"architectures": [');
      expectLoad(() => readModelConfig(dir), /config\.json: not valid JSON/);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(qwen25()));
      const cfg = readModelConfig(dir);
      const g0 = readGenerationConfig(dir, cfg);
      assert.deepEqual([g0.eosTokenIds, g0.bosTokenId, g0.padTokenId], [[151645], 151643, null]);
      writeFileSync(
        join(dir, 'generation_config.json'),
        JSON.stringify({
          eos_token_id: [151645, 151643],
          pad_token_id: 151643,
          temperature: 0.7,
          top_p: 0.8,
          top_k: 20,
          do_sample: true,
          repetition_penalty: 1.05,
        }),
      );
      const g = readGenerationConfig(dir, cfg);
      assert.deepEqual(g.eosTokenIds, [151645, 151643]);
      assert.deepEqual(
        [g.padTokenId, g.bosTokenId, g.temperature, g.topP, g.topK, g.doSample],
        [151643, 151643, 0.7, 0.8, 20, true],
      );
      assert.equal(g.raw['repetition_penalty'], 1.05);
      writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ top_p: 2 }));
      expectLoad(() => readGenerationConfig(dir, cfg), /generation_config\.json: field "top_p" must be in \(0, 1\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('modelConfigToJson / parameterNames', () => {
  test('round trip through JSON keeps every typed field; both rope styles written', () => {
    for (const m of ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny']) {
      const c = readModelConfig(join(FIX, m));
      const j = modelConfigToJson(c, 'BF16');
      assert.equal(j['rope_theta'], c.ropeTheta);
      assert.deepEqual(j['rope_parameters'], { rope_theta: c.ropeTheta, rope_type: 'default' });
      assert.deepEqual(
        [j['torch_dtype'], j['dtype'], j['num_key_value_heads'], j['head_dim']],
        ['bfloat16', 'bfloat16', c.numKvHeads, c.headDim],
      );
      const back = parseModelConfig(JSON.parse(JSON.stringify(j)));
      const { raw: _a, ...x } = back;
      const { raw: _b, ...y } = c;
      assert.deepEqual(x, y, m);
    }
    const j = modelConfigToJson(parseModelConfig(qwen25()));
    assert.equal(j['sliding_window'], 131072);
    assert.equal(j['use_sliding_window'], false);
    assert.ok(!('rope_scaling' in j));
    assert.equal(j['eos_token_id'], 151645);
  });

  test('names and shapes match the fixture tensors exactly', async () => {
    const { readSafetensorsFile } = await import('../../src/model/safetensors.ts');
    for (const m of ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny']) {
      const c = readModelConfig(join(FIX, m));
      const names = parameterNames(c);
      const { tensors } = readSafetensorsFile(join(FIX, m, 'model.safetensors'));
      assert.deepEqual(names.map((p) => p.name).sort(), [...tensors.keys()].sort(), m);
      for (const p of names) assert.deepEqual(p.shape, tensors.get(p.name)!.shape, `${m} ${p.name}`);
    }
    const c = readModelConfig(join(FIX, 'qwen2-tiny'));
    const n = parameterNames(c).map((p) => p.name);
    assert.equal(n[0], 'model.embed_tokens.weight');
    assert.equal(n.at(-1), 'model.norm.weight');
    assert.ok(n.includes('model.layers.1.self_attn.k_proj.bias'));
    assert.ok(!n.some((x) => x.includes('o_proj.bias')));
  });
});
