import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { verify } from '../../../src/rewards/math-verify/verify.ts';
import { CASES } from './cases.ts';

describe('verify: case table', () => {
  for (const [category, cases] of Object.entries(CASES)) {
    test(category, () => {
      const wrong: string[] = [];
      for (const [gold, pred, want] of cases) {
        let got: boolean | string;
        try {
          got = verify(gold, pred);
        } catch (e) {
          got = `threw ${(e as Error).message}`;
        }
        if (got !== want) wrong.push(`verify(${JSON.stringify(gold)}, ${JSON.stringify(pred)}) = ${String(got)}, want ${want}`);
      }
      assert.deepEqual(wrong, []);
    });
  }
  test('size: at least 300 cases, at least 80 must-not-match', () => {
    const all = Object.values(CASES).flat();
    assert.ok(all.length >= 300, `only ${all.length} cases`);
    assert.ok(all.filter((c) => !c[2]).length >= 80, `only ${all.filter((c) => !c[2]).length} not-equal cases`);
  });
});
