import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelLoadError } from '../../src/errors.ts';
import { readGenerationConfig, readModelConfig } from '../../src/model/config.ts';
import { loadModelTensors, saveModelFolder } from '../../src/model/folder.ts';
import {
  fromFloat32,
  readSafetensorsFile,
  toFloat32,
  writeSafetensorsFile,
  type StTensor,
} from '../../src/model/safetensors.ts';

const FIX = '/work/shared/fixtures/hf-reference';
const MODELS = ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny'];

function expectLoad(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof ModelLoadError && re.test(e.message) && !e.message.includes('\n'));
}

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'folder-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Copy a fixture's config with a custom weight file set. */
function fixtureWith(dir: string, m: string, tensors: Map<string, StTensor>): void {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(FIX, m, 'config.json'), join(dir, 'config.json'));
  writeSafetensorsFile(join(dir, 'model.safetensors'), tensors);
}

describe('loadModelTensors / saveModelFolder', () => {
  test('fixtures: load, save f32, reload: identical values and identical safetensors bytes', () => {
    withTmp((tmp) => {
      for (const m of MODELS) {
        const cfg = readModelConfig(join(FIX, m));
        const a = loadModelTensors(join(FIX, m), cfg);
        const out = join(tmp, m);
        saveModelFolder(out, cfg, a, { generation: readGenerationConfig(join(FIX, m), cfg) });
        assert.deepEqual(
          readFileSync(join(out, 'model.safetensors')),
          readFileSync(join(FIX, m, 'model.safetensors')),
          `${m}: bytes differ from the HF file`,
        );
        const cfg2 = readModelConfig(out);
        const b = loadModelTensors(out, cfg2);
        assert.deepEqual([...b.keys()], [...a.keys()]);
        for (const [k, t] of a) {
          assert.deepEqual(b.get(k)!.shape, t.shape);
          assert.deepEqual(Buffer.from(b.get(k)!.data.buffer), Buffer.from(t.data.buffer), `${m} ${k}`);
        }
        assert.deepEqual(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')), {
          _from_model_config: true,
          output_attentions: false,
          output_hidden_states: false,
          pad_token_id: 0,
          transformers_version: '5.17.0',
          use_cache: true,
          bos_token_id: null,
          eos_token_id: null,
        });
        assert.deepEqual(
          readdirSync(tmp).filter((f) => f.startsWith('.')),
          [],
          'no temp folders left',
        );
      }
    });
  });

  test('sharded save (small maxShardBytes) → index with total_size and weight_map; loads back identical', () => {
    withTmp((tmp) => {
      const cfg = readModelConfig(join(FIX, 'llama-tiny'));
      const a = loadModelTensors(join(FIX, 'llama-tiny'), cfg);
      const out = join(tmp, 'sh');
      saveModelFolder(out, cfg, a, { maxShardBytes: 150_000 });
      const files = readdirSync(out)
        .filter((f) => f.endsWith('.safetensors'))
        .sort();
      assert.ok(files.length >= 3, files.join());
      assert.equal(files[0], `model-00001-of-${String(files.length).padStart(5, '0')}.safetensors`);
      assert.ok(!existsSync(join(out, 'model.safetensors')));
      const idx = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
      let total = 0;
      for (const t of a.values()) total += t.data.byteLength;
      assert.equal(idx.metadata.total_size, total);
      assert.deepEqual(Object.keys(idx.weight_map).sort(), [...a.keys()].sort());
      const b = loadModelTensors(out, cfg);
      for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, k);
      // a shard the index names but that is gone → clear error
      rmSync(join(out, files[1]!));
      expectLoad(
        () => loadModelTensors(out, cfg),
        new RegExp(`${files[1]}: shard listed in model.safetensors.index.json is missing`),
      );
    });
  });

  test('bf16 / f16 save: values are the rounded f32 values; config records the dtype', () => {
    withTmp((tmp) => {
      const cfg = readModelConfig(join(FIX, 'qwen3-tiny'));
      const a = loadModelTensors(join(FIX, 'qwen3-tiny'), cfg);
      for (const dtype of ['BF16', 'F16'] as const) {
        const out = join(tmp, dtype);
        saveModelFolder(out, cfg, a, { dtype });
        const { tensors } = readSafetensorsFile(join(out, 'model.safetensors'));
        assert.equal(tensors.get('model.norm.weight')!.dtype, dtype);
        assert.equal(
          JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype,
          dtype === 'BF16' ? 'bfloat16' : 'float16',
        );
        const b = loadModelTensors(out, readModelConfig(out));
        for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, toFloat32(fromFloat32(t.data, t.shape, dtype)), k);
      }
    });
  });

  test('missing, mis-shaped and unexpected tensors are named; inv_freq and a tied lm_head are ignored', () => {
    withTmp((tmp) => {
      const src = readSafetensorsFile(join(FIX, 'qwen2-tiny', 'model.safetensors')).tensors;
      const cfg = readModelConfig(join(FIX, 'qwen2-tiny'));
      const miss = new Map(src);
      miss.delete('model.layers.1.self_attn.v_proj.bias');
      fixtureWith(join(tmp, 'miss'), 'qwen2-tiny', miss);
      expectLoad(
        () => loadModelTensors(join(tmp, 'miss'), cfg),
        /missing tensor "model\.layers\.1\.self_attn\.v_proj\.bias"/,
      );

      const bad = new Map(src);
      bad.set('model.norm.weight', fromFloat32(new Float32Array(65), [65], 'F32'));
      fixtureWith(join(tmp, 'bad'), 'qwen2-tiny', bad);
      expectLoad(
        () => loadModelTensors(join(tmp, 'bad'), cfg),
        /tensor "model\.norm\.weight" has shape \[65\] but config\.json implies \[64\]/,
      );

      const extra = new Map(src);
      extra.set('model.layers.0.self_attn.o_proj.bias', fromFloat32(new Float32Array(64), [64], 'F32'));
      fixtureWith(join(tmp, 'extra'), 'qwen2-tiny', extra);
      expectLoad(
        () => loadModelTensors(join(tmp, 'extra'), cfg),
        /unexpected tensors .*model\.layers\.0\.self_attn\.o_proj\.bias/,
      );

      const ok = new Map(src);
      ok.set('model.layers.0.self_attn.rotary_emb.inv_freq', fromFloat32(new Float32Array(8), [8], 'F32'));
      ok.set('lm_head.weight', src.get('model.embed_tokens.weight')!);
      fixtureWith(join(tmp, 'ok'), 'qwen2-tiny', ok);
      const t = loadModelTensors(join(tmp, 'ok'), cfg);
      assert.equal(t.size, src.size);
      assert.ok(!t.has('lm_head.weight'));

      expectLoad(
        () => loadModelTensors(join(tmp, 'nothing-here'), cfg),
        /no model\.safetensors or model\.safetensors\.index\.json/,
      );
      mkdirSync(join(tmp, 'evil'));
      writeFileSync(
        join(tmp, 'evil', 'model.safetensors.index.json'),
        JSON.stringify({ weight_map: { 'model.norm.weight': '../x.safetensors' } }),
      );
      expectLoad(() => loadModelTensors(join(tmp, 'evil'), cfg), /is not a \.safetensors file name in the folder/);
    });
  });

  test('a corrupted weight file gives one SafetensorsError naming it', () => {
    withTmp((tmp) => {
      const dir = join(tmp, 'c');
      mkdirSync(dir);
      copyFileSync(join(FIX, 'qwen2-tiny', 'config.json'), join(dir, 'config.json'));
      writeFileSync(
        join(dir, 'model.safetensors'),
        readFileSync(join(FIX, 'qwen2-tiny', 'model.safetensors')).subarray(0, 1000),
      );
      assert.throws(
        () => loadModelTensors(dir, readModelConfig(dir)),
        (e: Error) => e.name === 'SafetensorsError' && e.message.includes(join(dir, 'model.safetensors')),
      );
    });
  });

  test('atomic replace: a failed save leaves the existing folder untouched and no temp folder; tokenizer files copied', () => {
    withTmp((tmp) => {
      const cfg = readModelConfig(join(FIX, 'qwen2-tiny'));
      const a = loadModelTensors(join(FIX, 'qwen2-tiny'), cfg);
      const out = join(tmp, 'm');
      const tokDir = join(tmp, 'tok');
      mkdirSync(tokDir);
      writeFileSync(join(tokDir, 'tokenizer.json'), '{"model":{}}');
      writeFileSync(join(tokDir, 'tokenizer_config.json'), '{}');
      saveModelFolder(out, cfg, a, { tokenizerFrom: tokDir, extraFiles: { 'README.md': 'hi\n' } });
      assert.deepEqual(readdirSync(out).sort(), [
        'README.md',
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
      ]);
      const before = readFileSync(join(out, 'model.safetensors'));
      const broken = new Map(a);
      broken.delete('model.norm.weight');
      expectLoad(() => saveModelFolder(out, cfg, broken), /missing tensor "model\.norm\.weight"/);
      expectLoad(() => saveModelFolder(out, cfg, a, { extraFiles: { '../x': '' } }), /must be a plain file name/);
      assert.deepEqual(readFileSync(join(out, 'model.safetensors')), before);
      // replacing works and drops files that the new save does not write
      saveModelFolder(out, cfg, a, { dtype: 'BF16' });
      assert.deepEqual(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
      assert.deepEqual(readdirSync(tmp).sort(), ['m', 'tok']);
    });
  });
});
