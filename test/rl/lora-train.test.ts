/**
 * `train()` with `use_peft` (LoRA): the run writes a PEFT adapter to <output_dir>/model/ and to
 * each checkpoint (adapter-only optimizer state), only adapter tensors change (the base folder's
 * weights are untouched), a run stopped at a checkpoint and resumed equals an uninterrupted one
 * bit for bit (dropout masks included), with beta > 0 the reference is the base with adapters
 * off (KL is exactly 0 at step 1, when B = 0), a bf16 base trains, and a bad
 * lora_target_modules is one clear error before the run folder exists.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { loadAdapter } from '../../src/model/lora.ts';
import { readSafetensorsFile, toFloat32 } from '../../src/model/safetensors.ts';
import { ModelLoadError } from '../../src/errors.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-lora-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, answer: String(2 * i) })).join('\n') +
    '\n',
);
const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 3 === 0 ? 1 : 0));
const quiet = { rewardFns: { len }, log: () => {} };

function cfg(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_name_or_path: join(dir, 'model'),
    dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
    output_dir: join(dir, name),
    num_generations: 4,
    per_device_train_batch_size: 8,
    max_prompt_length: 16,
    max_completion_length: 6,
    max_steps: 4,
    save_steps: 2,
    seed: 5,
    learning_rate: 1e-2,
    lr_scheduler_type: 'constant',
    use_peft: true,
    lora_r: 4,
    lora_alpha: 8,
    lora_dropout: 0.1,
    ...over,
  };
}
const tensors = (f: string) =>
  new Map([...readSafetensorsFile(f).tensors].map(([n, t]) => [n, toFloat32(t)] as [string, Float32Array]));
const strip = (rows: Record<string, number>[]) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !/^time_s$|^tokens_per_s\//.test(k))));

test('use_peft: adapter folders in model/ and checkpoints, only adapter tensors change, exact resume', async () => {
  const baseBefore = readFileSync(join(dir, 'model', 'model.safetensors'));
  const a = await train(cfg('full'), quiet);
  assert.equal(a.steps, 4);
  const run = join(dir, 'full');
  for (const d of ['model', 'checkpoint-2', 'checkpoint-4']) {
    const files = readdirSync(join(run, d));
    assert.ok(files.includes('adapter_config.json') && files.includes('adapter_model.safetensors'), `${d}: ${files}`);
    assert.ok(files.includes('tokenizer.json'), `${d} carries the tokenizer`);
    assert.ok(!files.includes('model.safetensors'), `${d} holds no full weights`);
  }
  const conf = JSON.parse(readFileSync(join(run, 'model', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(conf.r, 4);
  assert.equal(conf.lora_alpha, 8);
  assert.equal(conf.base_model_name_or_path, join(dir, 'model'));
  assert.deepEqual(conf.target_modules, ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
  // optimizer state for adapter tensors only
  const opt = tensors(join(run, 'checkpoint-2', 'optimizer.safetensors'));
  const ad = tensors(join(run, 'model', 'adapter_model.safetensors'));
  assert.equal(opt.size, 2 * ad.size);
  for (const n of opt.keys()) assert.match(n, /^[mv]\.base_model\.model\.model\.layers\.\d+\..+\.lora_[AB]\.weight$/);
  // every lora_B moved off zero; the base folder is untouched and the in-memory base is frozen
  for (const [n, v] of ad)
    if (n.includes('lora_B'))
      assert.ok(
        v.some((x) => x !== 0),
        `${n} has not changed`,
      );
  assert.deepEqual(readFileSync(join(dir, 'model', 'model.safetensors')), baseBefore);
  const base = CausalLM.load(join(dir, 'model'));
  for (const [n, p] of a.model.params) assert.deepEqual(p.toFloat32(), base.params.get(n)!.toFloat32(), n);
  // the saved adapter loads onto the base with PEFT's loader path
  loadAdapter(base, join(run, 'model'));
  base.dispose();

  // stop after checkpoint-2, then resume to step 4: same rows and adapter, bit for bit
  const b1 = await train(cfg('resumed', { max_steps: 2 }), quiet);
  assert.equal(b1.steps, 2);
  const b2 = await train(cfg('resumed'), { ...quiet, resume: true });
  assert.equal(b2.steps, 4);
  const rows = (d: string) =>
    readFileSync(join(dir, d, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
  assert.deepEqual(strip(rows('resumed')), strip(rows('full')));
  const got = tensors(join(dir, 'resumed', 'model', 'adapter_model.safetensors'));
  for (const [n, v] of ad) assert.deepEqual(got.get(n), v, n);
  const optA = tensors(join(run, 'checkpoint-4', 'optimizer.safetensors'));
  const optB = tensors(join(dir, 'resumed', 'checkpoint-4', 'optimizer.safetensors'));
  for (const [n, v] of optA) assert.deepEqual(optB.get(n), v, n);
  for (const r of [a, b1, b2]) r.model.dispose();
});

test('use_peft with beta > 0: the reference is the base with adapters off (KL 0 at step 1)', async () => {
  const res = await train(cfg('kl', { loss_type: 'grpo', beta: 0.04, max_steps: 3, save_steps: 0 }), quiet);
  const kl = res.metrics.map((r) => r.kl!);
  assert.equal(kl[0], 0, 'B = 0 at step 1: policy and reference agree exactly');
  // once the adapters moved, the policy differs from the reference: the reference had them off
  assert.ok(kl.every(Number.isFinite) && kl[2]! > 0, `kl per step: ${kl}`);
  res.model.dispose();
});

test('use_peft with a bfloat16 base trains; a bad lora_target_modules fails before the run folder exists', async () => {
  const res = await train(cfg('bf16', { lora_base_dtype: 'bfloat16', max_steps: 2, save_steps: 0 }), quiet);
  assert.equal(res.model.params.get('model.layers.0.self_attn.q_proj.weight')!.dtype, 'bfloat16');
  assert.ok(res.metrics.every((r) => Number.isFinite(r.loss)));
  const ad = tensors(join(dir, 'bf16', 'model', 'adapter_model.safetensors'));
  for (const [n, v] of ad)
    if (n.includes('lora_B'))
      assert.ok(
        v.some((x) => x !== 0),
        `${n} has not changed`,
      );
  res.model.dispose();
  await assert.rejects(
    train(cfg('bad', { lora_target_modules: ['q_proj', 'c_attn'] }), quiet),
    (e: unknown) =>
      e instanceof ModelLoadError &&
      /^lora_target_modules: "c_attn" matches no linear layer of Qwen2ForCausalLM/.test((e as Error).message),
  );
  assert.equal(existsSync(join(dir, 'bad')), false);
});
