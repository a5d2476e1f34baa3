/**
 * Off-policy parity of the clipped losses (issue 13). The hf-reference fixtures are on-policy
 * (ratio = exp(lp − old_lp) = 1), so loss-parity.test.ts never reaches the clip. The fixtures in
 * test/fixtures/off-policy/ (made by make_fixtures.py there, with PyTorch/transformers) use the
 * same models and batch but PERTURBED old log-probs, old_lp = lp + delta, so that completion tokens
 * fall on both sides outside [1 − ε_low, 1 + ε_high], some clipped (TRL is_region_clipped) and some
 * outside but kept by the min. For grpo (β 0.04 and β 0), dapo (ε 0.2/0.28) and dr_grpo we check:
 *   - the loss math alone, on PyTorch's own lp: loss, dLoss/dlp per token and the clip count;
 *   - end to end (our decoder → token log-probs → computeLoss → backward): loss (rel ≤ 1e-5), the
 *     clip count (exact), dLoss/dlp and every stored parameter gradient (rel ≤ 1e-4).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { CausalLM } from '../../src/model/decoder.ts';
import { readSafetensorsFile, toFloat32, toInt32, type StTensor } from '../../src/model/safetensors.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { computeLoss, type LossInput, type LossOutput } from '../../src/rl/algorithms/group-loss.ts';
import { advantages } from '../../src/rl/advantages.ts';
import { checkTensor, relErr } from '../helpers.ts';

const HF = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const OFF = new URL('../fixtures/off-policy/', import.meta.url).pathname;
const KINDS = ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny'];
const LOSSES = ['grpo', 'grpo_beta0', 'dapo', 'dr_grpo'] as const;
type Name = (typeof LOSSES)[number];

interface OffMeta {
  seed: number;
  G: number;
  completion_width: number;
  epsilon: number;
  epsilon_high: number;
  epsilon_high_dapo: number;
  beta: number;
  losses: Record<Name, number>;
  clip: Record<Name, { low: number; high: number; region: number; region_mean: number }>;
  grad_params: Record<Name, string[]>;
}

function f64(t: StTensor | undefined, what: string): Float64Array {
  assert.ok(t, `fixture has no ${what}`);
  assert.equal(t.dtype, 'F64', `${what} is ${t.dtype}, expected F64`);
  return new Float64Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
}

function setup(kind: string) {
  const ref = readSafetensorsFile(join(HF, kind, 'reference.safetensors')).tensors;
  const off = readSafetensorsFile(join(OFF, `${kind}.safetensors`)).tensors;
  const meta = JSON.parse(readFileSync(join(OFF, `${kind}.json`), 'utf8')) as OffMeta;
  const [B, T] = ref.get('input_ids')!.shape as [number, number];
  const Tm1 = T - 1;
  const ids = toInt32(ref.get('input_ids')!);
  const mask = toInt32(ref.get('attention_mask')!);
  const cmask = toFloat32(ref.get('completion_mask')!);
  const rewards = Float64Array.from(toFloat32(ref.get('rewards')!));
  const refLp = Float64Array.from(toFloat32(ref.get('ref_token_logps')!));
  const m = new Float64Array(B * Tm1);
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) m[b * Tm1 + t - 1] = cmask[b * T + t]!;
  const oldLp = f64(off.get('old_logps'), 'old_logps');
  const torchLp = f64(off.get('token_logps'), 'token_logps');
  assert.equal(oldLp.length, B * Tm1);
  return { off, meta, B, T, Tm1, ids, mask, m, rewards, refLp, oldLp, torchLp };
}

type S = ReturnType<typeof setup>;

function lossInput(s: S, name: Name, lp: Float64Array): LossInput {
  const G = s.meta.G;
  const aMean = advantages(s.rewards, G, { scaleRewards: false });
  const aStd = advantages(s.rewards, G, { scaleRewards: true });
  const base = {
    lp,
    oldLp: s.oldLp,
    mask: s.m,
    B: s.B,
    Tm1: s.Tm1,
    maxCompletionLength: s.meta.completion_width,
    epsilon: s.meta.epsilon,
  };
  switch (name) {
    case 'grpo':
      return {
        ...base,
        lossType: 'grpo',
        advantages: aStd,
        epsilonHigh: s.meta.epsilon_high,
        beta: s.meta.beta,
        refLp: s.refLp,
      };
    case 'grpo_beta0':
      return { ...base, lossType: 'grpo', advantages: aStd, epsilonHigh: s.meta.epsilon_high, beta: 0 };
    case 'dapo':
      return { ...base, lossType: 'dapo', advantages: aStd, epsilonHigh: s.meta.epsilon_high_dapo };
    case 'dr_grpo':
      return { ...base, lossType: 'dr_grpo', advantages: aMean, epsilonHigh: s.meta.epsilon_high };
  }
}

/** Our forward + loss + backward over the whole fixture batch. */
function step(model: CausalLM, s: S, name: Name): LossOutput & { lp: Float64Array } {
  return tidy(() => {
    const { logps, index } = model.tokenLogps(
      { ids: Int32Array.from(s.ids), mask: Int32Array.from(s.mask), B: s.B, T: s.T },
      { select: s.m },
    );
    const v = logps.toFloat32();
    const lp = new Float64Array(s.B * s.Tm1);
    for (let i = 0; i < index.length; i++) lp[index[i]!] = v[i]!;
    const out = computeLoss(lossInput(s, name, lp));
    backward(
      logps,
      Tensor.fromArray(
        Float32Array.from(index, (j) => out.dlp[j]!),
        [index.length],
      ),
    );
    return { ...out, lp };
  });
}

/** Tokens (flat [B, T-1] positions) where ours and PyTorch's dLoss/dlp differ beyond tol, for messages. */
function dlpMismatch(s: S, ours: Float64Array, want: Float64Array, tol: number): string {
  const bad: string[] = [];
  let scale = 0;
  for (const x of want) scale = Math.max(scale, Math.abs(x));
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(ours[i]! - want[i]!) > tol * Math.max(scale, 1e-12)) {
      const b = Math.floor(i / s.Tm1);
      bad.push(
        `[b ${b}, t ${i % s.Tm1}] ratio ${Math.exp(-(s.oldLp[i]! - s.torchLp[i]!)).toFixed(6)} ours ${ours[i]} ref ${want[i]}`,
      );
    }
  }
  return bad.slice(0, 8).join('; ');
}

for (const kind of KINDS) {
  describe(`off-policy loss parity with PyTorch: ${kind}`, () => {
    const s = setup(kind);
    const model = CausalLM.load(join(HF, kind));
    model.setRequiresGrad(true);

    test('the fixture exercises the clip on both sides', () => {
      const aStd = advantages(s.rewards, s.meta.G, { scaleRewards: true });
      const lo = 1 - s.meta.epsilon;
      const hi = 1 + s.meta.epsilon_high;
      const hiDapo = 1 + s.meta.epsilon_high_dapo;
      const n = { lowClipped: 0, highClipped: 0, highClippedDapo: 0, belowKept: 0, aboveKept: 0, inside: 0 };
      for (let i = 0; i < s.m.length; i++) {
        if (!s.m[i]) continue;
        const A = aStd[Math.floor(i / s.Tm1)]!;
        const r = Math.exp(s.torchLp[i]! - s.oldLp[i]!);
        if (A === 0) continue;
        if (r < lo) A < 0 ? n.lowClipped++ : n.belowKept++;
        else if (r > hi) {
          if (A > 0) {
            n.highClipped++;
            if (r > hiDapo) n.highClippedDapo++;
          } else n.aboveKept++;
        } else n.inside++;
        // no ratio sits on a clip bound, so float32 noise in lp cannot move a token across it
        for (const bound of [lo, hi, hiDapo]) assert.ok(Math.abs(r - bound) > 1e-4, `ratio ${r} at bound ${bound}`);
      }
      for (const [k, v] of Object.entries(n)) assert.ok(v >= 1, `${kind}: no ${k} token (${JSON.stringify(n)})`);
      assert.ok(n.highClippedDapo < n.highClipped, 'some token is clipped by ε_high 0.2 but not by 0.28');
      assert.equal(s.meta.clip.grpo.region, n.lowClipped + n.highClipped);
      assert.equal(s.meta.clip.dapo.region, n.lowClipped + n.highClippedDapo);
      for (const name of LOSSES) assert.ok(s.meta.clip[name].low > 0 && s.meta.clip[name].high > 0, name);
    });

    for (const name of LOSSES) {
      test(`${name}: loss math on PyTorch's lp (loss, dLoss/dlp per token, clip count)`, () => {
        const out = computeLoss(lossInput(s, name, s.torchLp));
        const want = s.meta.losses[name];
        assert.ok(Math.abs(out.loss - want) <= 1e-12 * Math.abs(want), `${kind} ${name}: loss ${out.loss} vs ${want}`);
        const dlp = f64(s.off.get(`dlp.${name}`), `dlp.${name}`);
        const e = relErr(out.dlp, dlp);
        assert.ok(e <= 1e-12, `${kind} ${name}: dlp relative error ${e}: ${dlpMismatch(s, out.dlp, dlp, 1e-12)}`);
        assert.equal(out.metrics.clippedTokens, s.meta.clip[name].region);
        assert.equal(out.metrics.clipRatioRegionMean, s.meta.clip[name].region_mean);
      });

      test(`${name}: end to end, loss (rel ≤ 1e-5), clip ratio and parameter gradients (rel ≤ 1e-4)`, () => {
        const out = step(model, s, name);
        const want = s.meta.losses[name];
        const lossErr = Math.abs(out.loss - want) / Math.abs(want);
        assert.ok(lossErr <= 1e-5, `${kind} ${name}: loss ${out.loss} vs ${want} (rel ${lossErr.toExponential(3)})`);
        assert.equal(out.metrics.clippedTokens, s.meta.clip[name].region, `${kind} ${name}: clipped tokens`);
        assert.equal(out.metrics.clipRatioRegionMean, s.meta.clip[name].region_mean, `${kind} ${name}: clip ratio`);
        const dlp = f64(s.off.get(`dlp.${name}`), `dlp.${name}`);
        const e = relErr(out.dlp, dlp);
        assert.ok(e <= 1e-4, `${kind} ${name}: dlp relative error ${e}: ${dlpMismatch(s, out.dlp, dlp, 1e-4)}`);
        let n = 0,
          worst = 0;
        for (const [pname, p] of model.params) {
          assert.ok(p.grad, `${pname} received no gradient`);
          const refGrad = s.off.get(`grad.${name}.${pname}`);
          if (refGrad) {
            const ours = p.grad!.toFloat32();
            checkTensor(`${kind} ${name} off-policy`, `grad ${pname}`, ours, toFloat32(refGrad), 1e-4);
            worst = Math.max(worst, relErr(ours, toFloat32(refGrad)));
            n++;
          }
          p.grad!.dispose();
          p.grad = null;
        }
        assert.equal(n, s.meta.grad_params[name].length, `${kind} ${name}: stored gradients checked`);
        if (process.env.GPG_OFF_POLICY_REPORT)
          console.log(
            `${kind} ${name}: loss rel ${lossErr.toExponential(2)}, dlp rel ${e.toExponential(2)}, ` +
              `worst grad rel ${worst.toExponential(2)} over ${n} tensors`,
          );
      });
    }
  });
}
