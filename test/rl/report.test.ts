/** report.html: self-contained, plots present, atomic; svgLinePlot on edge inputs. */
import { algorithmFor } from '../../src/rl/algorithms/index.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsWriter, metricKeys } from '../../src/rl/metrics.ts';
import { escapeHtml, niceTicks, svgLinePlot, writeReport } from '../../src/rl/report.ts';

test('writeReport: self-contained HTML with the curves, config and completions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-report-'));
  const keys = metricKeys({
    rewardFns: ['accuracy', 'format'],
    algorithmKeys: algorithmFor('gpg').metricKeys({ loss_type: 'gpg', beta: 0, num_iterations: 1 }),
  });
  const w = new MetricsWriter(join(dir, 'metrics.jsonl'), keys);
  for (let s = 1; s <= 5; s++)
    w.write(Object.fromEntries(keys.map((k) => [k, k === 'step' ? s : Math.sin(s + k.length)])));
  w.close();
  writeFileSync(
    join(dir, 'completions.jsonl'),
    JSON.stringify({
      step: 5,
      prompt: 'What is 2+2? <b>',
      completion: '<think>4</think> 4',
      reward: 1,
      advantage: 0.5,
    }) + '\n',
  );
  const path = writeReport(dir, { config: { loss_type: 'gpg', dataset: { path: 'x.jsonl' } } });
  assert.equal(path, join(dir, 'report.html'));
  const html = readFileSync(path, 'utf8');
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.doesNotMatch(
    html,
    /<script[^>]*\ssrc=|<link|@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
    'no external resources (the one inline script, the completions search, loads nothing)',
  );
  for (const t of [
    'reward',
    'reward_std',
    'loss',
    'grad_norm',
    'learning_rate',
    'completions/mean_length',
    'entropy',
    'gpg/inverse_alpha',
    'frac_reward_zero_std',
    'tokens_per_s/training',
    'rewards per function (mean)',
  ]) {
    assert.ok(html.includes(`font-weight="bold">${escapeHtml(t)}</text>`), `plot ${t}`);
  }
  assert.ok(html.includes('<td>dataset.path</td>'));
  assert.ok(html.includes('What is 2+2? &lt;b&gt;'), 'completions are escaped');
  assert.deepEqual(readdirSync(dir).sort(), ['completions.jsonl', 'metrics.jsonl', 'report.html'], 'no temp file left');
});

test('writeReport on an empty run folder still writes a valid page', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-report-'));
  const html = readFileSync(writeReport(dir), 'utf8');
  assert.match(html, /no metrics logged yet/);
});

test('svgLinePlot: several series, a gap, a constant series, no data', () => {
  const svg = svgLinePlot(
    [
      {
        name: 'gpg',
        points: [
          [1, 0.1],
          [2, NaN],
          [3, 0.3],
          [4, 0.4],
        ],
      },
      {
        name: 'grpo',
        points: [
          [1, 0.2],
          [4, 0.2],
        ],
      },
    ],
    { title: 'reward' },
  );
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2, 'gpg: a lone point then a 2-point line; grpo: one line');
  assert.equal((svg.match(/<circle/g) ?? []).length, 1);
  assert.ok(svg.includes('>gpg</text>') && svg.includes('>grpo</text>'), 'legend');
  assert.ok(!svg.includes('NaN'));
  // long names (a metric and its smoothed twin) stay inside the figure: one per row when two don't fit
  const names = ['completions/mean_length (raw)', 'completions/mean_length (smoothed 0.6)'];
  const wide = svgLinePlot(
    names.map((name) => ({
      name,
      points: [
        [1, 1],
        [2, 2],
      ] as [number, number][],
    })),
    { title: 't', width: 270 },
  );
  const width = Number(/<svg[^>]* width="(\d+)"/.exec(wide)![1]);
  for (const name of names) {
    const x = Number(
      new RegExp(`<text x="([\\d.]+)" y="[\\d.]+">${name.replace(/[()/.]/g, '\\$&')}</text>`).exec(wide)![1],
    );
    assert.ok(x + name.length * 6.2 <= width, `${name} ends at ${x + name.length * 6.2} > ${width}`);
  }
  assert.match(
    svgLinePlot([
      {
        name: 'c',
        points: [
          [1, 5],
          [2, 5],
        ],
      },
    ]),
    /<polyline/,
  );
  assert.match(svgLinePlot([]), /no data/);
});

test('niceTicks', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  // a smoothed constant differs from itself by rounding only: one tick, never a runaway loop
  assert.deepEqual(niceTicks(1e-3, 1e-3 * (1 + 2 ** -52)), [1e-3]);
  assert.deepEqual(niceTicks(-0.05, 0.12), [-0.05, 0, 0.05, 0.1]);
  assert.deepEqual(niceTicks(3, 3), [3]);
});
