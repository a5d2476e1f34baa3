#!/usr/bin/env node
// The demo step (recipes/demo.yaml: 16 prompts × 8 completions) on 2 MPI ranks × 1 thread
// against 1 process × 2 threads, the same global batch (per_device_train_batch_size 64: 2 ranks ×
// 1 accumulation step vs 1 process × 2). Prints the median step time (time_s of metrics.jsonl,
// steps 2..N) of each, alternating the two RUNS times. Needs mpirun and the MPI binding.
//   node bench/mpi-step.mjs [STEPS=6] [RUNS=2]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'gpg-rl.mjs');
const steps = Number(process.argv[2] ?? 6);
const runs = Number(process.argv[3] ?? 2);
const dir = mkdtempSync(join(tmpdir(), 'gpg-mpi-bench-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function run(np, threads, gas, out) {
  const set = [`max_steps=${steps}`, 'per_device_train_batch_size=64', `gradient_accumulation_steps=${gas}`, `threads=${threads}`, `output_dir=${out}`];
  const args = [bin, 'train', join(root, 'recipes', 'demo.yaml'), ...set.flatMap((s) => ['--set', s])];
  const mpi = [...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : []), '--oversubscribe', '--bind-to', 'core', '-np', String(np), process.execPath];
  const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
  const r = np > 1 ? spawnSync('mpirun', [...mpi, ...args], { encoding: 'utf8', env }) : spawnSync(process.execPath, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${np} rank(s): ${r.stderr.slice(-2000)}`);
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return rows.slice(1).map((x) => x.time_s);
}

const res = { '1 process × 2 threads': [], '2 ranks × 1 thread': [] };
try {
  for (let i = 0; i < runs; i++) {
    res['1 process × 2 threads'].push(...run(1, 2, 2, join(dir, `one-${i}`)));
    res['2 ranks × 1 thread'].push(...run(2, 1, 1, join(dir, `two-${i}`)));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const [k, v] of Object.entries(res))
  console.log(`${k}: median step ${median(v).toFixed(3)} s (min ${Math.min(...v).toFixed(3)}, max ${Math.max(...v).toFixed(3)}, ${v.length} steps)`);
