/**
 * The trainer and the rollout engine: `generation_dtype` picks the weights generation reads, the
 * old log-probs are recomputed in training precision, and TRL's
 * `sampling/sampling_logp_difference/{mean,max}` report |training − sampling log-prob| — 0 up to
 * float rounding with fp32 generation, small but non-zero with bf16 generation weights.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { AUTO_BF16_MIN_PARAMS, resolveGenerationDtype } from '../../src/generate/generate.ts';
import { defaultBackend } from '../../src/backend/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpg-gendtype-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(
  join(dir, 'model'),
  {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 64,
    initializer_range: 0.2,
  },
  { seed: 2, charVocab: true },
);
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, answer: String(2 * i) })).join('\n') + '\n',
);
const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 2 === 0 ? 1 : 0));

async function run(dtype: 'float32' | 'bfloat16'): Promise<Record<string, number>> {
  const r = await train(
    {
      model_name_or_path: join(dir, 'model'),
      dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
      output_dir: join(dir, dtype),
      num_generations: 4,
      per_device_train_batch_size: 8,
      max_prompt_length: 16,
      max_completion_length: 10,
      max_steps: 1,
      save_steps: 0,
      seed: 3,
      min_inverse_alpha: 0,
      generation_dtype: dtype,
      generation_kv_cache_gb: 0.01,
    },
    { rewardFns: { len }, log: () => {} },
  );
  r.model.dispose();
  return r.metrics[0]! as Record<string, number>;
}

test('sampling_logp_difference: ≈ 0 with fp32 generation, small and non-zero with bf16 weights', async () => {
  const f32 = await run('float32');
  const bf = await run('bfloat16');
  const mean = 'sampling/sampling_logp_difference/mean';
  const max = 'sampling/sampling_logp_difference/max';
  assert.ok(f32[mean]! >= 0 && f32[max]! < 1e-4, `fp32: ${f32[mean]} / ${f32[max]}`);
  assert.ok(bf[mean]! > 0 && bf[max]! > f32[max]! && bf[max]! < 0.1, `bf16: ${bf[mean]} / ${bf[max]}`);
});

test('generation_dtype auto: bfloat16 from 100M parameters on a bf16-capable build, else float32; explicit values kept', () => {
  const be = defaultBackend();
  const model = (n: number) => n;
  const bf16Build = (be.benchmarks?.build().name ?? '').includes('bf16');
  assert.equal(resolveGenerationDtype('auto', model(416_640), be), 'float32');
  assert.equal(resolveGenerationDtype('auto', model(AUTO_BF16_MIN_PARAMS), be), bf16Build ? 'bfloat16' : 'float32');
  assert.equal(resolveGenerationDtype('float32', model(5e8), be), 'float32');
  assert.equal(resolveGenerationDtype('bfloat16', model(10), be), 'bfloat16');
  assert.equal(
    validateConfig({ model_name_or_path: join(dir, 'model'), dataset: { path: 'builtin:arithmetic' } }, 't', {
      checkModel: false,
    }).generation_dtype,
    'auto',
  );
});
