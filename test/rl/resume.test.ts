/**
 * Kill-and-resume (issue 4 §7): run A goes 6 steps uninterrupted; run B, same recipe in a child
 * process, is killed with SIGKILL in the middle of step 4 (after checkpoint-2 and the metrics row
 * of step 3 were written), then continued with `--resume`. Its metrics rows (all but the timing
 * keys) and its final weights and optimizer moments must equal A's byte for byte (same machine,
 * same thread count). A damaged checkpoint is reported (CheckpointError), never loaded.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { loadRecipe } from '../../src/rl/recipe.ts';
import { train } from '../../src/rl/trainer.ts';
import { CheckpointError } from '../../src/errors.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const STEPS = 6;

const dir = mkdtempSync(join(tmpdir(), 'gpg-resume-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const recipe = join(dir, 'recipe.yaml');

function setup(): void {
  writeInitModel(join(dir, 'model'), SHAPE, { seed: 2, charVocab: true });
  writeFileSync(
    join(dir, 'data.jsonl'),
    Array.from({ length: 10 }, (_, i) => JSON.stringify({ prompt: `${i}*${i + 2}`, answer: String(i * (i + 2)) })).join(
      '\n',
    ) + '\n',
  );
  // Length-parity reward (groups disagree). With GPG_TEST_STALL_METRICS set, it blocks the process
  // once that metrics.jsonl holds 3 rows, i.e. inside step 4, so the kill lands mid-run for sure.
  writeFileSync(
    join(dir, 'reward.mjs'),
    [
      "import { existsSync, readFileSync } from 'node:fs';",
      'export function len({ completions }) {',
      '  const f = process.env.GPG_TEST_STALL_METRICS;',
      "  if (f && existsSync(f) && readFileSync(f, 'utf8').trim().split('\\n').length >= 3) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);",
      '  return completions.map((c) => (c.length % 3 === 0 ? 1 : 0));',
      '}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    recipe,
    [
      'model_name_or_path: ./model',
      'dataset: { path: ./data.jsonl, use_chat_template: false, prompt_template: "{prompt}=" }',
      'reward_funcs: [{ path: ./reward.mjs, export: len }]',
      'num_generations: 4',
      'per_device_train_batch_size: 8',
      'max_prompt_length: 16',
      'max_completion_length: 6',
      'learning_rate: 1.0e-3',
      'warmup_ratio: 0.2',
      'lr_scheduler_type: cosine',
      'temperature: 1.0',
      'min_inverse_alpha: 0.5',
      `max_steps: ${STEPS}`,
      'save_steps: 2',
      'seed: 11',
      '',
    ].join('\n'),
  );
}

/** Runs `gpg-rl train recipe ...args` to completion; resolves with its exit code and stderr. */
function trainChild(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): {
  child: ReturnType<typeof spawn>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [BIN, 'train', recipe, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) =>
    child.on('close', (code, signal) => res({ code, signal, stderr })),
  );
  return { child, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** metrics.jsonl rows without the wall-clock keys (time_s, tokens_per_s/*). */
function metricsOf(run: string): Record<string, number | null>[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const row = JSON.parse(l) as Record<string, number | null>;
      for (const k of Object.keys(row)) if (k === 'time_s' || k.startsWith('tokens_per_s/')) delete row[k];
      return row;
    });
}

describe('kill -9 and --resume', () => {
  const runA = join(dir, 'A');
  const runB = join(dir, 'B');
  before(setup);

  test('a resumed run equals an uninterrupted one: metrics and weights bit-exact', async () => {
    const a = trainChild(['--set', `output_dir=${runA}`]);
    const stallFile = join(runB, 'metrics.jsonl');
    const b = trainChild(['--set', `output_dir=${runB}`], { GPG_TEST_STALL_METRICS: stallFile });
    // wait until B is inside step 4: 3 metrics rows and checkpoint-2 written
    const t0 = Date.now();
    while (!(
      existsSync(stallFile) &&
      readFileSync(stallFile, 'utf8').trim().split('\n').length >= 3 &&
      existsSync(join(runB, 'checkpoint-2'))
    )) {
      assert.ok(Date.now() - t0 < 90_000, 'run B never reached step 4');
      assert.equal(b.child.exitCode, null, `run B exited early: ${b.child.exitCode}`);
      await sleep(20);
    }
    b.child.kill('SIGKILL');
    const rb = await b.done;
    assert.equal(rb.signal, 'SIGKILL');
    assert.ok(!existsSync(join(runB, 'model')), 'B finished before the kill');
    assert.ok(!existsSync(join(runB, 'checkpoint-4')));
    assert.equal(metricsOf(runB).length, 3);

    const ra = await a.done;
    assert.equal(ra.code, 0, ra.stderr);
    const r = trainChild(['--set', `output_dir=${runB}`, '--resume']);
    const rr = await r.done;
    assert.equal(rr.code, 0, rr.stderr);
    assert.match(rr.stderr, /resuming .* \(step 2\)/);

    const ma = metricsOf(runA);
    const mb = metricsOf(runB);
    assert.equal(ma.length, STEPS);
    assert.ok(
      ma.some((x) => x.loss !== null),
      'run A never trained (all steps skipped)',
    );
    assert.deepEqual(mb, ma);
    for (const f of [
      'model/model.safetensors',
      `checkpoint-${STEPS}/model.safetensors`,
      `checkpoint-${STEPS}/optimizer.safetensors`,
    ]) {
      assert.ok(
        readFileSync(join(runB, f)).equals(readFileSync(join(runA, f))),
        `${f} differs between the resumed and the uninterrupted run`,
      );
    }
    // the same completions were sampled (saved sampling RNG and data order)
    assert.deepEqual(
      readFileSync(join(runB, 'completions.jsonl'), 'utf8'),
      readFileSync(join(runA, 'completions.jsonl'), 'utf8'),
    );
  });

  test('a corrupted checkpoint is reported on --resume, never loaded', async () => {
    assert.ok(existsSync(join(runA, `checkpoint-${STEPS}`)), 'needs run A from the test above');
    const damage: Array<[string, (ck: string) => void, RegExp]> = [
      [
        'flipped byte in model.safetensors',
        (ck) => {
          const p = join(ck, 'model.safetensors');
          const buf = readFileSync(p);
          buf[buf.length - 3] = buf[buf.length - 3]! ^ 0x40;
          writeFileSync(p, buf);
        },
        /model\.safetensors does not match its checksum/,
      ],
      [
        'missing trainer_state.json',
        (ck) => rmSync(join(ck, 'trainer_state.json')),
        /no trainer_state\.json: the checkpoint is partial/,
      ],
      [
        'missing optimizer.safetensors',
        (ck) => rmSync(join(ck, 'optimizer.safetensors')),
        /optimizer\.safetensors is missing/,
      ],
    ];
    for (const [name, hurt, msg] of damage) {
      const run = join(dir, `bad-${name.replace(/\W+/g, '-')}`);
      cpSync(runA, run, { recursive: true });
      hurt(join(run, `checkpoint-${STEPS}`));
      const before = readdirSync(run).sort();
      const metricsBefore = readFileSync(join(run, 'metrics.jsonl'));
      // CLI: one line, exit 1
      const r = spawnSync(
        process.execPath,
        [BIN, 'train', recipe, '--set', `output_dir=${run}`, '--set', `max_steps=${STEPS + 2}`, '--resume'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(r.status, 1, `${name}: exit ${r.status} ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^gpg-rl train: /);
      assert.match(r.stderr, msg, name);
      // API: the class is CheckpointError, and nothing in the run folder changed
      const cfg = loadRecipe(recipe, [`output_dir=${run}`, `max_steps=${STEPS + 2}`]);
      await assert.rejects(
        train(cfg, { resume: true, log: () => {} }),
        (e: unknown) => e instanceof CheckpointError && msg.test(e.message),
      );
      assert.deepEqual(readdirSync(run).sort(), before, name);
      assert.ok(readFileSync(join(run, 'metrics.jsonl')).equals(metricsBefore), `${name}: metrics.jsonl changed`);
    }
  });
});
