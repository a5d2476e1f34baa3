/**
 * The proof that "GPG" here is the paper's GPG: for each fixture model and each loss of DESIGN §5
 * (gpg, gpg_no_age, gpg_std, grpo, dapo, dr_grpo), the loss value and the gradient of EVERY
 * parameter, computed end to end by our engine (decoder → token log-probs → loss → backward),
 * match PyTorch/transformers (relative error ≤ 1e-4). Also: accumulating two micro-batches gives
 * the same gradient as one double batch.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { CausalLM } from '../../src/model/decoder.ts';
import { readSafetensorsFile, toFloat32, toInt32 } from '../../src/model/safetensors.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { computeLoss, type LossInput } from '../../src/rl/algorithms/group-loss.ts';
import { advantages } from '../../src/rl/advantages.ts';
import { inverseAlpha, validGroups } from '../../src/rl/alpha.ts';
import { checkTensor } from '../helpers.ts';

const FIXTURES = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const KINDS = ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny'];
const LOSSES = ['gpg', 'gpg_no_age', 'gpg_std', 'grpo', 'dapo', 'dr_grpo'] as const;

function setup(kind: string) {
  const ref = readSafetensorsFile(join(FIXTURES, kind, 'reference.safetensors')).tensors;
  const meta = JSON.parse(readFileSync(join(FIXTURES, kind, 'reference.json'), 'utf8')) as {
    losses: Record<string, number>;
    G: number;
    completion_width: number;
  };
  const [B, T] = ref.get('input_ids')!.shape as [number, number];
  const ids = toInt32(ref.get('input_ids')!);
  const mask = toInt32(ref.get('attention_mask')!);
  const cmask = toFloat32(ref.get('completion_mask')!);
  const rewards = Float64Array.from(toFloat32(ref.get('rewards')!));
  const refLp = Float64Array.from(toFloat32(ref.get('ref_token_logps')!));
  const m = new Float64Array(B * (T - 1));
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) m[b * (T - 1) + t - 1] = cmask[b * T + t]!;
  return { ref, meta, B, T, ids, mask, m, rewards, refLp };
}

type S = ReturnType<typeof setup>;

function lossInput(
  s: S,
  name: (typeof LOSSES)[number],
  lp: Float64Array,
  rows: [number, number] = [0, s.B],
  denominators?: LossInput['denominators'],
): LossInput {
  const G = s.meta.G;
  const aMean = advantages(s.rewards, G, { scaleRewards: false });
  const aStd = advantages(s.rewards, G, { scaleRewards: true });
  const ia = inverseAlpha(validGroups(s.rewards, G), s.B / G);
  const [lo, hi] = rows;
  const Tm1 = s.T - 1;
  const base = {
    lp,
    mask: s.m.slice(lo * Tm1, hi * Tm1),
    B: hi - lo,
    Tm1,
    maxCompletionLength: s.meta.completion_width,
    denominators,
  };
  const cut = (a: Float64Array) => a.slice(lo, hi);
  switch (name) {
    case 'gpg':
      return { ...base, lossType: 'gpg', advantages: cut(aMean), inverseAlpha: ia };
    case 'gpg_no_age':
      return { ...base, lossType: 'gpg', advantages: cut(aMean), inverseAlpha: 1 };
    case 'gpg_std':
      return { ...base, lossType: 'gpg', advantages: cut(aStd), inverseAlpha: 1 };
    case 'grpo':
      return {
        ...base,
        lossType: 'grpo',
        advantages: cut(aStd),
        epsilon: 0.2,
        epsilonHigh: 0.2,
        beta: 0.04,
        refLp: s.refLp.slice(lo * Tm1, hi * Tm1),
      };
    case 'dapo':
      return { ...base, lossType: 'dapo', advantages: cut(aStd), epsilon: 0.2, epsilonHigh: 0.28 };
    case 'dr_grpo':
      return { ...base, lossType: 'dr_grpo', advantages: cut(aMean), epsilon: 0.2, epsilonHigh: 0.2 };
  }
}

/** Forward + loss + backward over rows [lo, hi) of the fixture batch; returns the loss value. */
function step(
  model: CausalLM,
  s: S,
  name: (typeof LOSSES)[number],
  rows: [number, number] = [0, s.B],
  denominators?: LossInput['denominators'],
): number {
  const [lo, hi] = rows;
  const B = hi - lo;
  const T = s.T;
  return tidy(() => {
    const sel = s.m.slice(lo * (T - 1), hi * (T - 1));
    const { logps, index } = model.tokenLogps(
      { ids: Int32Array.from(s.ids.slice(lo * T, hi * T)), mask: Int32Array.from(s.mask.slice(lo * T, hi * T)), B, T },
      { select: sel },
    );
    const v = logps.toFloat32();
    const lp = new Float64Array(B * (T - 1));
    for (let i = 0; i < index.length; i++) lp[index[i]!] = v[i]!;
    const out = computeLoss(lossInput(s, name, lp, rows, denominators));
    backward(
      logps,
      Tensor.fromArray(
        Float32Array.from(index, (j) => out.dlp[j]!),
        [index.length],
      ),
    );
    return out.loss;
  });
}

for (const kind of KINDS) {
  describe(`loss parity with transformers: ${kind}`, () => {
    const s = setup(kind);
    const model = CausalLM.load(join(FIXTURES, kind));
    model.setRequiresGrad(true);
    for (const name of LOSSES) {
      test(`${name}: loss value and every parameter gradient (rel err ≤ 1e-4)`, () => {
        const loss = step(model, s, name);
        const want = s.meta.losses[name]!;
        assert.ok(
          Math.abs(loss - want) <= 1e-4 * Math.max(Math.abs(want), 1e-3),
          `${kind} ${name}: loss ${loss} vs ${want}`,
        );
        let n = 0;
        for (const [pname, p] of model.params) {
          const refGrad = s.ref.get(`grad.${name}.${pname}`);
          assert.ok(refGrad, `fixture has no grad.${name}.${pname}`);
          assert.ok(p.grad, `${pname} received no gradient`);
          checkTensor(`${kind} ${name}`, `grad ${pname}`, p.grad!.toFloat32(), toFloat32(refGrad!), 1e-4);
          p.grad!.dispose();
          p.grad = null;
          n++;
        }
        assert.equal(n, model.params.size);
      });
    }

    test('gradient accumulation: 2 micro-batches (one group each) = one double batch', () => {
      for (const name of ['gpg', 'grpo', 'dr_grpo'] as const) {
        const whole = step(model, s, name);
        const g1 = new Map([...model.params].map(([k, p]) => [k, p.grad!.toFloat32()]));
        for (const p of model.params.values()) {
          p.grad!.dispose();
          p.grad = null;
        }
        const Tm1 = s.T - 1;
        let tokens = 0;
        for (const x of s.m) tokens += x;
        const den = { tokens, sequences: s.B };
        const half = s.B / 2;
        const a = step(model, s, name, [0, half], den);
        const b = step(model, s, name, [half, s.B], den);
        assert.ok(Math.abs(a + b - whole) <= 1e-6 * Math.max(1, Math.abs(whole)), `${name}: ${a} + ${b} vs ${whole}`);
        for (const [k, p] of model.params) {
          checkTensor(`accumulation ${name}`, k, p.grad!.toFloat32(), g1.get(k)!, 1e-5);
          p.grad!.dispose();
          p.grad = null;
        }
        void Tm1;
      }
    });
  });
}
