/**
 * `gpg-rl sft` at toy size: writes an HF model folder that loads, the loss decreases, and a bad
 * recipe is one line on stderr with no output folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM } from '../../src/model/decoder.ts';

const root = new URL('../../', import.meta.url).pathname;
const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/gpg-rl.mjs'), ...args], { encoding: 'utf8', cwd: root });

test('sft on the built-in arithmetic task: loss decreases, model folder loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-sft-'));
  try {
    const out = join(dir, 'run');
    const r = cli([
      'sft',
      'recipes/sft/arithmetic.yaml',
      '--set',
      `output_dir=${out}`,
      '--set',
      'max_steps=40',
      '--set',
      'per_device_train_batch_size=16',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^sft step 40\/40: loss \d+\.\d+, elapsed \d+(m\d+)?s, eta 0s$/m);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { first_loss: number; final_loss: number };
    const losses = readFileSync(join(out, 'sft_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { loss: number }).loss);
    assert.equal(losses.length, 40);
    const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(tail < head * 0.8, `loss did not decrease: ${head} -> ${tail}`);
    assert.ok(summary.final_loss < summary.first_loss);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
    ])
      assert.ok(existsSync(join(out, 'model', f)), f);
    const m = CausalLM.load(join(out, 'model'));
    assert.equal(m.cfg.architecture, 'Qwen2ForCausalLM');
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sft with a bad recipe: one line, exit 1, no output folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-sft-bad-'));
  try {
    const recipe = join(dir, 'bad.yaml');
    writeFileSync(
      recipe,
      'model_name_or_path: builtin:demo\ndataset: { path: builtin:arithmetic }\nlearning_rate: -1\noutput_dir: ' +
        join(dir, 'out') +
        '\n',
    );
    const r = cli(['sft', recipe]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^gpg-rl sft: .*learning_rate/);
    assert.ok(!existsSync(join(dir, 'out')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
