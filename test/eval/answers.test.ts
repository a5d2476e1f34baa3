import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { goldAnswer, lastBoxed } from '../../src/eval/answers.ts';
import type { Benchmark } from '../../src/eval/answers.ts';
import { verifyDetail } from '../../src/rewards/math-verify/verify.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
const jsonl = (f: string) =>
  readFileSync(DATA + f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('goldAnswer', () => {
  test("reads each set's own fields", () => {
    assert.equal(goldAnswer('amc23', { answer: 27.0 }), '27');
    assert.equal(goldAnswer('amc23', { answer: 0.5 }), '0.5');
    assert.equal(goldAnswer('olympiadbench', { final_answer: ['$3$'] }), '$3$');
    assert.equal(goldAnswer('olympiadbench', { final_answer: ['1', '2'] }), '1, 2');
    assert.equal(goldAnswer('minerva', { solution: 'so \\boxed{1} then \\boxed{\\frac{a}{b}}.' }), '\\frac{a}{b}');
    assert.equal(goldAnswer('gsm8k', { answer: 'work\n#### 1,234' }), '1234');
    assert.equal(goldAnswer('gsm8k', { answer: 'no marker' }), null);
    assert.equal(goldAnswer('math_train', { solution: '\\boxed{}' }), null);
    assert.equal(goldAnswer('aime24', {}), null);
  });
  test('lastBoxed balances braces', () => {
    assert.equal(lastBoxed('a \\boxed{\\frac{1}{2}} b'), '\\frac{1}{2}');
    assert.equal(lastBoxed('\\boxed{x} \\fbox{y}'), 'y');
    assert.equal(lastBoxed('\\boxed{\\{1,2\\}}'), '\\{1,2\\}');
    assert.equal(lastBoxed('\\boxed{unclosed'), null);
    assert.equal(lastBoxed('none'), null);
  });
});

// Issue 5 "Done when": each benchmark's own gold solutions (or the boxed answer where a set has
// no solution text) must verify as correct for every row.
const SETS: [Benchmark, () => Record<string, unknown>[], string | null][] = [
  ['aime24', () => jsonl('aime24/test.jsonl'), null],
  ['math500', () => jsonl('math500/test.jsonl'), 'solution'],
  ['amc23', () => jsonl('amc23/test.jsonl'), null],
  ['minerva', () => jsonl('minerva_math/test.jsonl'), 'solution'],
  ['olympiadbench', () => jsonl('olympiadbench/test.jsonl'), null],
  ['gsm8k', () => jsonl('gsm8k/test.jsonl'), null],
  [
    'math_deepscaler',
    () => JSON.parse(readFileSync(DATA + 'math_train_deepscaler/math.json', 'utf8')) as Record<string, unknown>[],
    null,
  ],
  [
    'math_train',
    () =>
      readdirSync(DATA + 'math_train/train').flatMap((d) =>
        readdirSync(`${DATA}math_train/train/${d}`).map(
          (f) => JSON.parse(readFileSync(`${DATA}math_train/train/${d}/${f}`, 'utf8')) as Record<string, unknown>,
        ),
      ),
    'solution',
  ],
];

describe(
  'every benchmark row verifies against its own solution',
  { skip: !existsSync(DATA) && 'shared/data not present' },
  () => {
    for (const [bench, load, solField] of SETS) {
      test(bench, () => {
        const rows = load();
        const failures: string[] = [];
        let graded = 0;
        for (const row of rows) {
          const gold = goldAnswer(bench, row);
          if (gold === null) continue; // rows without any answer (empty \boxed{} in MATH train)
          graded++;
          const pred = solField ? String(row[solField]) : `The answer is $\\boxed{${gold}}$.`;
          const d = verifyDetail(gold, pred);
          if (!d.equal) failures.push(`${JSON.stringify(gold)} vs ${JSON.stringify(d.predAnswer)}`);
        }
        assert.ok(graded >= rows.length - 10, `${bench}: only ${graded} of ${rows.length} rows have a gold answer`);
        assert.deepEqual(failures.slice(0, 10), []);
      });
    }
  },
);
