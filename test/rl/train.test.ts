/**
 * `train(config, { rewardFns })` for every loss_type (DESIGN §5): gpg, grpo with beta > 0 (the
 * frozen reference model path), grpo with num_iterations 2 (old log-probs kept, ratios ≠ 1),
 * dapo with dynamic sampling, dr_grpo — a few steps each on a tiny model with a reward passed in
 * code, checking the metrics rows (exact DESIGN §8 keys, finite where a step trained). Also: the
 * KL reference of a resumed built-in model is the initial policy, not the checkpoint; and
 * gradient accumulation of 2 micro-batches equals one batch of twice the size.
 */
import type { LossType } from '../../src/rl/config.ts';
import { algorithmFor } from '../../src/rl/algorithms/index.ts';
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { metricKeys, type MetricsRow } from '../../src/rl/metrics.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { checkTensor } from '../helpers.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, answer: String(2 * i) })).join('\n') +
    '\n',
);

/** Scores completion length mod 3, so random completions of a group disagree. */
const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 3 === 0 ? 1 : 0));

function base(name: string, over: Record<string, unknown>): Record<string, unknown> {
  return {
    model_name_or_path: join(dir, 'model'),
    dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
    output_dir: join(dir, name),
    num_generations: 4,
    per_device_train_batch_size: 8,
    max_prompt_length: 16,
    max_completion_length: 6,
    max_steps: 3,
    save_steps: 0,
    seed: 5,
    learning_rate: 1e-3,
    temperature: 1.0,
    ...over,
  };
}

const finite = (row: MetricsRow, k: string) => assert.ok(Number.isFinite(row[k]), `step ${row.step}: ${k} = ${row[k]}`);

describe('train() for every loss_type', () => {
  const cases: Array<{ name: string; over: Record<string, unknown> }> = [
    { name: 'gpg', over: { loss_type: 'gpg' } },
    { name: 'grpo-beta', over: { loss_type: 'grpo', beta: 0.04 } },
    { name: 'grpo-iter2', over: { loss_type: 'grpo', beta: 0.04, num_iterations: 2 } },
    { name: 'dapo', over: { loss_type: 'dapo', dynamic_sampling: true } },
    { name: 'dr_grpo', over: { loss_type: 'dr_grpo' } },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const lines: string[] = [];
      const seen: MetricsRow[] = [];
      const cfg = base(c.name, c.over);
      const res = await train(cfg, { rewardFns: { len }, log: (l) => lines.push(l), onStep: (r) => seen.push(r) });
      assert.equal(res.steps, 3);
      assert.equal(res.metrics.length, 3);
      assert.deepEqual(seen, res.metrics);
      const lossType = c.over.loss_type as LossType;
      const beta = (c.over.beta as number | undefined) ?? 0;
      const numIterations = (c.over.num_iterations as number | undefined) ?? 1;
      const keys = metricKeys({
        rewardFns: ['len'],
        algorithmKeys: algorithmFor(lossType).metricKeys({
          loss_type: lossType,
          beta: beta,
          num_iterations: numIterations,
        }),
      });
      let trained = 0;
      for (const row of res.metrics) {
        assert.deepEqual(Object.keys(row).sort(), [...keys].sort(), `step ${row.step} keys`);
        for (const k of [
          'reward',
          'reward_std',
          'rewards/len/mean',
          'frac_reward_zero_std',
          'completions/mean_length',
          'completions/clipped_ratio',
          'gpg/valid_groups',
          'gpg/skipped_steps',
          'gpg/resample_rounds',
          'time_s',
        ])
          finite(row, k);
        // the lr schedule runs over every optimizer update (num_iterations per step): never 0 before the end
        assert.ok(row.learning_rate! > 0, `step ${row.step}: learning_rate ${row.learning_rate}`);
        if (row['gpg/inverse_alpha'] === 0) continue; // skipped step (no valid group)
        trained++;
        for (const k of ['loss', 'grad_norm', 'entropy', 'tokens_per_s/training']) finite(row, k);
        if (beta > 0) {
          finite(row, 'kl');
          assert.ok(row.kl! >= 0, `k3 KL is non-negative (got ${row.kl})`);
        }
        if (lossType !== 'gpg') {
          finite(row, 'clip_ratio/region_mean');
          assert.ok(row['clip_ratio/region_mean']! >= 0 && row['clip_ratio/region_mean']! <= 1);
          assert.equal(row['gpg/inverse_alpha'], 1);
        }
        if (lossType === 'dapo')
          assert.equal(row.frac_reward_zero_std, 0, 'dynamic sampling keeps only groups with differing rewards');
      }
      assert.ok(trained > 0, 'no step trained');
      if (beta > 0) assert.ok(res.metrics.at(-1)!.kl! > 0, 'the policy moved away from the reference');
      // progress lines go to opts.log, one per step
      assert.deepEqual(lines.filter((l) => /^step \d+\/3: /.test(l)).length, 3, lines.join('\n'));
    });
  }
});

describe('the KL reference on --resume', () => {
  test('a resumed builtin:tiny run keeps the initial policy as reference (same kl as one run)', async () => {
    const cfg = (name: string, steps: number) => ({
      model_name_or_path: 'builtin:tiny',
      dataset: { path: 'builtin:arithmetic', use_chat_template: false, prompt_template: '{prompt} =' },
      output_dir: join(dir, name),
      loss_type: 'grpo',
      beta: 0.1,
      num_generations: 4,
      per_device_train_batch_size: 8,
      max_prompt_length: 32,
      max_completion_length: 4,
      max_steps: steps,
      save_steps: 1,
      seed: 7,
      learning_rate: 1e-3,
      lr_scheduler_type: 'constant',
    });
    const quiet = { rewardFns: { len }, log: () => {} };
    const whole = await train(cfg('ref-whole', 2), quiet);
    await train(cfg('ref-split', 1), quiet);
    const resumed = await train(cfg('ref-split', 2), { ...quiet, resume: true });
    assert.equal(resumed.metrics.length, 1);
    const strip = (r: MetricsRow) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time_s' && !k.startsWith('tokens_per_s/')));
    assert.ok(whole.metrics[1]!.kl! > 0);
    assert.deepEqual(strip(resumed.metrics[0]!), strip(whole.metrics[1]!));
  });
});

describe('gradient accumulation', () => {
  test('2 micro-batches of 8 equal one batch of 16 after one step (DESIGN §5 whole-batch counting)', async () => {
    // adam_epsilon 1 makes AdamW's first update ≈ lr·g (not lr·sign(g)), and no clipping, so the
    // weight change is proportional to the gradient: a per-micro-batch denominator would show.
    const cfg = (name: string, pdtbs: number, ga: number) =>
      base(name, {
        loss_type: 'gpg',
        per_device_train_batch_size: pdtbs,
        gradient_accumulation_steps: ga,
        max_steps: 1,
        learning_rate: 1e-2,
        adam_epsilon: 1,
        max_grad_norm: 0,
        weight_decay: 0,
        min_inverse_alpha: 0,
      });
    const init = CausalLM.load(join(dir, 'model'));
    const quiet = { rewardFns: { len }, log: () => {} };
    const acc = await train(cfg('ga-2x8', 8, 2), quiet);
    const one = await train(cfg('ga-1x16', 16, 1), quiet);
    const a = acc.metrics[0]!;
    const b = one.metrics[0]!;
    // same samples: identical rewards and lengths
    for (const k of ['reward', 'reward_std', 'completions/mean_length', 'gpg/valid_groups', 'gpg/inverse_alpha'])
      assert.equal(a[k], b[k], k);
    assert.ok(Number.isFinite(a.loss) && a['gpg/inverse_alpha']! > 0, 'the step must train');
    assert.ok(Math.abs(a.loss! - b.loss!) <= 1e-5 * Math.abs(b.loss!) + 1e-9, `loss ${a.loss} vs ${b.loss}`);
    assert.ok(
      Math.abs(a.grad_norm! - b.grad_norm!) <= 1e-5 * b.grad_norm!,
      `grad_norm ${a.grad_norm} vs ${b.grad_norm}`,
    );
    const pa = acc.model.toHost();
    const pb = one.model.toHost();
    let moved = 0;
    const updates = [...init.toHost()].map(([name, t0]) => ({
      name,
      t0,
      da: pa.get(name)!.data.map((x, i) => x - t0.data[i]!),
      db: pb.get(name)!.data.map((x, i) => x - t0.data[i]!),
    }));
    // Scale of the whole update: gradients that are analytically zero (a key bias shifts every
    // score of a query equally, so softmax ignores it) carry only rounding noise at ~1e-6 of it.
    let scale = 0;
    for (const u of updates) for (const x of u.db) scale = Math.max(scale, Math.abs(x));
    for (const { name, t0, da, db } of updates) {
      if (db.some((x) => x !== 0)) moved++;
      // Updates are differences of float32 weights, each rounded to an ulp of the new weight.
      for (let i = 0; i < da.length; i++) {
        const ulp = Math.abs(t0.data[i]!) * 2 ** -23;
        const bound = 1e-4 * Math.abs(db[i]!) + 2 * ulp + 1e-5 * scale;
        if (!(Math.abs(da[i]! - db[i]!) <= bound))
          assert.fail(
            `${name}[${i}]: update ${da[i]} (2×8) vs ${db[i]} (1×16) differ by more than ${bound.toExponential(2)}`,
          );
      }
    }
    assert.ok(moved > 0);
    for (const m of [init, acc.model, one.model]) m.dispose();
  });
});

test('eval_steps: benchmark subsets evaluated during training land in eval.jsonl', async () => {
  const lines: string[] = [];
  const cfg = base('evalsteps', {
    loss_type: 'gpg',
    max_steps: 2,
    eval_steps: 2,
    eval_benchmarks: ['amc23'],
    eval_limit: 1,
    max_completion_length: 4,
  });
  const res = await train(cfg, { rewardFns: { len }, log: (l) => lines.push(l) });
  const { readFileSync } = await import('node:fs');
  const rows = readFileSync(join(res.runDir, 'eval.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; benchmarks: Record<string, { pass1: number }> });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.step, 2);
  assert.ok(rows[0]!.benchmarks.amc23!.pass1 >= 0);
  assert.ok(
    lines.some((l) => /eval pass@1 amc23/.test(l)),
    lines.join('\n'),
  );
});
