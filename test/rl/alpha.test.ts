/** GPG's α and the β_th resampling controller (DESIGN §5), and DAPO dynamic sampling. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { collectDynamic, collectWithThreshold, inverseAlpha, validGroups } from '../../src/rl/alpha.ts';

type G = { id: number; valid: boolean };
/** A sampler that hands out groups from a script, one array per call (round), recording requests. */
function scripted(rounds: boolean[][]) {
  let id = 0;
  const calls: [number, number][] = [];
  const sample = async (n: number, round: number): Promise<G[]> => {
    calls.push([n, round]);
    const script = rounds[Math.min(round, rounds.length - 1)]!;
    return Array.from({ length: n }, (_, i) => ({ id: id++, valid: script[i % script.length]! }));
  };
  return { sample, calls, isValid: (g: G) => g.valid };
}

describe('inverse_alpha', () => {
  test('valid groups and min(1, valid/groups)', () => {
    assert.equal(validGroups([1, 0, 1, 0, 0, 0], 3), 1);
    assert.equal(inverseAlpha(1, 2), 0.5);
    assert.equal(inverseAlpha(3, 2), 1);
    assert.equal(inverseAlpha(0, 0), 0);
  });
});

describe('collectWithThreshold (β_th)', () => {
  const opts = { groupsPerStep: 4, minInverseAlpha: 0.5, maxRounds: 5 };
  test('all groups valid: one round, inverse_alpha 1', async () => {
    const s = scripted([[true]]);
    const r = await collectWithThreshold(s.sample, s.isValid, opts);
    assert.deepEqual(
      [r.inverseAlpha, r.validGroups, r.rounds, r.skip, r.thresholdReached, r.groups.length],
      [1, 4, 0, false, true, 4],
    );
    assert.deepEqual(s.calls, [[4, 0]]);
  });
  test('valid fraction at the threshold: no resampling', async () => {
    const s = scripted([[true, false]]);
    const r = await collectWithThreshold(s.sample, s.isValid, opts);
    assert.deepEqual([r.inverseAlpha, r.rounds, r.thresholdReached], [0.5, 0, true]);
  });
  test('reached after k rounds: new valid groups replace invalid ones in place', async () => {
    // round 0: 1 of 4 valid (0.25 < 0.5); round 1: all invalid; round 2: 2 of the 3 new groups valid
    // (both are kept: every new valid group replaces an invalid one, even past the threshold)
    const s = scripted([[true, false, false, false], [false], [true, false]]);
    const r = await collectWithThreshold(s.sample, s.isValid, opts);
    assert.deepEqual([r.rounds, r.validGroups, r.inverseAlpha, r.thresholdReached, r.skip], [2, 3, 0.75, true, false]);
    assert.deepEqual(
      s.calls,
      [
        [4, 0],
        [3, 1],
        [3, 2],
      ],
      'each round asks for as many prompts as there are invalid groups',
    );
    assert.deepEqual(
      r.groups.map((g) => g.id),
      [0, 7, 9, 3],
      'new valid groups fill the first invalid slots, in order',
    );
    assert.equal(r.groups.length, 4);
  });
  test('threshold unreachable within the round limit: proceed with max(valid/groups, β_th)', async () => {
    const s = scripted([[true, false, false, false], [false]]);
    const r = await collectWithThreshold(s.sample, s.isValid, opts);
    assert.deepEqual([r.rounds, r.validGroups, r.inverseAlpha, r.thresholdReached, r.skip], [5, 1, 0.5, false, false]);
    assert.equal(s.calls.length, 1 + 5);
  });
  test('none valid at all: skip the step (never crash)', async () => {
    const s = scripted([[false]]);
    const r = await collectWithThreshold(s.sample, s.isValid, opts);
    assert.deepEqual([r.skip, r.validGroups, r.inverseAlpha, r.rounds, r.thresholdReached], [true, 0, 0, 5, false]);
  });
  test('no valid group with β_th 0 still skips (inverse_alpha would be 0)', async () => {
    const s = scripted([[false]]);
    const r = await collectWithThreshold(s.sample, s.isValid, { ...opts, minInverseAlpha: 0 });
    assert.deepEqual([r.skip, r.rounds], [true, 0]);
  });
  test('a sampler that runs dry stops the rounds', async () => {
    let calls = 0;
    const r = await collectWithThreshold(
      async (n) => (calls++ === 0 ? [{ v: true }, { v: false }, { v: false }, { v: false }].slice(0, n) : []),
      (g) => g.v,
      opts,
    );
    assert.deepEqual([r.rounds, r.validGroups, r.inverseAlpha, r.skip], [1, 1, 0.5, false]);
  });
});

describe('collectDynamic (DAPO)', () => {
  const opts = { groupsPerStep: 4, maxRounds: 3 };
  test('drops all-same groups and refills to the batch size', async () => {
    const s = scripted([[true, false], [true]]);
    const r = await collectDynamic(s.sample, s.isValid, opts);
    assert.deepEqual(
      [r.groups.length, r.validGroups, r.rounds, r.filled, r.dropped, r.skip],
      [4, 4, 1, true, 2, false],
    );
    assert.ok(r.groups.every((g) => g.valid));
    assert.deepEqual(s.calls, [
      [4, 0],
      [2, 1],
    ]);
  });
  test('at the round limit proceeds with fewer valid groups; none → skip', async () => {
    const s = scripted([[true, false, false, false], [false]]);
    const r = await collectDynamic(s.sample, s.isValid, opts);
    assert.deepEqual([r.groups.length, r.rounds, r.filled, r.skip], [1, 3, false, false]);
    const none = scripted([[false]]);
    const z = await collectDynamic(none.sample, none.isValid, opts);
    assert.deepEqual([z.groups.length, z.skip, z.filled], [0, true, false]);
  });
});
