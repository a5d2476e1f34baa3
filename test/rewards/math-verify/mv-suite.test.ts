import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { verify } from '../../../src/rewards/math-verify/verify.ts';
import type { ExtractionKind } from '../../../src/rewards/math-verify/extract.ts';
import { MV_SUITE } from './mv-suite.ts';
import type { MvMode } from './mv-suite.ts';

// Math-Verify's match types as our extraction orders: LaTeX only (boxed, anchors, math
// environments), expressions only (anchors, numbers), or both (the default order).
const PRIORITY: Record<MvMode, readonly ExtractionKind[] | undefined> = {
  latex: ['boxed', 'answer_tag', 'final_answer', 'last_latex'],
  expr: ['final_answer', 'last_number'],
  both: undefined,
};

/** Agreement required with Math-Verify's own answer-level rows, and the most false positives allowed. */
const MIN_AGREEMENT = 0.95;

describe("agreement with Math-Verify's own test rows", () => {
  test(`>= ${MIN_AGREEMENT * 100}% agreement and 0 false positives`, () => {
    let n = 0,
      agree = 0;
    const falsePositives: string[] = [],
      misses: string[] = [];
    for (const group of MV_SUITE) {
      for (const [gold, pred, expected, rowOpts] of group.rows) {
        const o = { ...group.opts, ...rowOpts };
        let got = false;
        try {
          got = verify(gold, pred, {
            priority: PRIORITY[o.mode ?? 'both'],
            floatRounding: o.precision,
            allowSetRelationComp: o.allowSetRelationComp,
          });
        } catch {
          got = false;
        }
        n++;
        const row = `${group.source}: ${JSON.stringify(gold).slice(0, 80)} vs ${JSON.stringify(pred).slice(0, 80)}`;
        if (Number(got) === expected) agree++;
        else if (got) falsePositives.push(row);
        else misses.push(row);
      }
    }
    assert.ok(n >= 230, `only ${n} rows transcribed`);
    assert.deepEqual(falsePositives, []);
    assert.ok(
      agree / n >= MIN_AGREEMENT,
      `agreement ${agree}/${n} = ${((100 * agree) / n).toFixed(1)}%; misses:\n${misses.join('\n')}`,
    );
    console.log(
      `# Math-Verify suite: ${agree}/${n} rows agree (${((100 * agree) / n).toFixed(1)}%), ${falsePositives.length} false positives; misses:\n# ${misses.join('\n# ')}`,
    );
  });
});
