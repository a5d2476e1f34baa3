/**
 * Learning happens (issue 6's RL test at toy size): after a few GPG steps with a fixed seed every
 * trained parameter changed (TRL tests/test_grpo_trainer.py: `assert not torch.equal(param,
 * new_param)`), and one GPG optimizer step on a batch raises the summed log-probability of its
 * positive-advantage completions and lowers that of its negative-advantage ones.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward, noGrad } from '../../src/tensor/tape.ts';
import { AdamW } from '../../src/tensor/optim.ts';
import { generate } from '../../src/generate/generate.ts';
import { Rng } from '../../src/data/rng.ts';
import { train } from '../../src/rl/trainer.ts';
import { advantages } from '../../src/rl/advantages.ts';
import { computeLoss } from '../../src/rl/algorithms/group-loss.ts';
import { packBatch, type PackedBatch } from '../../src/train/batch.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: false,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-learn-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(join(dir, 'model'), SHAPE, { seed: 4, charVocab: true });
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}-${i % 5}`, answer: String(i - (i % 5)) })).join(
    '\n',
  ) + '\n',
);

/** Length-parity reward: random completions of one prompt disagree, so every step has a signal. */
const lenReward = (c: string) => (c.length % 3 === 0 ? 1 : 0);

describe('GPG learns', () => {
  test('after a few GPG steps every parameter changed', async () => {
    const init = CausalLM.load(join(dir, 'model'));
    const res = await train(
      {
        model_name_or_path: join(dir, 'model'),
        dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
        output_dir: join(dir, 'run'),
        loss_type: 'gpg',
        num_generations: 4,
        per_device_train_batch_size: 16,
        max_prompt_length: 16,
        max_completion_length: 6,
        max_steps: 3,
        save_steps: 0,
        seed: 9,
        learning_rate: 1e-3,
        lr_scheduler_type: 'constant',
      },
      { rewardFns: { len: ({ completions }) => completions.map(lenReward) }, log: () => {} },
    );
    assert.ok(res.metrics.filter((r) => Number.isFinite(r.loss)).length >= 2, 'fewer than 2 steps trained');
    const trained = res.model.toHost();
    for (const [name, t0] of init.toHost()) {
      const t1 = trained.get(name)!;
      assert.ok(!Buffer.from(t1.data.buffer).equals(Buffer.from(t0.data.buffer)), `Parameter ${name} has not changed.`);
    }
    init.dispose();
    res.model.dispose();
  });

  test('one GPG step raises the log-probs of positive-advantage completions and lowers negative ones', () => {
    const model = CausalLM.load(join(dir, 'model'));
    const tok = TextTokenizer.fromDir(join(dir, 'model'));
    const G = 8;
    const prompts = ['3+4=', '12-5=', '7*6=', '9/3='].map((p) => tok.encode(p, { addSpecialTokens: false }));
    const eos = model.cfg.eosTokenIds;
    const pad = model.cfg.padTokenId ?? eos[0]!;
    const flat = prompts.flatMap((p) => Array.from({ length: G }, () => p));
    const gen = generate(model, flat, {
      maxNewTokens: 8,
      temperature: 1,
      eosTokenIds: eos,
      rng: new Rng(21, 1),
    });
    const rewards = Float64Array.from(gen.tokens.map((t) => lenReward(tok.decode(t, { skipSpecialTokens: true }))));
    const adv = advantages(rewards, G, { scaleRewards: false });
    assert.ok(adv.some((a) => a > 0) && adv.some((a) => a < 0), 'the batch needs both signs of advantage');
    const packed = packBatch(flat, gen.tokens, pad);
    const { B, T } = packed;

    /** Σ_t log p(completion token t) per sequence, [B]. */
    const seqLogps = (p: PackedBatch): Float64Array =>
      noGrad(() =>
        tidy(() => {
          const { logps, index } = model.tokenLogps(p, { select: p.m });
          const v = logps.toFloat32();
          const out = new Float64Array(B);
          for (let i = 0; i < index.length; i++) out[Math.floor(index[i]! / (T - 1))] += v[i]!;
          return out;
        }),
      );
    const before = seqLogps(packed);

    // one GPG optimizer step on exactly this batch (the loop's step 4–5, DESIGN §5)
    const opt = new AdamW(
      model.parameters().map((param) => ({ param })),
      { lr: 1e-3 },
    );
    model.setRequiresGrad(true);
    const loss = tidy(() => {
      const { logps, index } = model.tokenLogps(packed, { select: packed.m });
      const v = logps.toFloat32();
      const lp = new Float64Array(B * (T - 1));
      for (let i = 0; i < index.length; i++) lp[index[i]!] = v[i]!;
      const out = computeLoss({ lossType: 'gpg', lp, mask: packed.m, advantages: adv, B, Tm1: T - 1, inverseAlpha: 1 });
      const seed = new Float32Array(index.length);
      for (let i = 0; i < index.length; i++) seed[i] = out.dlp[index[i]!]!;
      backward(logps, Tensor.fromArray(seed, [index.length]));
      return out.loss;
    });
    assert.ok(Number.isFinite(loss));
    opt.step(1e-3);
    opt.zeroGrad();
    model.setRequiresGrad(false);
    const afterLp = seqLogps(packed);

    const meanDelta = (sign: 1 | -1) => {
      let s = 0;
      let n = 0;
      for (let b = 0; b < B; b++)
        if (Math.sign(adv[b]!) === sign) {
          s += afterLp[b]! - before[b]!;
          n++;
        }
      return s / n;
    };
    const up = meanDelta(1);
    const down = meanDelta(-1);
    assert.ok(up > 0, `positive-advantage completions: mean Δ log p = ${up} (expected > 0)`);
    assert.ok(down < 0, `negative-advantage completions: mean Δ log p = ${down} (expected < 0)`);
    opt.dispose?.();
    model.dispose();
  });
});
