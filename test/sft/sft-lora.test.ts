/**
 * `gpg-rl sft` with `use_peft`: the same LoRA fields as the trainer; the loss decreases with only
 * the adapters training, and <output_dir>/model is a PEFT adapter folder (no full weights).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/gpg-rl.mjs'), ...args], { encoding: 'utf8', cwd: root });

test('sft with use_peft: loss decreases, the model folder is a PEFT adapter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-sft-lora-'));
  try {
    const out = join(dir, 'run');
    const sets = [`output_dir=${out}`, 'max_steps=30', 'per_device_train_batch_size=16', 'use_peft=true'];
    sets.push('lora_r=8', 'lora_alpha=16', 'learning_rate=0.01', 'lora_target_modules=[q_proj,v_proj,up_proj]');
    const r = cli(['sft', 'recipes/sft/arithmetic.yaml', ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.status, 0, r.stderr);
    const losses = readFileSync(join(out, 'sft_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { loss: number }).loss);
    const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(tail < head, `loss did not decrease: ${head} -> ${tail}`);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json'])
      assert.ok(existsSync(join(out, 'model', f)), f);
    assert.equal(existsSync(join(out, 'model', 'model.safetensors')), false);
    const conf = JSON.parse(readFileSync(join(out, 'model', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(conf.target_modules, ['q_proj', 'up_proj', 'v_proj']);
    assert.equal(conf.r, 8);
    // a bad LoRA field is one line
    const bad = cli([
      'sft',
      'recipes/sft/arithmetic.yaml',
      '--set',
      `output_dir=${join(dir, 'bad')}`,
      '--set',
      'lora_r=0',
    ]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /lora_r/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
