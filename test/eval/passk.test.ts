import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { meanPassAtK, passAtK } from '../../src/eval/passk.ts';
import { GpgRlError } from '../../src/errors.ts';

/** 1 − C(n−c, k)/C(n, k) with exact BigInt binomials: the definition the product form must match. */
function binom(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}
const exact = (n: number, c: number, k: number): number => 1 - Number(binom(n - c, k)) / Number(binom(n, k));

describe('passAtK (Chen et al. 2021)', () => {
  test('hand-computed values', () => {
    assert.equal(passAtK(1, 1, 1), 1);
    assert.equal(passAtK(1, 0, 1), 0);
    assert.equal(passAtK(2, 1, 1), 0.5);
    assert.ok(Math.abs(passAtK(5, 2, 2) - 0.7) < 1e-12); // 1 − C(3,2)/C(5,2) = 1 − 3/10
    assert.equal(passAtK(4, 0, 4), 0);
    assert.equal(passAtK(4, 1, 4), 1); // n − c < k: every 4-subset holds the correct one
  });
  test('pass@1 is c/n; matches the binomial definition for every n ≤ 16', () => {
    for (let n = 1; n <= 16; n++) {
      for (let c = 0; c <= n; c++) {
        assert.ok(Math.abs(passAtK(n, c, 1) - c / n) < 1e-12);
        for (let k = 1; k <= n; k++)
          assert.ok(Math.abs(passAtK(n, c, k) - exact(n, c, k)) < 1e-12, `n=${n} c=${c} k=${k}`);
      }
    }
  });
  test('large n does not overflow', () => {
    const v = passAtK(1000, 3, 100);
    assert.ok(Math.abs(v - exact(1000, 3, 100)) < 1e-9 && v > 0.27 && v < 0.28, String(v));
  });
  test('invalid arguments throw', () => {
    assert.throws(() => passAtK(2, 3, 1), GpgRlError);
    assert.throws(() => passAtK(2, 1, 3), /need integers 0 ≤ c ≤ n and 1 ≤ k ≤ n \(got n=2, c=1, k=3\)/);
    assert.throws(() => passAtK(0, 0, 1), GpgRlError);
  });
  test('mean over problems', () => {
    assert.equal(meanPassAtK([], 1), 0);
    assert.equal(
      meanPassAtK(
        [
          { n: 2, c: 2 },
          { n: 2, c: 0 },
          { n: 2, c: 1 },
        ],
        1,
      ),
      0.5,
    );
    assert.ok(
      Math.abs(
        meanPassAtK(
          [
            { n: 2, c: 1 },
            { n: 2, c: 0 },
          ],
          2,
        ) - 0.5,
      ) < 1e-12,
    );
  });
});
