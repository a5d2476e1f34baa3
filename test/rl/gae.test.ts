/**
 * PPO's per-token experience (rl/algorithms/gae.ts) against values computed by hand: the KL
 * estimators, the per-token rewards (score on the last completion token only), GAE with a
 * discount, λ, left padding (prompt), right padding after the end token, a completion truncated at
 * the last column (terminal, not bootstrapped) and a row zeroed by mask_truncated_completions, and
 * TRL's masked whitening.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gae, klPerToken, lastTokens, tokenRewards, whiten } from '../../src/rl/algorithms/gae.ts';
import { InvalidArgumentError } from '../../src/errors.ts';

const near = (ours: ArrayLike<number>, want: number[], what: string) => {
  assert.equal(ours.length, want.length, what);
  for (let i = 0; i < want.length; i++)
    assert.ok(Math.abs(ours[i]! - want[i]!) <= 1e-12, `${what}[${i}]: ${ours[i]} vs ${want[i]}`);
};

// B = 3 rows, Tm1 = 5 positions.
// row 0: a prompt position, 3 completion tokens (an end token last), right padding;
// row 1: zeroed by mask_truncated_completions; row 2: truncated at the last column.
const B = 3,
  Tm1 = 5;
const mask = Float64Array.from([0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
const kl = Float64Array.from([0, 0.1, -0.2, 0.3, 0, 0, 0, 0, 0, 0, 0, 0, 0.2, 0.2, 0.2]);
// values at masked positions are junk that must never enter the recursion
const values = Float64Array.from([9, 0.5, 0.4, 0.2, 7, 3, 3, 3, 3, 3, -4, -4, 0.3, 0.6, 0.9]);
const scores = Float64Array.from([1, 1, 0]);

describe('PPO experience (gae.ts) against hand-computed values', () => {
  test('KL estimators at the sampled token (TRL k1 / k3)', () => {
    const lp = Float64Array.from([-1, -1, -2]),
      ref = Float64Array.from([-1.5, -1, -1]);
    near(klPerToken(lp, ref, Float64Array.from([1, 1, 0]), 'k1'), [0.5, 0, 0], 'k1');
    // k3 = (e^logr − 1) − logr with logr = ref − lp = −0.5
    near(klPerToken(lp, ref, Float64Array.from([1, 1, 0]), 'k3'), [Math.exp(-0.5) - 1 + 0.5, 0, 0], 'k3');
  });

  test('per-token rewards: −kl_coef·kl on completion tokens, the score on the last one', () => {
    near(lastTokens(mask, B, Tm1), [3, -1, 4], 'last completion token');
    const r = tokenRewards({ scores, kl, mask, B, Tm1, klCoef: 0.5 });
    // row 0: −0.05, +0.1, −0.15 + 1; row 1 gets nothing (no completion token); row 2: −0.1 ×3, score 0
    near(r, [0, -0.05, 0.1, 0.85, 0, 0, 0, 0, 0, 0, 0, 0, -0.1, -0.1, -0.1], 'rewards');
    near(
      tokenRewards({ scores, kl: null, mask, B, Tm1, klCoef: 0.5 }),
      [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      'no KL',
    );
  });

  test('GAE (γ 0.9, λ 0.5): padding skipped, every completion terminal at its last token', () => {
    const rewards = tokenRewards({ scores, kl, mask, B, Tm1, klCoef: 0.5 });
    const { advantages, returns } = gae({ rewards, values, mask, B, Tm1, gamma: 0.9, lam: 0.5 });
    // row 0, backwards: δ3 = 0.85 − 0.2 = 0.65 (V after the end token = 0, not the junk 7)
    //   δ2 = 0.1 + 0.9·0.2 − 0.4 = −0.12,  A2 = −0.12 + 0.45·0.65 = 0.1725
    //   δ1 = −0.05 + 0.9·0.4 − 0.5 = −0.19, A1 = −0.19 + 0.45·0.1725 = −0.112375
    // row 2 (truncated, not bootstrapped): δ4 = −0.1 − 0.9 = −1
    //   δ3 = −0.1 + 0.81 − 0.6 = 0.11, A3 = 0.11 − 0.45 = −0.34
    //   δ2 = −0.1 + 0.54 − 0.3 = 0.14, A2 = 0.14 − 0.153 = −0.013
    near(advantages, [0, -0.112375, 0.1725, 0.65, 0, 0, 0, 0, 0, 0, 0, 0, -0.013, -0.34, -1], 'advantages');
    near(returns, [0, 0.387625, 0.5725, 0.85, 0, 0, 0, 0, 0, 0, 0, 0, 0.287, 0.26, -0.1], 'returns = A + V');
    // γ = λ = 1: the advantage is the Monte-Carlo return minus V
    const mc = gae({ rewards, values, mask, B, Tm1, gamma: 1, lam: 1 });
    near(mc.returns.subarray(0, 5), [0, 0.9, 0.95, 0.85, 0], 'λ = 1 returns: reward-to-go');
  });

  test('whitening (TRL masked_whiten): unbiased variance over masked entries, 0 elsewhere', () => {
    const x = Float64Array.from([1, 2, 100, 3, 4]);
    const m = Float64Array.from([1, 1, 0, 1, 1]);
    const s = Math.sqrt(5 / 3 + 1e-8);
    near(whiten(x, m), [-1.5 / s, -0.5 / s, 0, 0.5 / s, 1.5 / s], 'whitened');
    near(whiten(x, m, false), [2.5 - 1.5 / s, 2.5 - 0.5 / s, 0, 2.5 + 0.5 / s, 2.5 + 1.5 / s], 'shift_mean false');
    near(whiten(x, new Float64Array(5)), [0, 0, 0, 0, 0], 'nothing masked in');
  });

  test('mismatched lengths are one clear error', () => {
    assert.throws(
      () => gae({ rewards: new Float64Array(3), values, mask, B, Tm1, gamma: 1, lam: 1 }),
      (e: unknown) => e instanceof InvalidArgumentError && /rewards has 3 entries, expected 15/.test(e.message),
    );
  });
});
