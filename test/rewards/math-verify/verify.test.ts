import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { verify } from '../../../src/rewards/math-verify/verify.ts';
import { lastBoxed } from '../../../src/rewards/math-verify/extract.ts';
import { CASES } from './cases.ts';
import type { Case } from './cases.ts';
import { CASES_13 } from './cases-13.ts';

function run(cases: Case[]): { wrong: string[]; falsePositives: number } {
  const wrong: string[] = [];
  let falsePositives = 0;
  for (const [gold, pred, want, reason] of cases) {
    let got: boolean | string;
    try {
      got = verify(gold, pred);
    } catch (e) {
      got = `threw ${(e as Error).message}`;
    }
    if (got === true && !want) falsePositives++;
    if (got !== want)
      wrong.push(
        `verify(${JSON.stringify(gold)}, ${JSON.stringify(pred)}) = ${String(got)}, want ${want}${reason ? ` (${reason})` : ''}`,
      );
  }
  return { wrong, falsePositives };
}

describe('verify: case table', () => {
  for (const [category, cases] of Object.entries({ ...CASES, ...CASES_13 })) {
    test(category, () => assert.deepEqual(run(cases).wrong, []));
  }
  test('0 false positives over all our cases; issue-13 cases all carry a reason', () => {
    const all = [...Object.values(CASES), ...Object.values(CASES_13)].flat();
    assert.equal(run(all).falsePositives, 0);
    assert.deepEqual(
      Object.values(CASES_13)
        .flat()
        .filter((c) => !c[3]),
      [],
    );
  });
  test('size: at least 450 cases, at least 150 must-not-match', () => {
    const all = [...Object.values(CASES), ...Object.values(CASES_13)].flat();
    assert.ok(all.length >= 450, `only ${all.length} cases`);
    assert.ok(all.filter((c) => !c[2]).length >= 150, `only ${all.filter((c) => !c[2]).length} not-equal cases`);
  });
});

describe('verify: extraction modes', () => {
  const prose = 'First, 3+4 = 7. Next we need to consider the other case.';
  test('unanchored by default (bare answers, last number), anchored on request (training rewards)', () => {
    assert.equal(verify('7', prose), true);
    assert.equal(verify('7', prose, { extractWithoutAnchor: false }), false);
    assert.equal(verify('7', '7', { extractWithoutAnchor: false }), false);
    for (const p of [
      'so \\boxed{7}',
      '<answer>7</answer>',
      'The final answer is $7$. I hope it is correct.',
      'Answer: 7',
    ]) {
      assert.equal(verify('7', p, { extractWithoutAnchor: false }), true, p);
    }
    assert.equal(verify('7', 'The final answer is $8$.', { extractWithoutAnchor: false }), false);
    // a hedge over several boxes is a list; only evaluation keeps the datasets' last-box reading
    assert.equal(verify('6', '\\boxed{5} or \\boxed{6}', { extractWithoutAnchor: false }), false);
    assert.equal(verify('5, 6', '\\boxed{5} or \\boxed{6}', { extractWithoutAnchor: false }), true);
    assert.equal(verify('6', '\\boxed{5} or \\boxed{6}'), true);
  });
  test('options: floatRounding and allowSetRelationComp as in Math-Verify', () => {
    assert.equal(verify('\\frac{1}{3}', '0.3333'), false);
    assert.equal(verify('\\frac{1}{3}', '0.3333', { floatRounding: 4 }), true);
    assert.equal(verify('x \\in [-2,7]', '-2 \\le x \\le 7'), false);
    assert.equal(verify('x \\in [-2,7]', '-2 \\le x \\le 7', { allowSetRelationComp: true }), true);
    assert.throws(() => verify('1', '1', { floatRounding: -1 }), /floatRounding must be an integer from 0 to 20/);
  });
});

const MINERVA = new URL('../../../../shared/data/minerva_math/test.jsonl', import.meta.url);

describe('verify: Minerva gold answers', { skip: !existsSync(MINERVA) && 'shared/data not present' }, () => {
  test('no non-zero gold accepts \\boxed{0} (scientific notation stays exact)', () => {
    const rows = readFileSync(MINERVA, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { solution: string });
    const golds = rows.map((r) => lastBoxed(r.solution)).filter((g): g is string => g !== null && g.trim() !== '0');
    assert.ok(golds.length >= 270, `only ${golds.length} non-zero golds`);
    assert.deepEqual(
      golds.filter((g) => verify(g, '\\boxed{0}')),
      [],
    );
    // and each still verifies against itself written out in a sentence
    assert.deepEqual(
      golds.filter((g) => !verify(g, `The answer is $\\boxed{${g}}$.`)),
      [],
    );
  });
});
