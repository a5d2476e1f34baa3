/**
 * `gpg-rl train` as a user runs it (child process through bin/gpg-rl.mjs): a fixture-sized model
 * and a small JSONL dataset end to end with every run output of issue 4 (metrics.jsonl with the
 * exact DESIGN §8 keys, completions.jsonl, a self-contained report.html, HF checkpoints with
 * trainer state, <output_dir>/model); and every bad recipe / dataset input named in the issue
 * failing with one line on stderr, exit 1, and no run folder left behind.
 */
import { algorithmFor } from '../../src/rl/algorithms/index.ts';
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { metricKeys } from '../../src/rl/metrics.ts';
import { loadCheckpoint, OPTIMIZER_FILE, STATE_FILE } from '../../src/rl/checkpoint.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const run = (args: string[], cwd = ROOT) =>
  spawnSync(process.execPath, [BIN, 'train', ...args], { encoding: 'utf8', timeout: 120_000, cwd });

/** A 2-layer, 32-wide Qwen2 with the character tokenizer (the "fixture-sized" model). */
const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};

/** A temp folder holding model/, data.jsonl, reward.mjs and recipe.yaml (paths relative to the recipe). */
const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-cli-train-'));
  made.push(dir);
  writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
  writeFileSync(
    join(dir, 'data.jsonl'),
    Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `${i}+${i + 1}`, answer: String(2 * i + 1) })).join(
      '\n',
    ) + '\n',
  );
  // A length-parity reward, so groups of random completions disagree and steps are not skipped.
  writeFileSync(
    join(dir, 'reward.mjs'),
    'export function len({ completions }) { return completions.map((c) => (c.length % 3 === 0 ? 1 : 0)); }\n',
  );
  writeFileSync(
    join(dir, 'recipe.yaml'),
    [
      'model_name_or_path: ./model',
      'dataset:',
      '  path: ./data.jsonl',
      '  use_chat_template: false',
      '  prompt_template: "{prompt}="',
      'reward_funcs:',
      '  - { path: ./reward.mjs, export: len }',
      'num_generations: 4',
      'per_device_train_batch_size: 8',
      'max_prompt_length: 16',
      'max_completion_length: 6',
      'learning_rate: 1.0e-3',
      'max_steps: 3',
      'save_steps: 2',
      'num_completions_to_log: 4',
      'seed: 3',
      '',
    ].join('\n'),
  );
  return dir;
}

describe('gpg-rl train end to end', () => {
  test('writes metrics, completions, report, checkpoints and the final model', () => {
    const dir = fixture();
    const out = join(dir, 'run');
    const r = run([join(dir, 'recipe.yaml'), '--set', `output_dir=${out}`]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      run_dir: string;
      steps: number;
      model_dir: string;
    };
    assert.equal(summary.steps, 3);
    assert.equal(summary.model_dir, join(out, 'model'));

    // metrics.jsonl: one row per step, exactly the DESIGN §8 keys for this config
    const keys = metricKeys({
      rewardFns: ['len'],
      algorithmKeys: algorithmFor('gpg').metricKeys({ loss_type: 'gpg', beta: 0, num_iterations: 1 }),
    });
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | null>);
    assert.deepEqual(
      rows.map((x) => x.step),
      [1, 2, 3],
    );
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), keys);
      for (const k of [
        'reward',
        'reward_std',
        'learning_rate',
        'completions/mean_length',
        'gpg/valid_groups',
        'rewards/len/mean',
        'time_s',
      ])
        assert.ok(Number.isFinite(row[k]), `step ${row.step}: ${k} = ${row[k]}`);
    }
    assert.ok(
      rows.some((x) => Number.isFinite(x.loss) && Number.isFinite(x.grad_norm)),
      'no step trained',
    );

    // completions.jsonl: a sample of each step with prompt, completion, rewards, advantage
    const comps = readFileSync(join(out, 'completions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual([...new Set(comps.map((c) => c.step))], [1, 2, 3]);
    for (const c of comps) {
      for (const k of ['prompt', 'completion', 'rewards', 'reward', 'advantage'])
        assert.ok(k in c, `completions.jsonl row lacks ${k}`);
      assert.equal(typeof (c.rewards as Record<string, unknown>).len, 'number');
    }

    // report.html: self-contained (no external scripts, styles or links)
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<html/i);
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);

    // checkpoints: checkpoint-2 (save_steps) and checkpoint-3 (end), each an HF folder + trainer state
    const cks = readdirSync(out)
      .filter((f) => f.startsWith('checkpoint-'))
      .sort();
    assert.deepEqual(cks, ['checkpoint-2', 'checkpoint-3']);
    for (const ck of cks) {
      const d = join(out, ck);
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', STATE_FILE, OPTIMIZER_FILE])
        assert.ok(existsSync(join(d, f)), `${ck}/${f} missing`);
      const data = loadCheckpoint(d); // verifies every checksum
      assert.equal(data.state.step, Number(ck.slice('checkpoint-'.length)));
      const m = CausalLM.load(d);
      assert.equal(data.m.size, m.params.size);
      m.dispose();
    }
    assert.deepEqual(
      readdirSync(out).filter((f) => f.startsWith('.')),
      [],
      'staging folders left behind',
    );

    // <output_dir>/model: the final weights, equal to the last checkpoint's, loadable as HF folder
    const final = CausalLM.load(join(out, 'model'));
    const last = CausalLM.load(join(out, 'checkpoint-3'));
    const init = CausalLM.load(join(dir, 'model'));
    assert.ok(!existsSync(join(out, 'model', OPTIMIZER_FILE)));
    assert.deepEqual(
      readFileSync(join(out, 'model', 'model.safetensors')),
      readFileSync(join(out, 'checkpoint-3', 'model.safetensors')),
    );
    let changed = 0;
    for (const [name, p] of final.params)
      if (!Buffer.from(p.toFloat32().buffer).equals(Buffer.from(init.params.get(name)!.toFloat32().buffer))) changed++;
    assert.ok(changed > 0, 'training changed no weight');
    for (const m of [final, last, init]) m.dispose();
  });

  test('--dry-run validates and writes nothing', () => {
    const dir = fixture();
    const out = join(dir, 'dry');
    const r = run([join(dir, 'recipe.yaml'), '--set', `output_dir=${out}`, '--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dry run/);
    assert.ok(!existsSync(out));
  });
});

describe('gpg-rl train bad input: one line, exit 1, no run folder', () => {
  const dir = fixture();
  writeFileSync(
    join(dir, 'bad.jsonl'),
    [
      JSON.stringify({ prompt: '1+1', answer: '2' }),
      '{"prompt": "2+2", "answer": ',
      JSON.stringify({ prompt: '3+3', answer: '6' }),
    ].join('\n') + '\n',
  );
  const cases: Array<{ name: string; sets: string[]; expect: RegExp }> = [
    {
      name: 'unknown key',
      sets: ['learning_rat=1e-3'],
      expect: /learning_rat: unknown field \(did you mean learning_rate\?\)/,
    },
    {
      name: 'wrong type',
      sets: ['num_generations=four'],
      expect: /num_generations: must be (a number|an integer) \(got "four"\)/,
    },
    {
      name: 'batch not divisible by num_generations',
      sets: ['per_device_train_batch_size=6'],
      expect: /per_device_train_batch_size.*num_generations|num_generations.*per_device_train_batch_size/,
    },
    {
      name: 'missing dataset file',
      sets: [`dataset.path=${join(dir, 'nope.jsonl')}`],
      expect: /dataset\.path: file not found: .*nope\.jsonl/,
    },
    {
      name: 'missing model folder',
      sets: [`model_name_or_path=${join(dir, 'no-model')}`],
      expect: /model_name_or_path: model folder not found: .*no-model/,
    },
    { name: 'bad --set (no =)', sets: ['max_steps'], expect: /--set max_steps: expected key=value/ },
    { name: 'bad --set (bad key)', sets: ['max-steps=3'], expect: /--set max-steps=3: bad key/ },
    { name: 'dataset with a bad JSON line', sets: [`dataset.path=${join(dir, 'bad.jsonl')}`], expect: /bad\.jsonl:2/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const out = join(dir, `run-${c.name.replace(/\W+/g, '-')}`);
      const r = run([join(dir, 'recipe.yaml'), '--set', `output_dir=${out}`, ...c.sets.flatMap((s) => ['--set', s])]);
      assert.equal(r.status, 1, `exit ${r.status}; stderr: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`);
      assert.match(lines[0]!, /^gpg-rl train: /);
      assert.match(lines[0]!, c.expect);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(out), `${out} was created`);
    });
  }

  test('a missing recipe file', () => {
    const r = run([join(dir, 'missing.yaml')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^gpg-rl train: .*missing\.yaml: recipe not found/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
  });

  test('an output_dir that already holds a run is refused without --resume', () => {
    const out = join(dir, 'taken');
    const r0 = run([join(dir, 'recipe.yaml'), '--set', `output_dir=${out}`, '--set', 'max_steps=1']);
    assert.equal(r0.status, 0, r0.stderr);
    const before = readFileSync(join(out, 'metrics.jsonl'));
    const r = run([join(dir, 'recipe.yaml'), '--set', `output_dir=${out}`, '--set', 'max_steps=1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^gpg-rl train: output_dir .* already holds a run; pass --resume/);
    assert.deepEqual(readFileSync(join(out, 'metrics.jsonl')), before);
  });
});
