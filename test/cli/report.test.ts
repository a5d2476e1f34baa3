/**
 * `gpg-rl report RUN_DIR` rebuilds report.html (eval curves, axis names, distinct tick labels, the
 * completions table with gold answers and each reward function's score); `gpg-rl --version`;
 * usage errors exit 2, other errors 1.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { tickLabels, smooth } from '../../src/rl/report.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
const dir = mkdtempSync(join(tmpdir(), 'gpg-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('tick labels never repeat; smoothing is the debiased EMA', () => {
  assert.deepEqual(tickLabels([1.05e-4, 1.1e-4, 1.15e-4]), ['1.05e-4', '1.10e-4', '1.15e-4']);
  assert.deepEqual(tickLabels([0, 0.5, 1]), ['0', '0.5', '1']);
  const s = smooth(
    [
      [1, 1],
      [2, 3],
    ],
    0.5,
  );
  assert.equal(s[0]![1], 1);
  assert.equal(s[1]![1], (0.25 + 1.5) / 0.75);
});

test('gpg-rl report RUN_DIR writes report.html with eval curves and the completions table', () => {
  const run = join(dir, 'run');
  mkdirSync(run);
  const rows = Array.from({ length: 12 }, (_, i) => ({
    step: i + 1,
    loss: 1 / (i + 1),
    reward: i / 12,
    learning_rate: 1.1e-4 + i * 1e-7,
    'rewards/acc/mean': i / 12,
  }));
  writeFileSync(join(run, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(
    join(run, 'eval.jsonl'),
    [4, 8]
      .map((s) => JSON.stringify({ step: s, benchmarks: { math500: { pass1: s / 100 } }, average: { pass1: s / 100 } }))
      .join('\n') + '\n',
  );
  writeFileSync(
    join(run, 'completions.jsonl'),
    JSON.stringify({
      step: 12,
      prompt: '2+2',
      completion: 'it is <4>',
      answer: '4',
      rewards: { acc: 1 },
      reward: 1,
      advantage: 0.5,
      finished: true,
    }) + '\n',
  );
  const r = cli('report', run);
  assert.equal(r.status, 0, r.stderr);
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  assert.match(html, /eval pass@1 \(eval_steps\)/);
  assert.match(html, /rotate\(-90\)" text-anchor="middle">learning_rate</); // y-axis name
  assert.match(html, /loss \(smoothed 0\.6\)/);
  assert.match(html, /<th>gold answer<\/th><th>acc<\/th><th>reward<\/th><th>advantage<\/th>/);
  assert.match(html, /it is &lt;4&gt;/);
  // the learning-rate axis: every label distinct
  const lrSvg = html
    .split('<svg')
    .find((s) => s.includes('>learning_rate</text></svg>') || s.includes('font-weight="bold">learning_rate<'))!;
  const labels = [...lrSvg.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]);
  assert.ok(labels.length >= 3);
  assert.equal(new Set(labels).size, labels.length, labels.join(', '));
});

test('--version, and exit 2 for usage errors vs 1 for other errors', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const v = cli('--version');
  assert.equal(v.status, 0);
  assert.equal(v.stdout.trim(), `gpg-rl ${pkg.version}`);
  assert.equal(cli('report').status, 2);
  assert.equal(cli('no-such-command').status, 2);
  assert.equal(cli('report', join(dir, 'missing')).status, 1); // an argument that names nothing: not a malformed command line
  assert.equal(cli('train', '--no-such-flag').status, 2);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'model_name_or_path: builtin:tiny\ndataset: { path: builtin:arithmetic }\nnum_generations: 1\n');
  const c = cli('train', bad, '--dry-run');
  assert.equal(c.status, 1, c.stderr);
  assert.match(c.stderr, /num_generations: must be ≥ 2/);
});
