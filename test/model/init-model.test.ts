import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGenerationConfig, readModelConfig } from '../../src/model/config.ts';
import { loadModelTensors } from '../../src/model/folder.ts';
import { initModel } from '../../src/model/init.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { command } from '../../src/cli/commands/init-model.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const TINY = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 50,
};

function withTmp(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'init-'));
  return Promise.resolve(fn(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const w = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  return fn().finally(() => (process.stdout.write = w));
}

describe('initModel', () => {
  test('HF-style init: norms 1, biases 0, matrices ~ N(0, 0.02), pad row 0; seeded and reproducible', () => {
    const a = initModel({ ...TINY, pad_token_id: 3 }, { seed: 1 });
    const b = initModel({ ...TINY, pad_token_id: 3 }, { seed: 1 });
    const c = initModel({ ...TINY, pad_token_id: 3 }, { seed: 2 });
    assert.equal(a.cfg.architecture, 'Qwen2ForCausalLM');
    assert.ok(a.tensors.get('model.norm.weight')!.data.every((v) => v === 1));
    assert.ok(a.tensors.get('model.layers.0.self_attn.q_proj.bias')!.data.every((v) => v === 0));
    const emb = a.tensors.get('model.embed_tokens.weight')!.data;
    assert.ok(emb.subarray(3 * 32, 4 * 32).every((v) => v === 0));
    const w = a.tensors.get('model.layers.1.mlp.up_proj.weight')!.data;
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
    assert.ok(Math.abs(mean) < 0.003 && Math.abs(std - 0.02) < 0.002, `mean ${mean} std ${std}`);
    assert.deepEqual(
      a.tensors.get('model.layers.1.mlp.up_proj.weight')!.data,
      b.tensors.get('model.layers.1.mlp.up_proj.weight')!.data,
    );
    assert.notDeepEqual(w, c.tensors.get('model.layers.1.mlp.up_proj.weight')!.data);
    const q3 = initModel({ ...TINY, head_dim: 12 }, { seed: 0, arch: 'qwen3' });
    assert.deepEqual(q3.tensors.get('model.layers.0.self_attn.q_norm.weight')!.shape, [12]);
    assert.equal(q3.cfg.architecture, 'Qwen3ForCausalLM');
  });
});

describe('gpg-rl init-model', () => {
  test('writes a folder that loads back; --char-vocab tokenizer round-trips "12+34=46"', () =>
    withTmp(async (tmp) => {
      const shape = join(tmp, 'shape.json');
      writeFileSync(shape, JSON.stringify(TINY));
      const out = join(tmp, 'model');
      assert.equal(await quiet(() => command.run(['--config', shape, '--out', out, '--seed', '5', '--char-vocab'])), 0);
      const cfg = readModelConfig(out);
      assert.equal(cfg.vocabSize, 99);
      assert.deepEqual([cfg.padTokenId, cfg.eosTokenIds, cfg.bosTokenId], [0, [2], null]);
      const tensors = loadModelTensors(out, cfg);
      assert.deepEqual(tensors.get('model.embed_tokens.weight')!.shape, [99, 32]);
      assert.deepEqual(readGenerationConfig(out, cfg).eosTokenIds, [2]);
      const tok = TextTokenizer.fromDir(out);
      const ids = tok.encode('12+34=46');
      assert.equal(ids.length, 8);
      assert.equal(tok.decode(ids), '12+34=46');
      assert.equal(tok.eosTokenId, 2);
      assert.ok(
        tok
          .applyChatTemplate([{ role: 'user', content: 'q' }], { addGenerationPrompt: true })
          .endsWith('<|im_start|>assistant\n'),
      );
      // same seed → same bytes; --arch llama switches the architecture
      const out2 = join(tmp, 'model2');
      await quiet(() => command.run(['--config', shape, '--out', out2, '--seed', '5', '--char-vocab']));
      assert.deepEqual(readFileSync(join(out2, 'model.safetensors')), readFileSync(join(out, 'model.safetensors')));
      const out3 = join(tmp, 'llama');
      await quiet(() => command.run(['--config', shape, '--out', out3, '--arch', 'llama']));
      const lc = readModelConfig(out3);
      assert.equal(lc.architecture, 'LlamaForCausalLM');
      assert.equal(loadModelTensors(out3, lc).has('model.layers.0.self_attn.q_proj.bias'), false);
      assert.ok(!existsSync(join(out3, 'tokenizer.json')));
    }));

  test('eos_token_id / pad_token_id in config.json and generation_config.json (HF generate stops at <|im_end|>)', () =>
    withTmp(async (tmp) => {
      const shape = join(tmp, 'shape.json');
      const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
      writeFileSync(shape, JSON.stringify(TINY));
      const char = join(tmp, 'char');
      await quiet(() => command.run(['--config', shape, '--out', char, '--char-vocab']));
      for (const f of ['config.json', 'generation_config.json']) {
        assert.equal(json(join(char, f)).eos_token_id, 2, f); // <|im_end|>
        assert.equal(json(join(char, f)).pad_token_id, 0, f); // <|endoftext|>
      }
      // --tokenizer DIR: the copied tokenizer's eos/pad tokens fill the unset ids
      writeFileSync(shape, JSON.stringify({ ...TINY, vocab_size: 99 }));
      const copied = join(tmp, 'copied');
      await quiet(() => command.run(['--config', shape, '--out', copied, '--tokenizer', char]));
      for (const f of ['config.json', 'generation_config.json']) {
        assert.equal(json(join(copied, f)).eos_token_id, 2, f);
        assert.equal(json(join(copied, f)).pad_token_id, 0, f);
      }
      // ids the shape file sets win
      writeFileSync(shape, JSON.stringify({ ...TINY, vocab_size: 99, eos_token_id: 5 }));
      const own = join(tmp, 'own');
      await quiet(() => command.run(['--config', shape, '--out', own, '--tokenizer', char]));
      assert.equal(json(join(own, 'config.json')).eos_token_id, 5);
      assert.equal(json(join(own, 'config.json')).pad_token_id, 0);
    }));

  test('bad config → one-line error, exit 1, no output folder', () =>
    withTmp((tmp) => {
      const cases: Array<[unknown, RegExp]> = [
        [{ ...TINY, hidden_size: undefined }, /shape\.json: missing required field "hidden_size"/],
        [{ ...TINY, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads 3/],
        [{ ...TINY, rope_scaling: { rope_type: 'yarn', factor: 2 } }, /rope_scaling of type "yarn"/],
        ['{"hidden_size": ', /shape\.json: not valid JSON/],
      ];
      for (const [shape, re] of cases) {
        const p = join(tmp, 'shape.json');
        writeFileSync(p, typeof shape === 'string' ? shape : JSON.stringify(shape));
        const out = join(tmp, 'out');
        const r = spawnSync(
          process.execPath,
          [join(ROOT, 'bin/gpg-rl.mjs'), 'init-model', '--config', p, '--out', out],
          { encoding: 'utf8' },
        );
        assert.equal(r.status, 1, r.stderr);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^gpg-rl init-model: /);
        assert.match(lines[0]!, re);
        assert.ok(!existsSync(out));
        assert.deepEqual(readdirSync(tmp), ['shape.json']);
      }
    }));
});
