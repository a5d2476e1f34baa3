/**
 * TRPO (src/rl/algorithms/trpo.ts, cg.ts, src/rl/update.ts): conjugate gradient on a known SPD
 * system; the Gauss–Newton Fisher-vector product against an explicit Fisher built a different
 * way (Fisher identity, Σ_k p_k ∇log p_k ∇log p_kᵀ per token, one backward per vocabulary entry)
 * on tiny tied and untied models; a rejected line search leaves the weights bit for bit; an
 * accepted step's KL is ≤ δ and is the KL evaluate() measures; train() runs with trpo/* metrics,
 * every accepted step within δ, bit-exact --resume; config errors name their field.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conjugateGradient } from '../../src/rl/algorithms/cg.ts';
import { fisherRows, surrogateLoss, trpoStep } from '../../src/rl/algorithms/trpo.ts';
import { PolicyUpdate, type UpdateContext, type UpdateMicroBatch } from '../../src/rl/update.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel, writeInitModel } from '../../src/model/init.ts';
import { packBatch } from '../../src/train/batch.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { linear } from '../../src/tensor/ops/matmul.ts';
import { logSoftmaxGather } from '../../src/tensor/ops/logprobs.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { train } from '../../src/rl/trainer.ts';
import { ConfigError } from '../../src/errors.ts';
import { relErr, randn, rng } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpg-trpo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const trpoCfg = (over: Record<string, unknown> = {}) =>
  validateConfig(
    { model_name_or_path: 'builtin:tiny', dataset: { path: 'builtin:arithmetic' }, loss_type: 'trpo', ...over },
    'test',
  );

/** Direct solve of A x = b (Gaussian elimination with partial pivoting, float64). */
function solve(A: Float64Array, b: Float64Array, n: number): Float64Array {
  const M = Float64Array.from(A);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r * n + c]!) > Math.abs(M[p * n + c]!)) p = r;
    for (let k = 0; k < n; k++) [M[c * n + k], M[p * n + k]] = [M[p * n + k]!, M[c * n + k]!];
    [x[c], x[p]] = [x[p]!, x[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = M[r * n + c]! / M[c * n + c]!;
      for (let k = c; k < n; k++) M[r * n + k]! -= f * M[c * n + k]!;
      x[r]! -= f * x[c]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r]!;
    for (let k = r + 1; k < n; k++) s -= M[r * n + k]! * x[k]!;
    x[r] = s / M[r * n + r]!;
  }
  return x;
}

describe('conjugateGradient', () => {
  const n = 40;
  const r = rng(1);
  const Q = randn(n * n, r);
  // A = QᵀQ / n + 0.05 I: symmetric positive definite, condition number in the hundreds
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += Q[k * n + i]! * Q[k * n + j]!;
      A[i * n + j] = s / n + (i === j ? 0.05 : 0);
    }
  const b = randn(n, r);
  const Av = (v: Float64Array) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i]! += A[i * n + j]! * v[j]!;
    return out;
  };
  test('solves a known SPD system (n iterations reach the direct solution)', () => {
    const res = conjugateGradient(Av, b, { iters: 2 * n, damping: 0, tol: 1e-24 });
    assert.ok(relErr(res.x, solve(A, b, n)) < 1e-8, `x rel err ${relErr(res.x, solve(A, b, n))}`);
    assert.ok(relErr(res.Ax, b) < 1e-8, 'Ax = b');
  });
  test('with damping λ it solves (A + λI) x = b, and Ax is (A + λI) x', () => {
    const lam = 0.3;
    const Ad = Float64Array.from(A);
    for (let i = 0; i < n; i++) Ad[i * n + i]! += lam;
    const res = conjugateGradient(Av, b, { iters: 2 * n, damping: lam, tol: 1e-24 });
    assert.ok(relErr(res.x, solve(Ad, b, n)) < 1e-8);
    const AxRef = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) AxRef[i]! += Ad[i * n + j]! * res.x[j]!;
    assert.ok(relErr(res.Ax, AxRef) < 1e-8);
  });
  test('stops at iters products and the residual falls', () => {
    let calls = 0;
    const res = conjugateGradient(
      (v) => {
        calls++;
        return Av(v);
      },
      b,
      { iters: 5, damping: 0.1 },
    );
    assert.equal(calls, 5);
    assert.equal(res.iterations, 5);
    assert.ok(res.residual < b.reduce((s, x) => s + x * x, 0));
  });
});

/** A tiny random model with a small vocabulary, and a batch of 3 prompts with completions. */
function tiny(tied: boolean, seed: number) {
  const { cfg, tensors } = initModel(
    {
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      vocab_size: 12,
      tie_word_embeddings: tied,
      max_position_embeddings: 32,
      initializer_range: 0.3, // large weights: a peaked, far from uniform policy
    },
    { seed },
  );
  const model = CausalLM.fromHost(cfg, tensors);
  model.setRequiresGrad(true);
  const r = rng(seed + 100);
  const ids = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(r() * 11));
  const prompts = [ids(3), ids(2), ids(3)];
  const comps = [ids(3), ids(4), ids(2)];
  const pack = (rows: number[]): UpdateMicroBatch[] => [
    {
      rows,
      packed: packBatch(
        rows.map((i) => prompts[i]!),
        rows.map((i) => comps[i]!),
        0,
      ),
    },
  ];
  const micro = pack([0, 1, 2]);
  const tokens = micro[0]!.packed.m.reduce((s, x) => s + x, 0);
  return { model, micro, pack, tokens };
}

function update(
  t: ReturnType<typeof tiny>,
  temperature: number,
  advantages = [1, -0.5, -0.5],
  klChunkRows?: number,
): PolicyUpdate {
  return new PolicyUpdate({
    klChunkRows,
    model: t.model,
    micro: t.micro,
    pack: t.pack,
    advantages: Float64Array.from(advantages),
    denominators: { tokens: t.tokens, sequences: 3 },
    temperature,
    checkpoint: false,
    step: 1,
  });
}

/** Flattened .grad of the model's parameters (then cleared). */
function grads(model: CausalLM): Float64Array {
  const ps = model.parameters();
  const out = new Float64Array(ps.reduce((s, p) => s + p.size, 0));
  let off = 0;
  for (const p of ps) {
    if (p.grad) out.set(p.grad.toFloat32(), off);
    p.grad?.dispose();
    p.grad = null;
    off += p.size;
  }
  return out;
}

/** (1/N) Σ_tokens Σ_k p_k ∇log p_k (∇log p_k · v): the Fisher of the mean token KL, by the Fisher identity. */
function explicitFisherVector(t: ReturnType<typeof tiny>, temperature: number, v: Float64Array): Float64Array {
  const { model } = t;
  const { packed } = t.micro[0]!;
  const V = model.cfg.vocabSize;
  const out = new Float64Array(v.length);
  let N = 0;
  for (let j = 0; j < packed.m.length; j++) {
    if (!packed.m[j]) continue;
    N++;
    const select = new Float64Array(packed.m.length);
    select[j] = 1;
    for (let k = 0; k < V; k++) {
      const lp = tidy(() => {
        const { h } = model.selectedHidden(packed, { select });
        const l = logSoftmaxGather(
          linear(h, model.lmHeadWeight()),
          Tensor.fromArray(Int32Array.from([k]), [1], 'int32'),
          temperature,
        );
        const val = l.toFloat32()[0]!;
        backward(l, Tensor.fromArray(Float32Array.from([1]), [1]));
        return val;
      });
      const g = grads(model);
      let gv = 0;
      for (let i = 0; i < g.length; i++) gv += g[i]! * v[i]!;
      const w = Math.exp(lp) * gv;
      for (let i = 0; i < g.length; i++) out[i]! += w * g[i]!;
    }
  }
  for (let i = 0; i < out.length; i++) out[i]! /= N;
  return out;
}

describe('Fisher-vector product (Gauss–Newton, finite differences of the hidden states + exact lm_head part)', () => {
  for (const tied of [true, false]) {
    test(`equals the explicit Fisher within 1e-3 relative (${tied ? 'tied' : 'untied'} embeddings, temperature 0.8)`, (ctxT) => {
      const t = tiny(tied, tied ? 3 : 4);
      const ctx = update(t, 0.8);
      try {
        ctx.gradient(surrogateLoss);
        const Fv = ctx.fisher([0, 1, 2]);
        const r = rng(9);
        for (let trial = 0; trial < 2; trial++) {
          const v = randn(ctx.size, r);
          const ours = Fv(v);
          const ref = explicitFisherVector(t, 0.8, v);
          const e = relErr(ours, ref);
          ctxT.diagnostic(`trial ${trial}: relative error ${e.toExponential(2)}`);
          assert.ok(e < 1e-3, `trial ${trial}: relative error ${e.toExponential(3)}`);
        }
        // the product leaves θ_old in place bit for bit
        assert.deepEqual(Float64Array.from(t.model.parameters().flatMap((p) => [...p.toFloat32()])), ctx.theta0);
      } finally {
        ctx.dispose();
        t.model.dispose();
      }
    });
  }
  test('row chunks of the [rows, V] logits give the same KL and Fisher products as whole (tied and untied)', () => {
    for (const tied of [true, false]) {
      const t = tiny(tied, 6);
      const whole = update(t, 0.9);
      const chunked = update(t, 0.9, undefined, 2);
      try {
        whole.gradient(surrogateLoss);
        chunked.gradient(surrogateLoss);
        const v = randn(whole.size, rng(4));
        const a = whole.fisher([0, 1, 2])(v);
        const b = chunked.fisher([0, 1, 2])(v);
        assert.ok(relErr(b, a) < 1e-5, `Fisher product: relative error ${relErr(b, a)}`);
        const theta = whole.theta0.map((x, i) => x + 1e-3 * v[i]!);
        whole.moveTo(theta);
        const ea = whole.evaluate(surrogateLoss);
        const eb = chunked.evaluate(surrogateLoss);
        whole.restore();
        assert.ok(ea.kl > 0 && Math.abs(eb.kl - ea.kl) <= 1e-6 * ea.kl + 1e-12, `KL ${eb.kl} vs ${ea.kl}`);
        assert.equal(eb.loss, ea.loss);
      } finally {
        whole.dispose();
        chunked.dispose();
        t.model.dispose();
      }
    }
  });

  test('a subsample of the completions is the mean over their tokens only', () => {
    const t = tiny(true, 5);
    const ctx = update(t, 1);
    try {
      ctx.gradient(surrogateLoss);
      const v = randn(ctx.size, rng(2));
      // F over rows {0, 2} = token-weighted mean of F over {0} and over {2}
      const n0 = t.pack([0])[0]!.packed.m.reduce((s, x) => s + x, 0);
      const n2 = t.pack([2])[0]!.packed.m.reduce((s, x) => s + x, 0);
      const both = ctx.fisher([0, 2])(v);
      const f0 = ctx.fisher([0])(v);
      const f2 = ctx.fisher([2])(v);
      const mix = both.map((_, i) => (n0 * f0[i]! + n2 * f2[i]!) / (n0 + n2));
      assert.ok(relErr(both, mix) < 1e-4, `relative error ${relErr(both, mix)}`);
      assert.deepEqual(fisherRows({ seed: 0, cg_subsample: 1 }, 1, 3), [0, 1, 2]);
      const sub = fisherRows({ seed: 0, cg_subsample: 0.25 }, 7, 64);
      assert.equal(sub.length, 16);
      assert.deepEqual(sub, fisherRows({ seed: 0, cg_subsample: 0.25 }, 7, 64), 'a function of (seed, step)');
      assert.notDeepEqual(sub, fisherRows({ seed: 0, cg_subsample: 0.25 }, 8, 64));
    } finally {
      ctx.dispose();
      t.model.dispose();
    }
  });
});

describe('trpoStep', () => {
  test('an accepted step: KL ≤ max_kl, the surrogate improves, the weights are where evaluate() measured', () => {
    const t = tiny(false, 6);
    const ctx = update(t, 1);
    const c = trpoCfg({ max_kl: 0.01, cg_iters: 8, cg_subsample: 1 });
    try {
      const out = trpoStep(c, ctx);
      assert.ok(out.sums.lineSearchSteps! >= 1);
      assert.ok(out.sums.kl! > 0 && out.sums.kl! <= c.max_kl, `kl ${out.sums.kl}`);
      assert.ok(out.sums.improvement! > 0);
      const e = ctx.evaluate(surrogateLoss);
      assert.equal(e.kl, out.sums.kl);
      assert.ok(Math.abs(out.loss - e.loss - out.sums.improvement!) < 1e-12);
      assert.notDeepEqual(Float64Array.from(t.model.parameters().flatMap((p) => [...p.toFloat32()])), ctx.theta0);
    } finally {
      ctx.dispose();
      t.model.dispose();
    }
  });

  test('a rejected line search leaves every weight bit for bit as it was (trpo/kl 0)', () => {
    const t = tiny(true, 7);
    const before = t.model.parameters().map((p) => p.toFloat32());
    const inner = update(t, 1);
    let tries = 0;
    // every try reports a KL above δ, so the search must give up and restore θ_old
    const ctx: UpdateContext = {
      size: inner.size,
      step: inner.step,
      sequences: inner.sequences,
      theta0: inner.theta0,
      gradient: (l) => inner.gradient(l),
      fisher: (rows) => inner.fisher(rows),
      moveTo: (th) => inner.moveTo(th),
      restore: () => inner.restore(),
      evaluate: (l) => {
        tries++;
        return { ...inner.evaluate(l), kl: Infinity };
      },
    };
    const c = trpoCfg({ max_kl: 0.01, cg_iters: 4, line_search_steps: 3, cg_subsample: 1 });
    try {
      const out = trpoStep(c, ctx);
      assert.equal(tries, 3);
      assert.equal(out.sums.lineSearchSteps, 3);
      assert.equal(out.sums.kl, 0);
      assert.equal(out.sums.stepSize, 0);
      const now = t.model.parameters().map((p) => p.toFloat32());
      now.forEach((a, i) =>
        assert.ok(Buffer.from(a.buffer).equals(Buffer.from(before[i]!.buffer)), `parameter ${i} changed`),
      );
    } finally {
      inner.dispose();
      t.model.dispose();
    }
  });
});

describe('train() with loss_type trpo', () => {
  const SHAPE = {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    tie_word_embeddings: true,
    max_position_embeddings: 64,
  };
  writeInitModel(join(dir, 'model'), SHAPE, { seed: 1, charVocab: true });
  writeFileSync(
    join(dir, 'data.jsonl'),
    Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, answer: String(2 * i) })).join('\n') +
      '\n',
  );
  const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 3 === 0 ? 1 : 0));
  const cfg = (name: string, over: Record<string, unknown> = {}) => ({
    model_name_or_path: join(dir, 'model'),
    dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
    output_dir: join(dir, name),
    loss_type: 'trpo',
    max_kl: 0.02,
    cg_iters: 5,
    cg_subsample: 0.5,
    num_generations: 4,
    per_device_train_batch_size: 8,
    max_prompt_length: 16,
    max_completion_length: 6,
    max_steps: 4,
    save_steps: 0,
    seed: 5,
    temperature: 1.0,
    ...over,
  });
  const quiet = { rewardFns: { len }, log: () => {} };

  test('4 steps: trpo/* metrics, every accepted step has KL ≤ max_kl, at least one accepted, weights moved', async () => {
    const init = CausalLM.load(join(dir, 'model'));
    const res = await train(cfg('run'), quiet);
    assert.equal(res.metrics.length, 4);
    let accepted = 0;
    for (const row of res.metrics) {
      for (const k of ['trpo/kl', 'trpo/step_size', 'trpo/line_search_steps', 'trpo/improvement'])
        assert.ok(Number.isFinite(row[k]), `step ${row.step}: ${k} = ${row[k]}`);
      assert.ok(row['trpo/kl']! >= 0 && row['trpo/kl']! <= 0.02, `step ${row.step}: trpo/kl ${row['trpo/kl']}`);
      if (row['trpo/line_search_steps'] === 0) {
        assert.ok(Number.isNaN(row.loss), 'no line search: a skipped step (no group with differing rewards)');
        continue;
      }
      if (row['trpo/kl']! > 0) {
        accepted++;
        assert.ok(row['trpo/step_size']! > 0 && row['trpo/improvement']! > 0);
        assert.ok(row['trpo/line_search_steps']! >= 1);
      } else assert.equal(row['trpo/step_size'], 0);
      for (const k of ['loss', 'grad_norm', 'entropy']) assert.ok(Number.isFinite(row[k]), `${k} = ${row[k]}`);
    }
    assert.ok(accepted >= 1, 'no step was accepted');
    const after = res.model.toHost();
    for (const [name, t0] of init.toHost()) {
      const moved = after.get(name)!.data.some((x, i) => x !== t0.data[i]);
      assert.ok(moved, `${name} did not change`);
    }
    init.dispose();
    // δ is part of the run's record
    const c = JSON.parse(readFileSync(join(dir, 'run', 'trainer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(c.loss_type, 'trpo');
    assert.equal(c.max_kl, 0.02);
    assert.equal(c.cg_iters, 5);
  });

  test('--resume after 2 of 4 steps equals the uninterrupted run bit for bit', async () => {
    const whole = await train(cfg('whole', { save_steps: 1 }), quiet);
    await train(cfg('split', { save_steps: 1, max_steps: 2 }), quiet);
    const resumed = await train(cfg('split', { save_steps: 1 }), { ...quiet, resume: true });
    assert.equal(resumed.metrics.length, 2);
    const strip = (r: Record<string, number>) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time_s' && !k.startsWith('tokens_per_s/')));
    assert.deepEqual(resumed.metrics.map(strip), whole.metrics.slice(2).map(strip));
    const a = whole.model.toHost();
    for (const [name, t] of resumed.model.toHost())
      assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(a.get(name)!.data.buffer)), `${name} differs`);
  });

  test('trpo_baseline value: per-token GAE on its own critic, fitted each step; saved; resume bit for bit', async () => {
    // constant lr: the split run's max_steps 2 must not change the critic's schedule
    const v = { trpo_baseline: 'value', save_steps: 1, lam: 0.9, learning_rate: 1e-3, lr_scheduler_type: 'constant' };
    const res = await train(cfg('value', v), quiet);
    assert.equal(res.metrics.length, 4);
    let accepted = 0;
    for (const row of res.metrics) {
      // a critic's baseline is informative even when a group's rewards are equal: no skipped steps
      assert.ok(row['trpo/line_search_steps']! >= 1, `step ${row.step} skipped`);
      assert.ok(row['trpo/kl']! >= 0 && row['trpo/kl']! <= 0.02, `step ${row.step}: trpo/kl ${row['trpo/kl']}`);
      if (row['trpo/kl']! > 0) accepted++;
      for (const k of ['loss/value_avg', 'trpo/value_mean', 'trpo/returns_mean', 'trpo/value_grad_norm'])
        assert.ok(Number.isFinite(row[k]), `step ${row.step}: ${k} = ${row[k]}`);
      assert.ok(row['trpo/value_grad_norm']! > 0);
    }
    assert.ok(accepted >= 1, 'no step was accepted');
    // the critic moved between the first checkpoint and the end
    const h1 = readFileSync(join(dir, 'value', 'checkpoint-1', 'value_model', 'model.safetensors'));
    const h4 = readFileSync(join(dir, 'value', 'value_model', 'model.safetensors'));
    assert.ok(!h1.equals(h4), 'the critic did not change between step 1 and the end');
    const c = JSON.parse(readFileSync(join(dir, 'value', 'value_model', 'config.json'), 'utf8')) as {
      architectures: string[];
      num_labels?: number;
    };
    assert.match(c.architectures[0]!, /ForTokenClassification$/);
    // resume after 2 of 4 steps: the critic and its AdamW state come back exactly
    await train(cfg('value-split', { ...v, max_steps: 2 }), quiet);
    const resumed = await train(cfg('value-split', v), { ...quiet, resume: true });
    const strip = (r: Record<string, number>) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time_s' && !k.startsWith('tokens_per_s/')));
    assert.deepEqual(resumed.metrics.map(strip), res.metrics.slice(2).map(strip));
    assert.ok(
      readFileSync(join(dir, 'value-split', 'value_model', 'model.safetensors')).equals(h4),
      'resumed critic differs',
    );
  });
});

describe('trpo config errors', () => {
  const fails = (over: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => trpoCfg(over),
      (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
    );
  test('each names its field', () => {
    fails({ gamma: 0.99 }, /gamma: configures the critic, which loss_type trpo has only with trpo_baseline: value/);
    fails({ trpo_baseline: 'value', use_peft: true }, /use_peft: is not supported with trpo_baseline: value/);
    fails({ trpo_baseline: 'value', dynamic_sampling: true }, /dynamic_sampling: filters groups/);
    fails({ loss_type: 'gpg', lam: 0.9 }, /lam/);
    assert.equal(trpoCfg({ trpo_baseline: 'value', gamma: 0.99 }).gamma, 0.99);
    fails({ beta: 0.04 }, /beta: must be 0 for loss_type trpo/);
    fails({ num_iterations: 2 }, /num_iterations: must be 1 for loss_type trpo/);
    fails({ bf16: true }, /bf16: must be false for loss_type trpo/);
    fails({ max_kl: 0 }, /max_kl/);
    fails({ cg_subsample: 1.5 }, /cg_subsample/);
    fails({ line_search_backtrack_ratio: 1 }, /line_search_backtrack_ratio/);
    fails({ loss_type: 'gpg', max_kl: 0.01 }, /max_kl/);
    assert.equal(trpoCfg().max_kl, 0.001);
  });
});
