/**
 * PPO parity with PyTorch (issue 14). test/fixtures/ppo/ holds what scripts/fixtures/ppo_reference.py
 * computed with transformers on the hf-reference tiny policies and their batch (left-padded
 * prompts, right-padded completions): a value model saved by transformers
 * (<Arch>ForTokenClassification, num_labels 1), perturbed old log-probs and old values (so both
 * clips are reached), the per-token KL (k1, k3), rewards, GAE, whitened advantages, returns, the
 * clipped policy and value losses and their gradients. We check:
 *   - the experience math on PyTorch's inputs (KL, token rewards, GAE, whitening: ≤ 1e-12);
 *   - the loss math on PyTorch's lp / values (loss, dLoss/dlp, dLoss/dV, clip counts: ≤ 1e-12);
 *   - end to end: our decoder and our ValueModel (loaded from transformers' folder) → values and
 *     log-probs (rel ≤ 1e-5) → losses (rel ≤ 1e-5) → every stored parameter gradient (rel ≤ 1e-4).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { CausalLM } from '../../src/model/decoder.ts';
import { ValueModel } from '../../src/model/value.ts';
import { readSafetensorsFile, toFloat32, toInt32, type StTensor } from '../../src/model/safetensors.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { gae, klPerToken, tokenRewards, whiten } from '../../src/rl/algorithms/gae.ts';
import { ppoPolicyLoss } from '../../src/rl/algorithms/ppo.ts';
import { Critic, valueLoss } from '../../src/rl/critic.ts';
import { relErr } from '../helpers.ts';

const HF = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const PPO = new URL('../fixtures/ppo/', import.meta.url).pathname;
const KINDS = ['qwen2-tiny', 'llama-tiny'];

interface Meta {
  kl_coef: number;
  gamma: number;
  lam: number;
  cliprange: number;
  cliprange_value: number;
  loss_policy: number;
  loss_value: number;
  policy_clipped: number;
  value_clipped: number;
  tokens: number;
  grad_params: string[];
}

function f64(t: StTensor | undefined, what: string): Float64Array {
  assert.ok(t, `fixture has no ${what}`);
  assert.equal(t.dtype, 'F64', `${what} is ${t.dtype}, expected F64`);
  return new Float64Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
}

function setup(kind: string) {
  const ref = readSafetensorsFile(join(HF, kind, 'reference.safetensors')).tensors;
  const fx = readSafetensorsFile(join(PPO, `${kind}.safetensors`)).tensors;
  const meta = JSON.parse(readFileSync(join(PPO, `${kind}.json`), 'utf8')) as Meta;
  const [B, T] = ref.get('input_ids')!.shape as [number, number];
  const a = (k: string) => f64(fx.get(k), k);
  return {
    fx,
    meta,
    B,
    T,
    Tm1: T - 1,
    batch: { ids: toInt32(ref.get('input_ids')!), mask: toInt32(ref.get('attention_mask')!), B, T },
    m: a('mask'),
    scores: a('scores'),
    oldLp: a('old_logps'),
    refLp: a('ref_logps'),
    lp: a('token_logps'),
    values: a('values'),
    oldValues: a('old_values'),
    a,
  };
}

const close = (ours: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) => {
  const e = relErr(ours, want);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(3)} > ${tol}`);
};
/** A scalar within tol relative of PyTorch's. */
const closeScalar = (ours: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(ours - want) <= tol * Math.abs(want), `${what} ${ours} vs ${want}`);
/** Every fixture gradient `grad.<prefix>.<name>` against ours (rel ≤ 1e-4); returns how many were compared. */
function compareGrads(
  fx: Map<string, StTensor>,
  keys: string[],
  prefix: string,
  params: Map<string, Tensor>,
  label: string,
): number {
  let n = 0;
  for (const key of keys.filter((k) => k.startsWith(`grad.${prefix}.`))) {
    const name = key.slice(`grad.${prefix}.`.length);
    const p = params.get(name);
    assert.ok(p?.grad, `${name} has no gradient`);
    close(p.grad.toFloat32(), toFloat32(fx.get(key)!), 1e-4, `${label} grad ${name}`);
    n++;
  }
  return n;
}

for (const kind of KINDS) {
  describe(`PPO parity with PyTorch: ${kind}`, () => {
    const s = setup(kind);
    const { meta } = s;

    test('the fixture reaches both clips', () => {
      assert.ok(meta.policy_clipped >= 2 && meta.policy_clipped < meta.tokens, `policy clipped ${meta.policy_clipped}`);
      assert.ok(meta.value_clipped >= 2 && meta.value_clipped < meta.tokens, `value clipped ${meta.value_clipped}`);
    });

    for (const est of ['k1', 'k3'] as const) {
      test(`experience (${est}): KL per token, token rewards, GAE, whitened advantages, returns`, () => {
        const kl = klPerToken(s.oldLp, s.refLp, s.m, est);
        close(kl, s.a(`kl_${est}`), 1e-12, `kl ${est}`);
        const r = tokenRewards({ scores: s.scores, kl, mask: s.m, B: s.B, Tm1: s.Tm1, klCoef: meta.kl_coef });
        close(r, s.a(`rewards_${est}`), 1e-12, `token rewards ${est}`);
        const g = gae({
          rewards: r,
          values: s.oldValues,
          mask: s.m,
          B: s.B,
          Tm1: s.Tm1,
          gamma: meta.gamma,
          lam: meta.lam,
        });
        close(g.advantages, s.a(`gae_${est}`), 1e-12, `GAE ${est}`);
        close(g.returns, s.a(`ret_${est}`), 1e-12, `returns ${est}`);
        close(whiten(g.advantages, s.m), s.a(`adv_${est}`), 1e-12, `whitened advantages ${est}`);
      });
    }

    test("loss math on PyTorch's lp and values: losses, gradients, clip counts", () => {
      const p = ppoPolicyLoss({
        lp: s.lp,
        oldLp: s.oldLp,
        advantages: s.a('adv_k3'),
        mask: s.m,
        epsilon: meta.cliprange,
        epsilonHigh: meta.cliprange,
        tokens: meta.tokens,
      });
      closeScalar(p.loss, meta.loss_policy, 1e-12, 'policy');
      close(p.dlp, s.a('dlp'), 1e-12, 'dLoss/dlp');
      assert.equal(p.clippedTokens, meta.policy_clipped);
      const v = valueLoss({
        values: s.values,
        oldValues: s.oldValues,
        returns: s.a('ret_k3'),
        mask: s.m,
        cliprangeValue: meta.cliprange_value,
        tokens: meta.tokens,
      });
      closeScalar(v.loss, meta.loss_value, 1e-12, 'value');
      close(v.dvalues, s.a('dvalues'), 1e-12, 'dLoss/dV');
      assert.equal(v.clippedTokens, meta.value_clipped);
    });

    test('end to end, policy: our log-probs → loss (rel ≤ 1e-5) → parameter gradients (rel ≤ 1e-4)', () => {
      const model = CausalLM.load(join(HF, kind));
      model.setRequiresGrad(true);
      const out = tidy(() => {
        const { logps, index } = model.tokenLogps(s.batch, { select: s.m });
        const v = logps.toFloat32();
        const lp = new Float64Array(s.B * s.Tm1);
        for (let i = 0; i < index.length; i++) lp[index[i]!] = v[i]!;
        close(
          lp,
          Float64Array.from(s.lp, (x, i) => x * s.m[i]!),
          1e-5,
          'token log-probs on completion tokens',
        );
        const o = ppoPolicyLoss({
          lp,
          oldLp: s.oldLp,
          advantages: s.a('adv_k3'),
          mask: s.m,
          epsilon: meta.cliprange,
          epsilonHigh: meta.cliprange,
          tokens: meta.tokens,
        });
        backward(
          logps,
          Tensor.fromArray(
            Float32Array.from(index, (j) => o.dlp[j]!),
            [index.length],
          ),
        );
        return o;
      });
      closeScalar(out.loss, meta.loss_policy, 1e-5, 'loss');
      assert.equal(out.clippedTokens, meta.policy_clipped);
      const n = compareGrads(s.fx, meta.grad_params, 'policy', model.params, `${kind} policy`);
      assert.ok(n >= 5, `only ${n} gradients compared`);
      model.dispose();
    });

    test("end to end, critic: transformers' value folder → our values (rel ≤ 1e-5) → value loss → gradients (rel ≤ 1e-4)", () => {
      const critic = Critic.load(join(PPO, `${kind}-value`), 0, { learningRate: 1e-3, weightDecay: 0 });
      assert.equal(
        critic.model.architecture,
        kind === 'llama-tiny' ? 'LlamaForTokenClassification' : 'Qwen2ForTokenClassification',
      );
      close(critic.predict(s.batch, s.m), s.values, 1e-5, 'values');
      const out = critic.backward(
        s.batch,
        s.m,
        { oldValues: s.oldValues, returns: s.a('ret_k3') },
        { cliprangeValue: meta.cliprange_value, tokens: meta.tokens, coef: 1 },
      );
      closeScalar(out.loss, meta.loss_value, 1e-5, 'loss');
      assert.equal(out.clippedTokens, meta.value_clipped);
      const params = new Map(critic.model.trainableParameters());
      const n = compareGrads(s.fx, meta.grad_params, 'value', params, `${kind} value`);
      assert.ok(n >= 5 && params.has('score.bias'), `only ${n} gradients compared`);
      critic.dispose();
    });

    test('a value model saved by us loads back in our loader with identical weights, in HF layout', () => {
      const vm = ValueModel.load(join(PPO, `${kind}-value`));
      const cfg = vm.configJson();
      assert.equal((cfg.architectures as string[])[0], vm.architecture);
      assert.deepEqual(cfg.id2label, { '0': 'LABEL_0' });
      vm.dispose();
    });
  });
}
