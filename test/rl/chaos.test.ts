/**
 * Chaos (issue 18, "Done when"): the demo recipe (recipes/demo.yaml: builtin:arithmetic, GPG) for
 * 30 steps, shrunk to stay affordable — a fixture-sized model made here, 2 prompts × 4 completions
 * a step, 6-token completions, a length-parity reward so groups disagree, a checkpoint every 2
 * steps — is SIGKILLed ten times at random moments (a random step, then a random delay into it:
 * generation, rewards, the update or a checkpoint being written) and resumed each time. Its
 * metrics (all but the wall-clock keys), completions and final weights must equal an
 * uninterrupted run's byte for byte, and no staging folder, temp file or lock may remain.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const DEMO = new URL('../../recipes/demo.yaml', import.meta.url).pathname;
const STEPS = 30;
const KILLS = 10;

const dir = mkdtempSync(join(tmpdir(), 'gpg-chaos-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function args(out: string): string[] {
  const set = [
    `model_name_or_path=${join(dir, 'model')}`,
    `reward_funcs=[{path: ${join(dir, 'reward.mjs')}, export: len}]`,
    'num_generations=4',
    'per_device_train_batch_size=8',
    'max_completion_length=6',
    'learning_rate=0.001',
    `max_steps=${STEPS}`,
    'save_steps=2',
    `output_dir=${out}`,
  ];
  return ['train', DEMO, ...set.flatMap((s) => ['--set', s])];
}

const rows = (run: string) =>
  existsSync(join(run, 'metrics.jsonl'))
    ? readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean)
    : [];

function metricsOf(run: string): Record<string, unknown>[] {
  return rows(run).map((l) => {
    const row = JSON.parse(l) as Record<string, unknown>;
    for (const k of Object.keys(row)) if (k === 'time_s' || k.startsWith('tokens_per_s/')) delete row[k];
    return row;
  });
}

/** A folder gpg-rl train wrote (so the next start passes --resume, as a user would). */
const isRun = (d: string) =>
  existsSync(d) &&
  readdirSync(d).some(
    (f) => f === 'trainer_config.json' || f === '.gpg-rl.lock' || f === 'metrics.jsonl' || /^checkpoint-\d+$/.test(f),
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`chaos: ${KILLS} SIGKILLs at random moments of a ${STEPS}-step demo run, resumed each time, equal an uninterrupted run`, async () => {
  writeInitModel(
    join(dir, 'model'),
    {
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      tie_word_embeddings: true,
      max_position_embeddings: 64,
    },
    { seed: 7, charVocab: true },
  );
  writeFileSync(
    join(dir, 'reward.mjs'),
    'export function len({ completions }) { return completions.map((c) => (c.length % 3 === 0 ? 1 : 0)); }\n',
  );
  const full = join(dir, 'full');
  const ra = spawnSync(process.execPath, [BIN, ...args(full)], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(ra.status, 0, ra.stderr);
  assert.equal(rows(full).length, STEPS);

  const chaos = join(dir, 'chaos');
  // seeded kill points: a step to reach (spread over the first STEPS − 10 steps), then 0–400 ms
  // more; the 10 steps of room keep a fast machine from finishing the run before the last kill
  let seed = 18;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const targets = Array.from({ length: KILLS }, (_, i) => Math.floor((i + rnd()) * ((STEPS - 10) / KILLS)) + 1);
  let kills = 0;
  for (const target of targets) {
    const child = spawn(process.execPath, [BIN, ...args(chaos), ...(isRun(chaos) ? ['--resume'] : [])], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    while (rows(chaos).length < target && child.exitCode === null) await sleep(10);
    assert.equal(child.exitCode, null, `launch ${kills + 1} ended before step ${target}: ${stderr}`);
    await sleep(Math.floor(rnd() * 400));
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      kills++;
    }
    await exited;
  }
  assert.equal(kills, KILLS);
  const rc = spawnSync(process.execPath, [BIN, ...args(chaos), '--resume'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(rc.status, 0, rc.stderr);

  assert.deepEqual(metricsOf(chaos), metricsOf(full));
  assert.equal(
    readFileSync(join(chaos, 'completions.jsonl'), 'utf8'),
    readFileSync(join(full, 'completions.jsonl'), 'utf8'),
  );
  for (const f of ['model/model.safetensors', `checkpoint-${STEPS}/optimizer.safetensors`])
    assert.ok(readFileSync(join(chaos, f)).equals(readFileSync(join(full, f))), `${f} differs`);
  const hidden = readdirSync(chaos).filter((f) => f.startsWith('.'));
  assert.deepEqual(hidden, [], 'staging folders, temp files or the lock remain');
});
