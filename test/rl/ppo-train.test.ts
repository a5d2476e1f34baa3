/**
 * `train()` with loss_type ppo on a tiny model (rl/algorithms/ppo.ts, rl/critic.ts): a few steps
 * change every policy and critic parameter and log TRL PPO's metric names; the checkpoint holds
 * the critic as an HF …ForTokenClassification folder with its AdamW state, and the run ends with
 * <output_dir>/value_model; a run resumed from a checkpoint equals an uninterrupted one bit for
 * bit (policy, critic, metrics); PPO fields under another loss_type are config errors.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { ValueModel } from '../../src/model/value.ts';
import { loadCheckpoint } from '../../src/rl/checkpoint.ts';
import { ConfigError } from '../../src/errors.ts';
import type { MetricsRow } from '../../src/rl/metrics.ts';
import { algorithmFor } from '../../src/rl/algorithms/index.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-ppo-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, answer: String(2 * i) })).join('\n') +
    '\n',
);

/** Scores completion length mod 3, so completions disagree. */
const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 3 === 0 ? 1 : 0));

function base(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_name_or_path: join(dir, 'model'),
    dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
    output_dir: join(dir, name),
    loss_type: 'ppo',
    num_generations: 2,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
    num_mini_batches: 2,
    num_ppo_epochs: 2,
    kl_coef: 0.1,
    kl_estimator: 'k3',
    max_prompt_length: 16,
    max_completion_length: 6,
    max_steps: 3,
    save_steps: 0,
    seed: 5,
    learning_rate: 1e-3,
    lr_scheduler_type: 'constant', // a run of 2 steps then 4 has the schedule of a 4-step run
    ...over,
  };
}

const PPO_KEYS = [
  'objective/kl',
  'objective/non_score_reward',
  'objective/rlhf_reward',
  'objective/scores',
  'policy/approxkl_avg',
  'policy/clipfrac_avg',
  'loss/policy_avg',
  'loss/value_avg',
  'val/clipfrac_avg',
  'val/ratio',
  'ppo/value_mean',
  'ppo/returns_mean',
  'ppo/explained_variance',
  'ppo/value_grad_norm',
];

describe('train() with loss_type ppo', () => {
  test('every policy and critic parameter changes; TRL PPO metric names; the critic is saved in HF layout', async () => {
    const cfg = base('run');
    const res = await train(cfg, { rewardFns: { len }, log: () => {} });
    assert.equal(res.steps, 3);
    for (const row of res.metrics) {
      for (const k of PPO_KEYS) assert.ok(Number.isFinite(row[k]), `step ${row.step}: ${k} = ${row[k]}`);
      assert.ok(!('gpg/inverse_alpha' in row), 'no group-family columns');
      // 2 epochs × 2 mini-batches: ratios differ from 1 after the first update
      assert.ok(row['val/ratio'] !== 1, `step ${row.step}: val/ratio ${row['val/ratio']}`);
      assert.ok(row['objective/kl']! >= 0, 'k3 is non-negative');
    }
    assert.ok(
      res.metrics.some((r) => r['objective/kl']! > 0),
      'the policy moved away from the reference',
    );
    const header = readFileSync(join(res.runDir, 'metrics.jsonl'), 'utf8').split('\n')[0]!;
    for (const k of PPO_KEYS) assert.ok(header.includes(`"${k}"`), `metrics.jsonl has ${k}`);
    const start = CausalLM.load(join(dir, 'model'));
    for (const [name, p] of res.model.params) {
      const a = p.toFloat32(),
        b = start.params.get(name)!.toFloat32();
      assert.ok(
        a.some((x, i) => x !== b[i]),
        `policy ${name} did not change`,
      );
    }
    const finalValue = join(res.runDir, 'value_model');
    const cfgJson = JSON.parse(readFileSync(join(finalValue, 'config.json'), 'utf8'));
    assert.deepEqual(cfgJson.architectures, ['Qwen2ForTokenClassification']);
    assert.equal(cfgJson.num_labels, 1);
    assert.ok(!existsSync(join(finalValue, 'optimizer.safetensors')), 'the final value model is weights only');
    const critic = ValueModel.load(finalValue);
    const fresh = ValueModel.fromPolicy(start, 5);
    const trained = new Map(critic.trainableParameters());
    for (const [name, p] of fresh.trainableParameters()) {
      const a = trained.get(name)!.toFloat32(),
        b = p.toFloat32();
      assert.ok(
        a.some((x, i) => x !== b[i]),
        `critic ${name} did not change`,
      );
    }
    critic.dispose();
    fresh.dispose();
    start.dispose();
    // the last checkpoint covers the critic's files with its checksums
    const ck = join(res.runDir, 'checkpoint-3');
    loadCheckpoint(ck);
    const state = JSON.parse(readFileSync(join(ck, 'trainer_state.json'), 'utf8'));
    for (const f of ['value_model/model.safetensors', 'value_model/optimizer.safetensors', 'value_model/config.json'])
      assert.ok(f in state.files, `trainer_state.json checksums ${f}`);
  });

  test('a resumed run equals an uninterrupted one (policy, critic, metrics)', async () => {
    const full = await train(base('full', { max_steps: 4 }), { rewardFns: { len }, log: () => {} });
    await train(base('part', { max_steps: 2 }), { rewardFns: { len }, log: () => {} });
    const resumed = await train(base('part', { max_steps: 4 }), { rewardFns: { len }, log: () => {}, resume: true });
    const strip = (rows: MetricsRow[]) =>
      rows.map((r) =>
        Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('tokens_per_s') && k !== 'time_s')),
      );
    const rowsOf = (d: string) =>
      readFileSync(join(d, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as MetricsRow);
    assert.deepEqual(strip(rowsOf(resumed.runDir)), strip(rowsOf(full.runDir)));
    for (const sub of ['model', 'value_model'])
      assert.ok(
        readFileSync(join(resumed.runDir, sub, 'model.safetensors')).equals(
          readFileSync(join(full.runDir, sub, 'model.safetensors')),
        ),
        `${sub}/model.safetensors differs between the resumed and the uninterrupted run`,
      );
  });

  test('updates: num_ppo_epochs passes, each covering every micro-batch once in num_mini_batches runs, reproducibly', () => {
    const cfg = validateConfig(
      base('u', { gradient_accumulation_steps: 4, num_mini_batches: 2, num_ppo_epochs: 3 }),
      'r',
    );
    const algo = algorithmFor('ppo');
    const plan = algo.updates!(cfg, 4, 7);
    assert.equal(plan.length, algo.iterations(cfg));
    assert.equal(plan.length, 6);
    for (let e = 0; e < 3; e++) {
      const pass = plan.slice(2 * e, 2 * e + 2);
      assert.deepEqual(
        pass.map((u) => u.length),
        [2, 2],
      );
      assert.deepEqual(pass.flat().sort(), [0, 1, 2, 3], `epoch ${e} covers every micro-batch once`);
    }
    assert.deepEqual(algo.updates!(cfg, 4, 7), plan, 'the same step shuffles the same way (resume)');
    const steps = Array.from({ length: 8 }, (_, st) => JSON.stringify(algo.updates!(cfg, 4, st)));
    assert.ok(new Set(steps).size > 1, 'the shuffle differs between steps');
  });

  test('PPO fields are config errors under another loss_type; bad combinations name the field', () => {
    const issue = (over: Record<string, unknown>) => {
      try {
        validateConfig(base('x', over), 'recipe.yaml');
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.message;
      }
      return '';
    };
    assert.match(issue({ loss_type: 'grpo', kl_coef: 0.1 }), /kl_coef: applies only to loss_type ppo/);
    assert.match(issue({ beta: 0.04 }), /beta: must be 0 for loss_type ppo .*kl_coef/);
    assert.match(issue({ num_mini_batches: 3 }), /num_mini_batches: must divide gradient_accumulation_steps/);
    assert.match(issue({ value_model_path: join(dir, 'nowhere') }), /value_model_path: no config\.json/);
    assert.match(issue({ kl_estimator: 'k2' }), /kl_estimator/);
  });
});
