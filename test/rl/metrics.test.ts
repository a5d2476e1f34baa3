/** metrics.jsonl keys (DESIGN §8), the writer/reader, progress line and bar; report.html. */
import { algorithmFor } from '../../src/rl/algorithms/index.ts';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  METRIC,
  MetricsWriter,
  ProgressBar,
  formatProgress,
  metricKeys,
  readMetrics,
  truncateMetrics,
} from '../../src/rl/metrics.ts';

const FIXED = [
  'step',
  'loss',
  'grad_norm',
  'learning_rate',
  'reward',
  'reward_std',
  'frac_reward_zero_std',
  'completions/mean_length',
  'completions/min_length',
  'completions/max_length',
  'completions/clipped_ratio',
  'entropy',
  // TRL's names (trl/trainer/grpo_trainer.py) for |training − sampling log-prob| over completion tokens
  'sampling/sampling_logp_difference/mean',
  'sampling/sampling_logp_difference/max',
  // optimizer steps the sampling weights lag the policy (0 unless max_staleness 1 on rollout_servers)
  'sampling/staleness',
  'gpg/inverse_alpha',
  'gpg/valid_groups',
  'gpg/resample_rounds',
  'gpg/skipped_steps',
  'tokens_per_s/generation',
  'tokens_per_s/training',
  'time_s',
];

describe('metric keys', () => {
  test('gpg: the fixed keys plus rewards/<fn>/mean|std, no kl, no clip ratio', () => {
    const k = metricKeys({
      rewardFns: ['accuracy', 'format'],
      algorithmKeys: algorithmFor('gpg').metricKeys({ loss_type: 'gpg', beta: 0, num_iterations: 1 }),
    });
    assert.deepEqual(
      [...k].sort(),
      [...FIXED, 'rewards/accuracy/mean', 'rewards/accuracy/std', 'rewards/format/mean', 'rewards/format/std'].sort(),
    );
  });
  test('grpo with beta: kl and clip_ratio/region_mean', () => {
    const k = metricKeys({
      rewardFns: ['accuracy'],
      algorithmKeys: algorithmFor('grpo').metricKeys({ loss_type: 'grpo', beta: 0.04, num_iterations: 1 }),
    });
    assert.ok(k.includes('kl') && k.includes('clip_ratio/region_mean'));
    const d = metricKeys({
      rewardFns: ['accuracy'],
      algorithmKeys: algorithmFor('dapo').metricKeys({ loss_type: 'dapo', beta: 0, num_iterations: 1 }),
    });
    assert.ok(!d.includes('kl') && d.includes('clip_ratio/region_mean'));
  });
  test('every METRIC name is in DESIGN §8 spelling', () => {
    assert.equal(METRIC.inverseAlpha, 'gpg/inverse_alpha');
    assert.equal(METRIC.clipRatioRegionMean, 'clip_ratio/region_mean');
    assert.ok(Object.values(METRIC).every((v) => FIXED.includes(v) || v === 'kl' || v === 'clip_ratio/region_mean'));
  });
});

describe('MetricsWriter', () => {
  const keys = metricKeys({
    rewardFns: ['accuracy'],
    algorithmKeys: algorithmFor('gpg').metricKeys({ loss_type: 'gpg', beta: 0, num_iterations: 1 }),
  });
  const row = (step: number) => Object.fromEntries(keys.map((k) => [k, k === 'step' ? step : 0.5]));
  test('appends one flat JSON object per step with exactly the keys; NaN → null', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-metrics-'));
    const p = join(dir, 'metrics.jsonl');
    const w = new MetricsWriter(p, keys);
    w.write(row(1));
    w.write({ ...row(2), entropy: NaN });
    assert.throws(() => w.write({ ...row(3), extra: 1 }), /unexpected: extra/);
    const { loss: _l, ...missing } = row(3);
    assert.throws(() => w.write(missing), /missing: loss/);
    w.close();
    const lines = readFileSync(p, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!)), keys);
    assert.equal(JSON.parse(lines[1]!).entropy, null);
  });
  test('readMetrics drops a torn last line; truncateMetrics keeps steps ≤ n atomically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-metrics-'));
    const p = join(dir, 'metrics.jsonl');
    const w = new MetricsWriter(p, keys);
    for (let s = 1; s <= 4; s++) w.write(row(s));
    w.close();
    appendFileSync(p, '{"step": 5, "lo');
    assert.deepEqual(
      readMetrics(p).map((r) => r.step),
      [1, 2, 3, 4],
    );
    truncateMetrics(p, 2);
    assert.deepEqual(
      readMetrics(p).map((r) => r.step),
      [1, 2],
    );
    assert.deepEqual(readdirSync(dir), ['metrics.jsonl']);
    writeFileSync(p, '{"step":1}\nbroken\n{"step":3}\n');
    assert.throws(() => readMetrics(p), /metrics\.jsonl:2: not a JSON object/);
  });
});

describe('progress output', () => {
  const r = {
    step: 3,
    loss: 0.0123,
    reward: 0.45,
    reward_std: 0.21,
    'gpg/inverse_alpha': 0.75,
    'completions/mean_length': 123.4,
    grad_norm: 1.5,
    learning_rate: 1e-6,
    time_s: 12.3,
    'tokens_per_s/generation': 456,
    'tokens_per_s/training': 789,
    'gpg/skipped_steps': 0,
  };
  test('formatProgress is one nanoGPT-style line', () => {
    assert.equal(
      formatProgress(r, 100),
      'step 3/100: loss 0.0123, reward 0.450 ± 0.210, α⁻¹ 0.75, len 123, grad 1.500, lr 1.00e-6, 12.30 s, gen 456 tok/s, train 789 tok/s',
    );
  });
  test('ProgressBar: plain lines off a TTY, in-place redraw on a TTY', () => {
    const plain: string[] = [];
    const a = new ProgressBar(10, { write: (s: string) => plain.push(s), isTTY: false });
    a.update(1, 'one');
    a.update(2, 'two');
    a.done();
    assert.deepEqual(plain, ['one\n', 'two\n']);
    const tty: string[] = [];
    const b = new ProgressBar(10, { write: (s: string) => tty.push(s), isTTY: true, columns: 80 });
    b.update(5, 'half');
    b.log('note');
    b.update(10, 'end');
    b.done();
    assert.equal(tty[0], '\r\x1b[2K[##########..........] 5/10 half');
    assert.deepEqual(tty.slice(1, 3), ['\r\x1b[2K', 'note\n']);
    assert.equal(tty[tty.length - 1], '\n');
  });
});
