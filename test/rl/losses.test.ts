/**
 * Loss parity with the Hugging Face / PyTorch fixtures (DESIGN §5) and analytic gradients vs
 * finite differences of our own float64 loss, for every loss type, on- and off-policy.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readSafetensorsFile, toFloat32 } from '../../src/model/safetensors.ts';
import { advantages } from '../../src/rl/advantages.ts';
import { inverseAlpha, validGroups } from '../../src/rl/alpha.ts';
import { computeLoss, type LossInput } from '../../src/rl/algorithms/group-loss.ts';
import type { LossType } from '../../src/rl/config.ts';

const ROOT = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const dir = (m: string) => `${ROOT}${m}`;

function load(model: string) {
  const st = readSafetensorsFile(`${dir(model)}/reference.safetensors`);
  const ref = JSON.parse(readFileSync(`${dir(model)}/reference.json`, 'utf8'));
  const get = (k: string) => {
    const t = st.tensors.get(k);
    assert.ok(t, `${model}: tensor ${k} missing`);
    return { shape: t.shape, data: Float64Array.from(toFloat32(t)) };
  };
  const lp = get('token_logps'),
    refLp = get('ref_token_logps'),
    cm = get('completion_mask'),
    rewards = get('rewards');
  const [B, T] = cm.shape as [number, number];
  const Tm1 = T - 1;
  const mask = new Float64Array(B * Tm1);
  for (let b = 0; b < B; b++) for (let t = 0; t < Tm1; t++) mask[b * Tm1 + t] = cm.data[b * T + t + 1]!;
  assert.deepEqual(lp.shape, [B, Tm1]);
  return {
    ref,
    lp: lp.data,
    refLp: refLp.data,
    mask,
    rewards: rewards.data,
    B,
    Tm1,
    G: ref.G as number,
    C: ref.completion_width as number,
  };
}

/** The six fixture variants as computeLoss inputs (make_fixtures.py `losses`). */
function variants(f: ReturnType<typeof load>): Record<string, LossInput> {
  const aMean = advantages(f.rewards, f.G, { scaleRewards: false });
  const aStd = advantages(f.rewards, f.G, { scaleRewards: true });
  const ia = inverseAlpha(validGroups(f.rewards, f.G), f.B / f.G);
  const base = { lp: f.lp, mask: f.mask, B: f.B, Tm1: f.Tm1 };
  return {
    gpg: { ...base, lossType: 'gpg', advantages: aMean, inverseAlpha: ia },
    gpg_no_age: { ...base, lossType: 'gpg', advantages: aMean, inverseAlpha: 1 },
    gpg_std: { ...base, lossType: 'gpg', advantages: aStd, inverseAlpha: 1 },
    grpo: { ...base, lossType: 'grpo', advantages: aStd, epsilon: 0.2, epsilonHigh: 0.2, beta: 0.04, refLp: f.refLp },
    dapo: { ...base, lossType: 'dapo', advantages: aStd, epsilon: 0.2, epsilonHigh: 0.28 },
    dr_grpo: {
      ...base,
      lossType: 'dr_grpo',
      advantages: aMean,
      epsilon: 0.2,
      epsilonHigh: 0.2,
      maxCompletionLength: f.C,
    },
  };
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('losses: fixture parity (reference.json losses)', () => {
  for (const model of ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny']) {
    test(model, () => {
      const f = load(model);
      const aMean = advantages(f.rewards, f.G, { scaleRewards: false });
      const aStd = advantages(f.rewards, f.G, { scaleRewards: true });
      f.ref.advantages_mean.forEach((v: number, i: number) =>
        assert.ok(Math.abs(aMean[i]! - v) < 1e-12, `advantages_mean[${i}]`),
      );
      f.ref.advantages_std.forEach((v: number, i: number) =>
        assert.ok(Math.abs(aStd[i]! - v) < 1e-9, `advantages_std[${i}]`),
      );
      assert.equal(inverseAlpha(validGroups(f.rewards, f.G), f.B / f.G), f.ref.inverse_alpha);
      const vs = variants(f);
      assert.deepEqual(Object.keys(vs).sort(), Object.keys(f.ref.losses).sort());
      for (const [name, input] of Object.entries(vs)) {
        const { loss } = computeLoss(input);
        const want = f.ref.losses[name] as number;
        // inputs are the float32-stored log-probs of a float64 computation: ~1e-7 relative
        assert.ok(
          relErr(loss, want) <= 1e-6,
          `${model} ${name}: ours ${loss} vs reference ${want} (rel ${relErr(loss, want).toExponential(2)})`,
        );
      }
    });
  }
});

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function randomCase(lossType: LossType, offPolicy: boolean, seed: number): LossInput {
  const r = rng(seed);
  const B = 6,
    Tm1 = 7;
  const lp = Float64Array.from({ length: B * Tm1 }, () => -0.2 - 3 * r());
  const mask = new Float64Array(B * Tm1);
  const lens = [7, 3, 1, 5, 0, 4];
  for (let b = 0; b < B; b++) for (let t = Tm1 - lens[b]!; t < Tm1; t++) mask[b * Tm1 + t] = 1;
  // off-policy: |lp − oldLp| up to 0.5, so many ratios fall outside [0.8, 1.28]
  const oldLp = offPolicy ? Float64Array.from(lp, (v) => v + (r() - 0.5)) : undefined;
  const refLp = Float64Array.from(lp, (v) => v + 0.3 * (r() - 0.5));
  const adv = Float64Array.from({ length: B }, () => 2 * r() - 1);
  const beta = lossType === 'gpg' ? 0 : 0.1;
  return {
    lossType,
    lp,
    oldLp,
    refLp,
    mask,
    advantages: adv,
    B,
    Tm1,
    epsilon: 0.2,
    epsilonHigh: 0.28,
    beta,
    inverseAlpha: 0.75,
    maxCompletionLength: 9,
  };
}

describe('losses: dlp equals finite differences', () => {
  for (const lossType of ['gpg', 'grpo', 'dapo', 'dr_grpo'] as LossType[]) {
    for (const off of [false, true]) {
      if (lossType === 'gpg' && off) continue; // gpg has no ratio (num_iterations must be 1)
      test(`${lossType}${off ? ' off-policy (clipping active)' : ' on-policy'}`, () => {
        const x = randomCase(lossType, off, 11 + lossType.length + (off ? 100 : 0));
        const { dlp, metrics } = computeLoss(x);
        if (off) assert.ok((metrics.clippedTokens ?? 0) > 0, 'the off-policy case must clip some tokens');
        const h = 1e-6;
        let maxErr = 0;
        for (let i = 0; i < x.lp.length; i++) {
          // on-policy: the ratio's base moves with lp (lp_old = lp.detach()), so perturb lp only
          const plus = Float64Array.from(x.lp);
          plus[i]! += h;
          const minus = Float64Array.from(x.lp);
          minus[i]! -= h;
          const old = x.oldLp;
          const lpP = computeLoss({ ...x, lp: plus, oldLp: old ?? x.lp }).loss;
          const lpM = computeLoss({ ...x, lp: minus, oldLp: old ?? x.lp }).loss;
          const fd = (lpP - lpM) / (2 * h);
          maxErr = Math.max(maxErr, Math.abs(fd - dlp[i]!));
        }
        assert.ok(maxErr < 1e-7, `${lossType}: max |dlp − finite difference| = ${maxErr}`);
      });
    }
  }
});

describe('losses: gradient accumulation with batch-wide denominators', () => {
  for (const lossType of ['gpg', 'grpo', 'dapo', 'dr_grpo'] as LossType[]) {
    test(`${lossType}: 2 micro-batches sum to one double batch`, () => {
      const x = randomCase(lossType, lossType !== 'gpg', 5);
      const whole = computeLoss(x);
      const half = x.B / 2,
        n = half * x.Tm1;
      const part = (k: number): LossInput => ({
        ...x,
        B: half,
        lp: x.lp.slice(k * n, (k + 1) * n),
        oldLp: x.oldLp?.slice(k * n, (k + 1) * n),
        refLp: x.refLp?.slice(k * n, (k + 1) * n),
        mask: x.mask.slice(k * n, (k + 1) * n),
        advantages: x.advantages.slice(k * half, (k + 1) * half),
        denominators: { tokens: whole.metrics.tokens, sequences: x.B },
      });
      const a = computeLoss(part(0)),
        b = computeLoss(part(1));
      assert.ok(
        Math.abs(a.loss + b.loss - whole.loss) <= 1e-15 * Math.max(1, Math.abs(whole.loss)) * 10,
        `${a.loss} + ${b.loss} vs ${whole.loss}`,
      );
      const joined = new Float64Array([...a.dlp, ...b.dlp]);
      for (let i = 0; i < joined.length; i++)
        assert.ok(Math.abs(joined[i]! - whole.dlp[i]!) <= 1e-17 + 1e-15 * Math.abs(whole.dlp[i]!), `dlp[${i}]`);
    });
  }
});

describe('losses: edge cases', () => {
  test('an all-zero mask gives loss 0 (denominators clamped to ≥ 1), not NaN', () => {
    for (const lossType of ['gpg', 'grpo', 'dapo'] as LossType[]) {
      const x = randomCase(lossType, false, 3);
      const out = computeLoss({ ...x, mask: new Float64Array(x.mask.length) });
      assert.equal(out.loss, 0);
      assert.ok(out.dlp.every((v) => v === 0));
    }
  });
  test('unknown loss type throws', () => {
    const x = randomCase('gpg', false, 1);
    assert.throws(() => computeLoss({ ...x, lossType: 'ppo' as LossType }), /Unknown loss type: ppo/);
  });
  test('gpg with beta > 0 and grpo without refLp are rejected', () => {
    const x = randomCase('gpg', false, 1);
    assert.throws(() => computeLoss({ ...x, beta: 0.1 }), /GPG has no KL term/);
    assert.throws(() => computeLoss({ ...randomCase('grpo', false, 1), refLp: undefined }), /needs refLp/);
  });
  test('shape mismatches name the tensor', () => {
    const x = randomCase('dapo', false, 1);
    assert.throws(() => computeLoss({ ...x, mask: new Float64Array(3) }), /mask has 3 entries, expected 42/);
  });
  test('on-policy ratios are 1: nothing is clipped, and gpg and dapo gradients agree in direction', () => {
    const x = randomCase('dapo', false, 9);
    const out = computeLoss({ ...x, beta: 0 });
    assert.equal(out.metrics.clippedTokens, 0);
    const g = computeLoss({ ...x, lossType: 'gpg', beta: 0, inverseAlpha: 1 });
    for (let i = 0; i < g.dlp.length; i++) assert.ok(Math.abs(g.dlp[i]! - out.dlp[i]!) < 1e-15);
  });
});
