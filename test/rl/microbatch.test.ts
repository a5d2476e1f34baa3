/**
 * Training-memory knobs of the trainer: `max_tokens_per_microbatch` (micro-batches by padded
 * B·T budget, planMicroBatches) gives the update of the un-split step batch for gpg and for
 * dapo's token-level normalisation (DESIGN §5 counts the normaliser over the whole step), and
 * `gradient_checkpointing` gives bitwise the same update; the planner's contract and the config
 * check of the budget.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { planMicroBatches } from '../../src/train/batch.ts';
import { ConfigError, InvalidArgumentError } from '../../src/errors.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-micro-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i * 37}+${i}`, answer: String(38 * i) })).join(
    '\n',
  ) + '\n',
);

/** Scores completion length mod 3, so random completions of a group disagree; records the lengths. */
const lengths: number[] = [];
const len = ({ completions }: { completions: string[] }) => {
  lengths.push(...completions.map((c) => c.length));
  return completions.map((c) => (c.length % 3 === 0 ? 1 : 0));
};

function cfg(name: string, over: Record<string, unknown>): Record<string, unknown> {
  return {
    model_name_or_path: join(dir, 'model'),
    dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
    output_dir: join(dir, name),
    num_generations: 4,
    per_device_train_batch_size: 16,
    max_prompt_length: 16,
    max_completion_length: 12,
    max_steps: 1,
    save_steps: 0,
    seed: 5,
    temperature: 1.0,
    // adam_epsilon 1 makes AdamW's first update ≈ lr·g (not lr·sign(g)), and no clipping, so the
    // weight change is proportional to the gradient: a per-micro-batch normaliser would show.
    learning_rate: 1e-2,
    adam_epsilon: 1,
    max_grad_norm: 0,
    weight_decay: 0,
    ...over,
  };
}

const quiet = { rewardFns: { len }, log: () => {} };

/** Weight changes of a one-step run, by parameter name. */
function updates(init: CausalLM, after: CausalLM): Map<string, { t0: Float32Array; d: Float32Array }> {
  const p = after.toHost();
  const out = new Map<string, { t0: Float32Array; d: Float32Array }>();
  for (const [name, t0] of init.toHost())
    out.set(name, { t0: t0.data, d: p.get(name)!.data.map((x, i) => x - t0.data[i]!) });
  return out;
}

describe('max_tokens_per_microbatch: the update equals the un-split one', () => {
  for (const lossType of ['gpg', 'dapo'] as const) {
    test(lossType, async () => {
      const over = { loss_type: lossType, ...(lossType === 'gpg' ? { min_inverse_alpha: 0 } : {}) };
      const init = CausalLM.load(join(dir, 'model'));
      lengths.length = 0;
      const whole = await train(cfg(`${lossType}-whole`, over), quiet);
      const completionLengths = lengths.slice();
      // 40 tokens: two or three sequences of ~20 padded tokens per micro-batch
      const split = await train(cfg(`${lossType}-split`, { ...over, max_tokens_per_microbatch: 40 }), quiet);
      const a = split.metrics[0]!;
      const b = whole.metrics[0]!;
      for (const k of ['reward', 'reward_std', 'completions/mean_length', 'completions/max_length'])
        assert.equal(a[k], b[k], `${k}: the same samples`);
      assert.ok(Number.isFinite(b.loss) && b.grad_norm! > 0, 'the step must train');
      // the split is real: the sampled lengths plan into several micro-batches, some with several rows
      const plan = planMicroBatches(
        completionLengths.map((c) => ({ prompt: 8, completion: c })),
        40,
      );
      assert.ok(plan.length > 2 && plan.some((m) => m.length > 1), `plan ${JSON.stringify(plan)}`);
      assert.ok(Math.abs(a.loss! - b.loss!) <= 1e-5 * Math.abs(b.loss!) + 1e-9, `loss ${a.loss} vs ${b.loss}`);
      assert.ok(
        Math.abs(a.grad_norm! - b.grad_norm!) <= 1e-5 * b.grad_norm!,
        `grad_norm ${a.grad_norm} vs ${b.grad_norm}`,
      );
      const ua = updates(init, split.model);
      const ub = updates(init, whole.model);
      let scale = 0;
      for (const u of ub.values()) for (const x of u.d) scale = Math.max(scale, Math.abs(x));
      let moved = 0;
      for (const [name, { t0, d: db }] of ub) {
        const da = ua.get(name)!.d;
        if (db.some((x) => x !== 0)) moved++;
        for (let i = 0; i < da.length; i++) {
          // float32 weights: each update is rounded to an ulp of the new weight
          const bound = 1e-4 * Math.abs(db[i]!) + 2 * Math.abs(t0[i]!) * 2 ** -23 + 1e-5 * scale;
          if (!(Math.abs(da[i]! - db[i]!) <= bound))
            assert.fail(`${lossType} ${name}[${i}]: update ${da[i]} (split) vs ${db[i]} (whole) differ by > ${bound}`);
        }
      }
      assert.ok(moved > 0);
      for (const m of [init, whole.model, split.model]) m.dispose();
    });
  }
});

test('gradient_checkpointing: bitwise the same update and metrics', async () => {
  const over = { loss_type: 'gpg', min_inverse_alpha: 0, per_device_train_batch_size: 8 };
  const plain = await train(cfg('ckpt-off', over), quiet);
  const ckpt = await train(cfg('ckpt-on', { ...over, gradient_checkpointing: true }), quiet);
  const strip = (r: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time_s' && !k.startsWith('tokens_per_s/')));
  assert.deepEqual(strip(ckpt.metrics[0]!), strip(plain.metrics[0]!));
  const pa = ckpt.model.toHost();
  for (const [name, t] of plain.model.toHost())
    assert.ok(
      t.data.every((x, i) => Object.is(x, pa.get(name)!.data[i])),
      `${name} differs with checkpointing`,
    );
  plain.model.dispose();
  ckpt.model.dispose();
});

describe('planMicroBatches', () => {
  const L = [
    { prompt: 5, completion: 3 },
    { prompt: 5, completion: 10 },
    { prompt: 2, completion: 1 },
    { prompt: 5, completion: 10 },
    { prompt: 4, completion: 7 },
    { prompt: 0, completion: 0 },
  ];
  test('every sequence once, padded B·T within the budget, longest first', () => {
    const plan = planMicroBatches(L, 30);
    assert.deepEqual(
      plan.flat().sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
    );
    for (const m of plan) {
      const T = Math.max(1, ...m.map((i) => L[i]!.prompt)) + Math.max(1, ...m.map((i) => L[i]!.completion));
      assert.ok(m.length * T <= 30, `micro-batch ${m} is ${m.length}×${T}`);
    }
    assert.deepEqual(plan, [
      [1, 3],
      [4, 0],
      [2, 5],
    ]);
  });
  test('a budget of one huge micro-batch keeps the whole batch together', () => {
    assert.deepEqual(planMicroBatches(L, 1000), [[1, 3, 4, 0, 2, 5]]);
  });
  test('a sequence longer than the budget is a clear error', () => {
    assert.throws(
      () => planMicroBatches(L, 14),
      (e: unknown) =>
        e instanceof InvalidArgumentError && /sequence 1 alone \(5 prompt \+ 10 completion/.test(String(e)),
    );
    assert.throws(() => planMicroBatches(L, 0), InvalidArgumentError);
  });
});

test('config: a budget below max_prompt_length + max_completion_length names the field and the fix', () => {
  assert.throws(
    () => validateConfig(cfg('bad', { max_tokens_per_microbatch: 20 }), 'recipe.yaml'),
    (e: unknown) =>
      e instanceof ConfigError &&
      /max_tokens_per_microbatch: must be ≥ max_prompt_length \+ max_completion_length \(16 \+ 12 = 28\)/.test(
        (e as Error).message,
      ),
  );
  const ok = validateConfig(
    cfg('good', { max_tokens_per_microbatch: 28, gradient_checkpointing: true }),
    'recipe.yaml',
  );
  assert.equal(ok.max_tokens_per_microbatch, 28);
  assert.equal(ok.gradient_checkpointing, true);
});
