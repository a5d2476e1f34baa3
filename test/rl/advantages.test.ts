/** Group statistics and advantages (torch semantics: unbiased std, +1e-4). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  advantages,
  groupMeans,
  groupStds,
  isGroupValid,
  nanMeanStd,
  rewardStats,
  weightedRewardSum,
} from '../../src/rl/advantages.ts';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('group mean and unbiased std (torch.std)', () => {
  const r = [1, 0, 1, 0, 0, 0];
  assert.deepEqual([...groupMeans(r, 3)], [2 / 3, 0]);
  const s = groupStds(r, 3);
  close(s[0]!, Math.sqrt(((1 / 3) ** 2 * 2 + (2 / 3) ** 2) / 2));
  assert.equal(s[1], 0);
});

test('advantages: r − mean, or (r − mean)/(std + 1e-4)', () => {
  const r = [1, 0, 1, 0, 0, 0];
  const a = advantages(r, 3, { scaleRewards: false });
  [1 / 3, -2 / 3, 1 / 3, 0, 0, 0].forEach((v, i) => close(a[i]!, v));
  const s = advantages(r, 3, { scaleRewards: true });
  // make_fixtures.py values (reference.json advantages_std)
  [0.5772502865071344, -1.1545005730142686, 0.5772502865071344, 0, 0, 0].forEach((v, i) => close(s[i]!, v, 1e-12));
});

test('bad group sizes throw', () => {
  assert.throws(() => advantages([1, 2, 3], 2, { scaleRewards: false }), /do not split into groups of 2/);
  assert.throws(() => groupMeans([1, 2], 1), /G must be an integer ≥ 2/);
});

test('isGroupValid: not all identical', () => {
  assert.equal(isGroupValid([1, 1, 1]), false);
  assert.equal(isGroupValid([1, 1, 0.5]), true);
  assert.equal(isGroupValid([0, 0, 1, 1], 2, 2), false);
});

test('rewardStats: reward, reward_std (mean of group stds), frac_reward_zero_std', () => {
  const st = rewardStats([1, 0, 1, 0, 0, 0, 2, 2, 2, 1, 0, 0], 3);
  close(st.reward, 9 / 12);
  assert.equal(st.groups, 4);
  assert.equal(st.validGroups, 2);
  assert.equal(st.fracRewardZeroStd, 0.5);
  const stds = groupStds([1, 0, 1, 0, 0, 0, 2, 2, 2, 1, 0, 0], 3);
  close(st.rewardStd, (stds[0]! + stds[1]! + stds[2]! + stds[3]!) / 4);
});

test('weightedRewardSum skips null (NaN) entries; nanMeanStd', () => {
  const total = weightedRewardSum([Float64Array.from([1, NaN, 0]), Float64Array.from([0.5, 0.5, NaN])], [1, 2]);
  assert.deepEqual([...total], [2, 1, 0]);
  assert.throws(() => weightedRewardSum([new Float64Array(2)], [1, 2]), /2 weights for 1 reward functions/);
  const m = nanMeanStd([1, NaN, 3]);
  close(m.mean, 2);
  close(m.std, Math.SQRT2);
  assert.ok(Number.isNaN(nanMeanStd([NaN]).mean));
});
