/**
 * The group family through train() (rl/algorithms/group.ts), where a unit test of the pieces
 * could not see a wiring mistake: μ = num_iterations really runs μ optimizer updates per batch;
 * GPG's β_th resampling reaches the threshold, is counted in gpg/resample_rounds and its α reaches
 * the loss; AGE divides the loss by inverse_alpha; DAPO's dynamic sampling filters on its metric.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { filterMetric } from '../../src/rl/algorithms/group.ts';
import { ConfigError } from '../../src/errors.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import type { RewardInput } from '../../src/rewards/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpg-algos-'));
after(() => rmSync(dir, { recursive: true, force: true }));
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
  { seed: 2, charVocab: true },
);
// answers 0..63: the reward below gives identical rewards to every completion of 3 prompts in 4
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 64 }, (_, i) => JSON.stringify({ prompt: `${i}`, answer: String(i) })).join('\n') + '\n',
);

/** Length parity for answers divisible by 4 (groups usually disagree), 0 for the rest (invalid groups). */
const sparse = ({ completions, answer }: RewardInput) =>
  completions.map((c, i) => (Number(answer[i]) % 4 === 0 ? c.length % 2 : 0));
const parity = ({ completions }: RewardInput) => completions.map((c) => c.length % 2);
/** Length parity except for answers divisible by 4 (those groups are invalid): most groups carry signal. */
const mostly = ({ completions, answer }: RewardInput) =>
  completions.map((c, i) => (Number(answer[i]) % 4 === 0 ? 0 : c.length % 2));

const base = (name: string, over: Record<string, unknown>) => ({
  model_name_or_path: join(dir, 'model'),
  dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
  output_dir: join(dir, name),
  num_generations: 4,
  per_device_train_batch_size: 16,
  max_prompt_length: 8,
  max_completion_length: 6,
  max_steps: 1,
  save_steps: 0,
  seed: 3,
  learning_rate: 1e-2,
  lr_scheduler_type: 'constant',
  log_completions: false,
  ...over,
});
const quiet = { log: () => {} };

describe('num_iterations (μ)', () => {
  test('μ = 2 runs two optimizer updates on the same batch; μ = 1 one', async () => {
    const one = await train(base('mu1', { loss_type: 'grpo', num_iterations: 1 }), { rewardFns: { parity }, ...quiet });
    const two = await train(base('mu2', { loss_type: 'grpo', num_iterations: 2 }), { rewardFns: { parity }, ...quiet });
    // same samples (same rewards), but two updates: the optimizer state says so and the weights differ
    assert.equal(one.metrics[0]!.reward, two.metrics[0]!.reward);
    const state = (r: { runDir: string }) =>
      JSON.parse(readFileSync(join(r.runDir, 'checkpoint-1', 'trainer_state.json'), 'utf8')) as {
        optimizerStep: number;
      };
    assert.equal(state(one).optimizerStep, 1);
    assert.equal(state(two).optimizerStep, 2);
    const a = one.model.toHost();
    const b = two.model.toHost();
    let differ = 0;
    for (const [name, t] of a) if (t.data.some((x, i) => x !== b.get(name)!.data[i])) differ++;
    assert.ok(differ > 0, 'a second update on the batch must change the weights');
    // the second pass sees ratios ≠ 1, so the region-clip metric is logged
    assert.ok(Number.isFinite(two.metrics[0]!['clip_ratio/region_mean']));
    one.model.dispose();
    two.model.dispose();
  });
});

describe('GPG β_th and AGE through train()', () => {
  test('resampling raises the valid fraction to min_inverse_alpha and its α reaches the metrics', async () => {
    const lines: string[] = [];
    const r = await train(base('beta-th', { loss_type: 'gpg', min_inverse_alpha: 0.5, max_resample_rounds: 20 }), {
      rewardFns: { sparse },
      log: (l) => lines.push(l),
    });
    const m = r.metrics[0]!;
    const groups = 16 / 4;
    assert.ok(
      m['gpg/resample_rounds']! >= 1,
      `resample_rounds ${m['gpg/resample_rounds']} (a quarter of the prompts carry signal)`,
    );
    assert.ok(m['gpg/inverse_alpha']! >= 0.5, `inverse_alpha ${m['gpg/inverse_alpha']}`);
    assert.equal(m['gpg/inverse_alpha'], Math.min(1, m['gpg/valid_groups']! / groups));
    // more completions were generated than one batch holds
    assert.ok(r.generatedCompletions > 16, `generated ${r.generatedCompletions}`);
    r.model.dispose();
  });

  test('AGE divides the loss by inverse_alpha (same batch with adjust_gd on and off)', async () => {
    const on = await train(
      base('age-on', { loss_type: 'gpg', adjust_gd: true, min_inverse_alpha: null, per_device_train_batch_size: 32 }),
      {
        rewardFns: { mostly },
        ...quiet,
      },
    );
    const off = await train(base('age-off', { loss_type: 'gpg', adjust_gd: false, per_device_train_batch_size: 32 }), {
      rewardFns: { mostly },
      ...quiet,
    });
    const a = on.metrics[0]!;
    const b = off.metrics[0]!;
    assert.equal(a.reward, b.reward, 'same samples');
    const ia = a['gpg/inverse_alpha']!;
    assert.ok(ia > 0 && ia < 1, `inverse_alpha ${ia} (some groups invalid)`);
    assert.equal(b['gpg/inverse_alpha'], 1);
    assert.ok(
      Math.abs(a.loss! * ia - b.loss!) <= 1e-9 * Math.max(1, Math.abs(b.loss!)),
      `loss ${a.loss} × ${ia} vs ${b.loss}`,
    );
    on.model.dispose();
    off.model.dispose();
  });
});

describe('DAPO dynamic sampling metric', () => {
  test('defaults to accuracy when present, else the total reward; an unknown name is a ConfigError', () => {
    const cfg = validateConfig(base('x', { loss_type: 'dapo' }), 'test', { checkModel: false });
    assert.equal(filterMetric(cfg, ['accuracy', 'format']), 'accuracy');
    assert.equal(filterMetric(cfg, ['len']), 'reward');
    assert.equal(filterMetric({ dynamic_sampling_metric: 'format' }, ['accuracy', 'format']), 'format');
    assert.throws(() => filterMetric({ dynamic_sampling_metric: 'acc' }, ['accuracy']), ConfigError);
    assert.throws(
      () =>
        validateConfig(base('y', { loss_type: 'grpo', dynamic_sampling_metric: 'accuracy' }), 'test', {
          checkModel: false,
        }),
      /dynamic_sampling_metric: applies only with dynamic_sampling: true/,
    );
  });

  test('groups are kept by the metric, not by the total: a constant metric drops every group', async () => {
    // `flat` is constant within every group; the total (flat + parity) still varies
    const flat = ({ completions }: RewardInput) => completions.map(() => 1);
    const r = await train(
      base('dapo-metric', { loss_type: 'dapo', dynamic_sampling_metric: 'flat', max_resample_rounds: 2 }),
      { rewardFns: { flat, parity }, ...quiet },
    );
    assert.equal(r.metrics[0]!['gpg/skipped_steps'], 1, 'no group varies in `flat`: the step is skipped');
    const t = await train(
      base('dapo-total', { loss_type: 'dapo', dynamic_sampling_metric: 'reward', max_resample_rounds: 2 }),
      {
        rewardFns: { flat, parity },
        ...quiet,
      },
    );
    assert.equal(t.metrics[0]!['gpg/skipped_steps'], 0);
    r.model.dispose();
    t.model.dispose();
  });
});
