/**
 * The demo and the ablation at toy size: outputs exist and are well-formed, the warm start is
 * cached and reused, the last stdout line of `gpg-rl demo` is the JSON summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDemo } from '../../src/demo/demo.ts';
import { runAblation } from '../../src/demo/ablate.ts';
import { WARMSTART, warmStart } from '../../src/builtin/warmstart.ts';
import { VerifierPool } from '../../src/rewards/math-verify/pool.ts';

const TOY = { maxSteps: 6, evalEvery: 3, evalProblems: 10, maxSeconds: 60 };

test('demo at toy size: warm start (cached), before/after accuracy, run folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-demo-'));
  try {
    const o = {
      seed: 3,
      cacheDir: join(dir, 'cache'),
      runsDir: join(dir, 'runs'),
      rlSteps: 2,
      heldoutN: 8,
      warmstart: TOY,
      log: () => {},
    };
    const r = await runDemo(o);
    for (const k of ['heldout_accuracy_before', 'heldout_accuracy_after'] as const)
      assert.ok(r[k] >= 0 && r[k] <= 1, `${k} = ${r[k]}`);
    for (const f of [
      'metrics.jsonl',
      'completions.jsonl',
      'report.html',
      'demo.json',
      'model/config.json',
      'model/model.safetensors',
      'model/tokenizer.json',
    ])
      assert.ok(existsSync(join(r.run_dir, f)), `missing ${f}`);
    assert.equal(readFileSync(join(r.run_dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 2);
    assert.ok(existsSync(join(r.warmstart_dir, 'warmstart.json')));
    // second run reuses the cached warm start (same folder, no retraining)
    const logs: string[] = [];
    const r2 = await runDemo({ ...o, log: (s) => logs.push(s) });
    assert.equal(r2.warmstart_dir, r.warmstart_dir);
    assert.ok(
      logs.some((l) => l.includes('cached')),
      logs.join('\n'),
    );
    assert.equal(r2.heldout_accuracy_before, r.heldout_accuracy_before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a warm start cut short by its time limit below target is used but not cached', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-warm-'));
  try {
    const pool = new VerifierPool({ workers: 1 });
    try {
      const logs: string[] = [];
      const o = {
        cacheDir: join(dir, 'cache'),
        warm: { ...WARMSTART, maxSteps: 50, evalEvery: 50, evalProblems: 4, maxSeconds: 0 },
        log: (s: string) => logs.push(s),
        pool,
      };
      const w = await warmStart(5, o);
      assert.equal(w.cached, false);
      assert.ok(existsSync(join(w.dir, 'model.safetensors')), 'the truncated model is still handed over as a folder');
      assert.ok(!w.dir.startsWith(o.cacheDir), w.dir);
      assert.ok(!existsSync(join(o.cacheDir, 'demo')) || readdirSync(join(o.cacheDir, 'demo')).length === 0);
      assert.ok(
        logs.some((l) => l.includes('not cached')),
        logs.join('\n'),
      );
    } finally {
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ablation at toy size: table, json and reward-curve plot; rows are reused on rerun', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-ablate-'));
  try {
    const o = {
      arms: ['gpg', 'sft_more'],
      seeds: [0],
      steps: 1,
      outDir: join(dir, 'out'),
      cacheDir: join(dir, 'cache'),
      heldoutN: 8,
      warmstart: TOY,
      log: () => {},
    };
    const res = await runAblation(o);
    assert.match(res.table, /\| gpg \| [\d.]+ ± [\d.]+ \|/);
    assert.match(res.table, /\| sft_more \|/);
    for (const f of ['ablation.md', 'ablation.json', 'reward_curves.svg']) assert.ok(existsSync(join(o.outDir, f)), f);
    assert.ok(readFileSync(join(o.outDir, 'reward_curves.svg'), 'utf8').startsWith('<svg'));
    assert.ok(readdirSync(join(o.outDir, 'runs')).includes('gpg-seed0'));
    const logs: string[] = [];
    const again = await runAblation({ ...o, log: (s) => logs.push(s) });
    assert.equal(again.table, res.table);
    assert.ok(logs.some((l) => l.includes('reusing')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
