/**
 * Reward isolation (issue 18 §5–7): a recipe reward runs in its own worker thread, so
 * reward_timeout_s stops a synchronous busy loop, and a reward that exits or crashes takes down
 * only its worker (the next call gets a fresh one). A verifier comparison that never finishes
 * scores only its own completion 0, never the whole call. NaN scores are counted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRewards, resolveRewards, scoreCompletions, type NamedReward } from '../../src/rewards/index.ts';
import { accuracyReward, type AnswerVerifier } from '../../src/rewards/accuracy.ts';
import { input } from './helpers.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpg-isolation-'));
  writeFileSync(
    join(dir, 'r.mjs'),
    [
      "import { existsSync, writeFileSync } from 'node:fs';",
      "const marker = new URL('./crashed', import.meta.url);",
      'export const len = ({ completions }) => completions.map((c) => c.length);',
      // a synchronous loop that never yields: only terminating its thread stops it
      'export const spin = () => { for (;;) {} };',
      'export const exits = () => process.exit(7);',
      // exits on its first call only (a marker file, since a fresh worker re-imports the module)
      "export const crashOnce = ({ completions }) => { if (!existsSync(marker)) { writeFileSync(marker, ''); process.exit(1); } return completions.map(() => 2); };",
      'export const half = ({ completions }) => completions.map((_, i) => (i % 2 ? NaN : 1));',
      '',
    ].join('\n'),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function load(...exports: string[]): Promise<NamedReward[]> {
  return resolveRewards(
    exports.map((e) => ({ path: './r.mjs', export: e })),
    undefined,
    { baseDir: dir },
  );
}

test('a synchronous busy loop is stopped at the time limit; the other reward of the call still scores', async () => {
  const rewards = await load('spin', 'len');
  try {
    const r = await scoreCompletions(rewards, input(['ab', 'abcd']), { timeoutMs: 300 });
    assert.equal(r.failures.spin, 1);
    assert.equal(r.errors.find((e) => e.name === 'spin')?.kind, 'timeout');
    assert.deepEqual([...r.perFn.len!], [2, 4]);
    assert.deepEqual([...r.total], [2, 4]);
    // the next call starts a fresh worker (and times out again, not hangs)
    const again = await scoreCompletions(rewards, input(['a']), { timeoutMs: 300 });
    assert.equal(again.errors[0]?.kind, 'timeout');
  } finally {
    await closeRewards(rewards);
  }
});

test('a reward that exits takes down only its worker; a crashed worker is replaced on the next call', async () => {
  const rewards = await load('exits', 'crashOnce', 'len');
  try {
    const r1 = await scoreCompletions(rewards, input(['abc']), { timeoutMs: 20_000 });
    assert.match(r1.errors.find((e) => e.name === 'exits')!.message, /its worker exited with code 7/);
    assert.match(r1.errors.find((e) => e.name === 'crashOnce')!.message, /its worker exited with code 1/);
    assert.deepEqual([...r1.perFn.len!], [3]);
    const r2 = await scoreCompletions(rewards, input(['abc']), { timeoutMs: 20_000 });
    assert.equal(r2.failures.crashOnce, 0);
    assert.deepEqual([...r2.perFn.crashOnce!], [2]);
    assert.equal(r2.failures.exits, 1);
  } finally {
    await closeRewards(rewards);
  }
});

test('NaN scores are counted per function (0 in the total)', async () => {
  const rewards = await load('half');
  try {
    const r = await scoreCompletions(rewards, input(['a', 'b', 'c', 'd']), { timeoutMs: 20_000 });
    assert.equal(r.nanScores.half, 2);
    assert.deepEqual([...r.total], [1, 0, 1, 0]);
  } finally {
    await closeRewards(rewards);
  }
});

test('a verifier comparison that never finishes scores only its completion 0, not the whole call', async () => {
  // the stand-in verifier hangs on one hostile completion and answers the rest
  const verifier: AnswerVerifier = {
    verify: (gold, pred) =>
      pred.includes('((((') ? new Promise(() => {}) : Promise.resolve({ equal: pred.trim() === gold }),
  };
  const rewards: NamedReward[] = [{ name: 'accuracy', fn: accuracyReward({ verifier }), weight: 1, abortable: true }];
  const r = await scoreCompletions(rewards, input(['7', '((((((((x', '7', '8'], { answer: ['7', '7', '7', '7'] }), {
    timeoutMs: 200,
  });
  assert.deepEqual([...r.perFn.accuracy!], [1, 0, 1, 0]);
  assert.equal(r.failures.accuracy, 0);
  const partial = r.errors.find((e) => e.kind === 'partial');
  assert.match(partial!.message, /1 of 4 comparisons unfinished at the time limit scored 0/);
});
