/**
 * `gpg-rl train` under faults and bad input (issue 18), as a user runs it (child processes):
 * every error is one line naming the path or field and the process exits at once (also after the
 * verifier's workers started); one run per folder (run lock); `--resume` never touches a folder
 * that is not a run; leftovers of killed runs are cleared; failing rewards fail the run after
 * max_consecutive_skipped_steps, logged once per step; Ctrl-C saves a checkpoint that `--resume`
 * continues exactly, and a second Ctrl-C stops at once.
 */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { fromFloat32, readSafetensorsFile, toFloat32, writeSafetensorsFile } from '../../src/model/safetensors.ts';

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

const dir = mkdtempSync(join(tmpdir(), 'gpg-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const recipe = join(dir, 'recipe.yaml');

before(() => {
  writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
  // the same model with NaN weights: training fails in its first step, after the verifier started
  writeInitModel(join(dir, 'nan-model'), SHAPE, { seed: 1, charVocab: true });
  const st = join(dir, 'nan-model', 'model.safetensors');
  const f = readSafetensorsFile(st);
  for (const [k, t] of f.tensors)
    if (k.endsWith('norm.weight')) f.tensors.set(k, fromFloat32(toFloat32(t).fill(NaN), t.shape, 'F32'));
  writeSafetensorsFile(st, f.tensors, { format: 'pt' });
  writeFileSync(
    join(dir, 'data.jsonl'),
    Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `${i}+${i + 1}`, answer: String(2 * i + 1) })).join(
      '\n',
    ) + '\n',
  );
  writeFileSync(
    join(dir, 'reward.mjs'),
    [
      'export function len({ completions }) {',
      // GPG_TEST_SLOW_MS: each call waits, so a signal surely lands mid-run; GPG_TEST_STALL: blocks for a minute
      '  const ms = Number(process.env.GPG_TEST_STALL ? 60000 : process.env.GPG_TEST_SLOW_MS ?? 0);',
      '  if (ms) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);',
      '  return completions.map((c) => (c.length % 3 === 0 ? 1 : 0));',
      '}',
      "export function boom() { throw new Error('boom'); }",
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
      'max_steps: 3',
      'save_steps: 0',
      'seed: 5',
      '',
    ].join('\n'),
  );
});

function train(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [BIN, 'train', recipe, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
}

function trainChild(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, 'train', recipe, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((res) =>
    child.on('close', (code) => res({ code, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

/** Exactly one line on stderr, starting `gpg-rl train: `, never a raw Node error. */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /^gpg-rl train: /);
  assert.doesNotMatch(lines[0]!, /Error: E[A-Z]+|\n {4}at /);
  return lines[0]!;
}

const rows = (run: string) =>
  existsSync(join(run, 'metrics.jsonl'))
    ? readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean)
    : [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** metrics.jsonl rows without the wall-clock keys. */
function metricsOf(run: string): Record<string, unknown>[] {
  return rows(run).map((l) => {
    const row = JSON.parse(l) as Record<string, unknown>;
    for (const k of Object.keys(row)) if (k === 'time_s' || k.startsWith('tokens_per_s/')) delete row[k];
    return row;
  });
}

describe('errors: one line, and the process exits', () => {
  test('an output_dir that cannot be created (a file as parent, /proc) names the path', () => {
    writeFileSync(join(dir, 'a-file'), 'x');
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'a-file', 'run'), /a-file is a file, not a folder/],
      ['/proc/gpg-rl-faults/run', /\/proc does not accept new folders/],
    ];
    for (const [out, re] of cases) {
      const r = train(['--set', `output_dir=${out}`]);
      assert.equal(r.status, 1, `${out}: status ${r.status} signal ${r.signal} ${r.stderr}`);
      assert.match(oneLine(r.stderr), re);
      assert.ok(oneLine(r.stderr).includes(`output_dir ${out}`));
    }
  });

  test('a run that fails in its first step (NaN weights, verifier workers running) exits and leaves no run folder', () => {
    const out = join(dir, 'nan-run');
    const args = [
      '--set',
      `model_name_or_path=${join(dir, 'nan-model')}`,
      '--set',
      'reward_funcs=[accuracy]',
      '--set',
      `output_dir=${out}`,
    ];
    const r1 = train(args);
    assert.equal(r1.status, 1, `status ${r1.status} signal ${r1.signal}: ${r1.stderr}`);
    const l1 = oneLine(
      r1.stderr
        .split('\n')
        .filter((l) => !l.startsWith('step '))
        .join('\n'),
    );
    assert.match(l1, /non-finite|no finite/);
    assert.ok(!existsSync(out), `left behind: ${existsSync(out) ? readdirSync(out).join(', ') : ''}`);
    // the same command fails the same way (not "already holds a run")
    const r2 = train(args);
    assert.equal(r2.status, 1);
    assert.doesNotMatch(r2.stderr, /already holds a run/);
  });

  test('threads above the core count, null prompts, and positions past max_position_embeddings', () => {
    const r1 = train(['--set', `threads=${availableParallelism() + 1}`, '--set', `output_dir=${join(dir, 'thr')}`]);
    assert.equal(r1.status, 1);
    assert.match(oneLine(r1.stderr), new RegExp(`threads: must be at most the ${availableParallelism()} CPU cores`));
    assert.ok(!existsSync(join(dir, 'thr')));
    writeFileSync(join(dir, 'null.jsonl'), '{"prompt": null, "answer": "1"}\n{"prompt": null, "answer": "2"}\n');
    const r2 = train(['--set', `dataset.path=${join(dir, 'null.jsonl')}`, '--dry-run']);
    assert.equal(r2.status, 1);
    assert.match(oneLine(r2.stderr), /no usable prompt among 2 rows read \(2 with an empty or null 'prompt'/);
    const r3 = train(['--set', 'max_completion_length=100', '--dry-run']);
    assert.equal(r3.status, 0, r3.stderr);
    assert.match(
      r3.stderr,
      /warning: the longest prompt \(\d+ tokens\) \+ 100 new tokens = \d+ positions, past the model's max_position_embeddings 64/,
    );
  });
});

describe('the run folder', () => {
  test('two runs started at the same moment: one is refused (run lock), the other writes its own rows only', async () => {
    const out = join(dir, 'twin');
    const a = trainChild(['--set', `output_dir=${out}`]);
    const b = trainChild(['--set', `output_dir=${out}`, '--set', 'seed=6']);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    const codes = [ra.code, rb.code].sort();
    assert.deepEqual(codes, [0, 1], `${ra.stderr}\n${rb.stderr}`);
    const loser = ra.code === 1 ? ra : rb;
    assert.match(loser.stderr, /is in use by another gpg-rl process \(pid \d+/);
    assert.equal(rows(out).length, 3);
    assert.ok(!existsSync(join(out, '.gpg-rl.lock')), 'the lock is released at the end');
  });

  test('--resume refuses a missing folder and one that is not a run, and changes nothing there', () => {
    const missing = join(dir, 'no-such-run');
    const r1 = train(['--set', `output_dir=${missing}`, '--resume']);
    assert.equal(r1.status, 1);
    assert.match(oneLine(r1.stderr), /--resume: the folder does not exist/);
    assert.ok(!existsSync(missing));
    const user = join(dir, 'users-folder');
    mkdirSync(join(user, 'model'), { recursive: true });
    writeFileSync(join(user, 'model', 'w.bin'), 'keep');
    const r2 = train(['--set', `output_dir=${user}`, '--set', 'max_steps=2', '--resume']);
    assert.equal(r2.status, 1);
    assert.match(oneLine(r2.stderr), /--resume: not a gpg-rl run folder/);
    assert.deepEqual(readdirSync(user), ['model']);
    assert.equal(readFileSync(join(user, 'model', 'w.bin'), 'utf8'), 'keep');
  });

  test('a dead run’s lock and staging leftovers are cleared on --resume; a changed setting is named', () => {
    const out = join(dir, 'leftovers');
    const r0 = train(['--set', `output_dir=${out}`, '--set', 'save_steps=1']);
    assert.equal(r0.status, 0, r0.stderr);
    // what a SIGKILL in the middle of a save leaves, from a process that is gone
    const dead = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
    );
    mkdirSync(join(out, `.checkpoint-4.staging-${dead}-k1ll3d00`));
    writeFileSync(join(out, `.checkpoint-4.staging-${dead}-k1ll3d00`, 'model.safetensors'), 'half');
    mkdirSync(join(out, `.model.staging-${dead}-k1ll3d01`));
    writeFileSync(join(out, `.metrics.jsonl.tmp-${dead}-k1ll3d02`), '');
    writeFileSync(
      join(out, '.gpg-rl.lock'),
      JSON.stringify({ pid: dead, host: require_hostname(), procStart: null, started: 'x', command: 'x' }),
    );
    const changed = train([
      '--set',
      `output_dir=${out}`,
      '--set',
      'max_steps=4',
      '--set',
      'learning_rate=0.002',
      '--resume',
    ]);
    assert.equal(changed.status, 1, changed.stderr);
    assert.match(changed.stderr, /removed 3 leftover\(s\) of a killed run/);
    assert.match(
      oneLine(
        changed.stderr
          .split('\n')
          .filter((l) => !/removed \d+ leftover/.test(l))
          .join('\n'),
      ),
      /learning_rate \(was 0\.001, now 0\.002\) changed/,
    );
    const r = train(['--set', `output_dir=${out}`, '--set', 'max_steps=4', '--resume']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      readdirSync(out).filter((f) => f.startsWith('.')),
      [],
    );
    assert.equal(rows(out).length, 4);
  });
});

function require_hostname(): string {
  return spawnSync(process.execPath, ['-p', 'require("os").hostname()'], { encoding: 'utf8' }).stdout.trim();
}

describe('failing rewards and stopping', () => {
  test('a reward that always throws fails the run after max_consecutive_skipped_steps, logged once per step', () => {
    const out = join(dir, 'boom');
    const r = train([
      '--set',
      `reward_funcs=[{path: ${join(dir, 'reward.mjs')}, export: boom}]`,
      '--set',
      'max_steps=20',
      '--set',
      'max_consecutive_skipped_steps=3',
      '--set',
      `output_dir=${out}`,
    ]);
    assert.equal(r.status, 1, r.stderr);
    const fails = r.stderr.split('\n').filter((l) => l.includes('reward boom failed'));
    assert.equal(fails.filter((l) => /^step \d+: /.test(l)).length, 3, r.stderr);
    assert.match(fails[0]!, /^step 1: reward boom failed \d+× this step \(throw\): reward 'boom' threw: boom$/);
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(
      last,
      /^gpg-rl train: steps 1–3: 3 consecutive steps skipped \(max_consecutive_skipped_steps 3\): reward boom failed/,
    );
    assert.equal(rows(out).length, 3);
  });

  test('Ctrl-C saves checkpoint-<step> and the report, exits 130; --resume continues exactly', async () => {
    const full = join(dir, 'full');
    const cut = join(dir, 'cut');
    const STEPS = 8;
    const ra = train(['--set', `output_dir=${full}`, '--set', `max_steps=${STEPS}`]);
    assert.equal(ra.status, 0, ra.stderr);
    const b = trainChild(['--set', `output_dir=${cut}`, '--set', `max_steps=${STEPS}`], { GPG_TEST_SLOW_MS: '150' });
    while (rows(cut).length < 2) {
      assert.equal(b.child.exitCode, null, `exited early: ${b.stderr()}`);
      await sleep(20);
    }
    b.child.kill('SIGINT');
    const rb = await b.done;
    assert.equal(rb.code, 130, rb.stderr);
    assert.match(rb.stderr, /SIGINT: finishing the current step, then saving a checkpoint/);
    const m = /interrupted after step (\d+): saved (\S+checkpoint-(\d+)) and report\.html; continue with --resume/.exec(
      rb.stderr,
    );
    assert.ok(m, rb.stderr);
    const k = Number(m![1]);
    assert.ok(k >= 2 && k < STEPS, `stopped at ${k}`);
    assert.ok(existsSync(join(cut, `checkpoint-${k}`, 'trainer_state.json')));
    assert.ok(existsSync(join(cut, 'report.html')));
    assert.equal(rows(cut).length, k);
    const rc = train(['--set', `output_dir=${cut}`, '--set', `max_steps=${STEPS}`, '--resume']);
    assert.equal(rc.status, 0, rc.stderr);
    assert.deepEqual(metricsOf(cut), metricsOf(full));
    assert.ok(
      readFileSync(join(cut, 'model', 'model.safetensors')).equals(
        readFileSync(join(full, 'model', 'model.safetensors')),
      ),
    );
  });

  test('a second Ctrl-C stops at once', async () => {
    const out = join(dir, 'twice');
    const b = trainChild(['--set', `output_dir=${out}`], { GPG_TEST_STALL: '1' });
    // wait until the first step's reward call is blocked, then interrupt twice
    while (!existsSync(join(out, 'trainer_config.json'))) {
      assert.equal(b.child.exitCode, null, b.stderr());
      await sleep(20);
    }
    await sleep(500);
    b.child.kill('SIGINT');
    while (!/finishing the current step/.test(b.stderr())) await sleep(20);
    b.child.kill('SIGINT');
    const r = await b.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGINT again: stopping now, without saving/);
  });
});
