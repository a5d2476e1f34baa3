/**
 * Data-parallel training on MPI (issue 16, "Done when"): `mpirun --oversubscribe -np 2 gpg-rl
 * train recipes/demo.yaml --set max_steps=3 …` (2 ranks on this machine, loopback only) gives the
 * same weights (max |Δw| ≤ 1e-6 · max |w|) and the same metrics as one process with the same
 * global batch (per_device_train_batch_size 8: 2 ranks × 1 accumulation step and 1 thread each vs
 * 1 process × 2 accumulation steps on 2 threads).
 * The demo recipe is shrunk as in test/rl/chaos.test.ts (a fixture-sized model, a length-parity
 * reward so groups disagree). Metrics: counts, rewards and lengths exactly; real-valued ones within
 * 1e-5 relative + 1e-6 (the gradient sum over ranks adds in another order than one process's
 * accumulation, a few float32 roundings); timing keys are left out. `--resume` continues a 2-rank
 * run in one process and a 1-process run on 2 ranks, to the same weights. A rank that dies ends
 * the run on every rank with an error, not a hang. Skips with one line when mpirun or the MPI
 * binding is absent.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { readSafetensorsFile, toFloat32 } from '../../src/model/safetensors.ts';
import { MPI_ADDON } from '../../src/parallel/mpi.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const DEMO = new URL('../../recipes/demo.yaml', import.meta.url).pathname;
const hasMpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = !hasMpirun
  ? 'mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)'
  : !existsSync(MPI_ADDON)
    ? `MPI binding not built (${MPI_ADDON}; npm run build:native -- --mpi-only)`
    : false;

const dir = mkdtempSync(join(tmpdir(), 'gpg-mpi-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The one-process runs use 2 compute threads where there are 2 cores (the ranks 1 each): the kernels are thread-count invariant. */
const THREADS_ONE = Math.min(2, availableParallelism());

function sets(out: string, gas: number, steps: number, extra: string[] = []): string[] {
  return [
    `model_name_or_path=${join(dir, 'model')}`,
    `reward_funcs=[{path: ${join(dir, 'reward.mjs')}, export: len}]`,
    'num_generations=4',
    'per_device_train_batch_size=8',
    `gradient_accumulation_steps=${gas}`,
    'max_completion_length=6',
    'learning_rate=0.001',
    `threads=${gas === 2 ? THREADS_ONE : 1}`,
    `max_steps=${steps}`,
    'save_steps=2',
    `output_dir=${out}`,
    ...extra,
  ].flatMap((s) => ['--set', s]);
}

const mpirun = (np: number) => [
  ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []),
  '--oversubscribe',
  '--mca',
  'btl',
  'self,vader,tcp',
  '--mca',
  'btl_tcp_if_include',
  'lo',
  '-np',
  String(np),
];

function run(np: number, args: string[], env: Record<string, string> = {}) {
  const cmd = np > 1 ? 'mpirun' : process.execPath;
  const argv = np > 1 ? [...mpirun(np), process.execPath, BIN, ...args] : [BIN, ...args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });
  return r;
}

function ok(np: number, args: string[]): void {
  const r = run(np, args);
  assert.equal(r.status, 0, `${np} rank(s) failed:\n${r.stderr.slice(-3000)}`);
}

function metricsOf(runDir: string): Record<string, number>[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const row = JSON.parse(l) as Record<string, number>;
      for (const k of Object.keys(row)) if (k === 'time_s' || k.startsWith('tokens_per_s/')) delete row[k];
      return row;
    });
}

function assertSameMetrics(a: Record<string, number>[], b: Record<string, number>[]): void {
  assert.equal(a.length, b.length);
  a.forEach((row, i) => {
    assert.deepEqual(Object.keys(b[i]!).sort(), Object.keys(row).sort());
    for (const [k, v] of Object.entries(row)) {
      const w = b[i]![k]!;
      if (Number.isNaN(v)) assert.ok(Number.isNaN(w), `step ${i + 1} ${k}: ${v} vs ${w}`);
      else assert.ok(Math.abs(v - w) <= 1e-5 * Math.abs(v) + 1e-6, `step ${i + 1} ${k}: ${v} vs ${w}`);
    }
  });
}

/** max |Δw| / max |w| over every tensor of two model folders. */
function weightDiff(a: string, b: string): number {
  const A = readSafetensorsFile(join(a, 'model.safetensors')).tensors;
  const B = readSafetensorsFile(join(b, 'model.safetensors')).tensors;
  let d = 0;
  let m = 0;
  for (const [k, t] of A) {
    const x = toFloat32(t);
    const y = toFloat32(B.get(k)!);
    for (let i = 0; i < x.length; i++) {
      d = Math.max(d, Math.abs(x[i]! - y[i]!));
      m = Math.max(m, Math.abs(x[i]!));
    }
  }
  return d / m;
}

test(
  'mpirun -np 2 equals one process with the same global batch (weights, metrics), and --resume crosses rank counts',
  { skip },
  () => {
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
    const one = join(dir, 'one');
    const two = join(dir, 'two');
    ok(1, ['train', DEMO, ...sets(one, 2, 3)]);
    ok(2, ['train', DEMO, ...sets(two, 1, 3)]);
    assertSameMetrics(metricsOf(two), metricsOf(one));
    const rel = weightDiff(join(two, 'model'), join(one, 'model'));
    process.stdout.write(`# 2 ranks vs 1 process, 3 steps: max |Δw| / max |w| = ${rel.toExponential(2)}\n`);
    assert.ok(rel <= 1e-6, `max |Δw| / max |w| = ${rel}`);
    // --resume with another rank count (the global batch unchanged): 2-rank run → 1 process, and back
    const twoOn1 = join(dir, 'two-on-1');
    const oneOn2 = join(dir, 'one-on-2');
    cpSync(two, twoOn1, { recursive: true });
    cpSync(one, oneOn2, { recursive: true });
    ok(1, ['train', DEMO, '--resume', ...sets(twoOn1, 2, 5)]);
    ok(2, ['train', DEMO, '--resume', ...sets(oneOn2, 1, 5)]);
    assertSameMetrics(metricsOf(oneOn2), metricsOf(twoOn1));
    const rel2 = weightDiff(join(oneOn2, 'model'), join(twoOn1, 'model'));
    process.stdout.write(`# resumed across rank counts, 5 steps: max |Δw| / max |w| = ${rel2.toExponential(2)}\n`);
    assert.ok(rel2 <= 1e-6, `max |Δw| / max |w| = ${rel2}`);
  },
);

test('a rank that stalls in a collective ends the run on every rank with one clear line', { skip }, () => {
  // rank 1 stalls in its reward function; rank 0 waits in the gather of the groups past the limit
  writeFileSync(
    join(dir, 'stall.mjs'),
    [
      'export function len({ completions }) {',
      "  if (process.env.OMPI_COMM_WORLD_RANK === '1') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);",
      '  return completions.map((c) => (c.length % 3 === 0 ? 1 : 0));',
      '}',
      '',
    ].join('\n'),
  );
  const t0 = Date.now();
  const r = run(
    2,
    [
      'train',
      DEMO,
      ...sets(join(dir, 'stall'), 1, 2, [`reward_funcs=[{path: ${join(dir, 'stall.mjs')}, export: len}]`]),
    ],
    {
      GPG_RL_MPI_TIMEOUT_S: '3',
    },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /rank 0 of 2: MPI (broadcast|allreduce) did not complete within 3 s/);
  assert.ok(Date.now() - t0 < 50_000, `took ${Date.now() - t0} ms`);
});

test('a rank that dies ends the run on every rank', { skip }, () => {
  writeFileSync(
    join(dir, 'die.mjs'),
    [
      'export function len({ completions }) {',
      "  if (process.env.OMPI_COMM_WORLD_RANK === '1') process.kill(process.pid, 'SIGKILL');",
      '  return completions.map((c) => (c.length % 3 === 0 ? 1 : 0));',
      '}',
      '',
    ].join('\n'),
  );
  const t0 = Date.now();
  const r = run(2, [
    'train',
    DEMO,
    ...sets(join(dir, 'die'), 1, 2, [`reward_funcs=[{path: ${join(dir, 'die.mjs')}, export: len}]`]),
  ]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /rank 1 .*(exited on signal 9|killed)/i);
  assert.ok(Date.now() - t0 < 50_000, `took ${Date.now() - t0} ms`);
});
