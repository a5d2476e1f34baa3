import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  ARITH_LEVELS,
  DEFAULT_ARITH_LEVEL,
  MAX_PROMPT_CHARS,
  MAX_SOLUTION_CHARS,
  arithRows,
  heldOutSet,
  isHeldOut,
  makeProblem,
  trainStream,
  type ArithProblem,
} from '../../src/data/arith.ts';
import { Rng } from '../../src/data/rng.ts';
import { DataError } from '../../src/errors.ts';
import { PRINTABLE_ASCII } from '../../src/model/tokenizer.ts';

const LEVELS = [1, 2, 3, 4];
const OPS_PER_LEVEL: Record<number, string> = { 1: '+', 2: '+-', 3: '+-+', 4: '*+' };
const take = (next: () => ArithProblem, n: number): ArithProblem[] => Array.from({ length: n }, next);

/**
 * Re-derive everything from the text alone: each line "x op y=z" must be true, chain from the
 * previous result, use the prompt's operands in order; the boxed value must equal `answer`, and
 * the prompt evaluated with operator precedence must give the same value.
 */
function checkProblem(p: ArithProblem): void {
  const m = /^(\d+)((?:[-+*]\d+)+)=$/.exec(p.prompt);
  assert.ok(m, `prompt shape: ${JSON.stringify(p.prompt)}`);
  const operands = [Number(m[1]), ...[...m[2]!.matchAll(/[-+*](\d+)/g)].map((x) => Number(x[1]))];
  const ops = [...m[2]!.matchAll(/[-+*]/g)].map((x) => x[0]).join('');
  assert.equal(ops, OPS_PER_LEVEL[p.level], `ops of ${p.id}`);
  assert.equal(p.id, `L${p.level}:${p.prompt.slice(0, -1)}`);

  const lines = p.solution.split('\n');
  assert.equal(lines.length, ops.length + 1, `one line per op + boxed: ${JSON.stringify(p.solution)}`);
  let acc = operands[0]!;
  for (let i = 0; i < ops.length; i++) {
    const l = /^(\d+)([-+*])(\d+)=(\d+)$/.exec(lines[i]!);
    assert.ok(l, `line ${i} of ${p.id}: ${JSON.stringify(lines[i])}`);
    const [x, op, y, z] = [Number(l[1]), l[2], Number(l[3]), Number(l[4])];
    assert.equal(x, acc, `line ${i} of ${p.id} starts from the previous result`);
    assert.equal(op, ops[i]);
    assert.equal(y, operands[i + 1]);
    assert.equal(z, op === '+' ? x + y : op === '-' ? x - y : x * y, `arithmetic of ${lines[i]}`);
    assert.ok(z >= 0, `non-negative intermediate in ${p.id}`);
    acc = z;
  }
  assert.equal(lines.at(-1), `\\boxed{${p.answer}}`);
  assert.equal(p.answer, String(acc));
  // Precedence-aware evaluation (only + - * on integers; safe to evaluate as JS).
  assert.equal(String(Function(`return (${p.prompt.slice(0, -1)})`)()), p.answer);

  for (const n of operands) assert.ok(n >= 0 && n <= 99);
  if (p.level === 4) assert.ok(operands[1]! >= 2 && operands[1]! <= 9, `1-digit multiplier in ${p.id}`);
  else for (const n of operands) assert.ok(n >= 10, `2-digit operand in ${p.id}`);

  assert.ok(p.prompt.length <= MAX_PROMPT_CHARS, `prompt length ${p.prompt.length}: ${p.prompt}`);
  assert.ok(p.solution.length <= MAX_SOLUTION_CHARS, `solution length ${p.solution.length}: ${p.solution}`);
  for (const ch of p.prompt + p.solution)
    assert.ok(PRINTABLE_ASCII.includes(ch), `char ${JSON.stringify(ch)} in ${p.id}`);
  assert.ok(/^[\x20-\x7e]+$/.test(p.prompt));
}

describe('arith: problems', () => {
  test('every level: solution steps are correct, answer = boxed value, within the character budget', () => {
    for (const level of LEVELS) {
      const rng = new Rng(123, level);
      for (let i = 0; i < 5000; i++) {
        const p = makeProblem(rng, level);
        assert.equal(p.level, level);
        checkProblem(p);
      }
    }
  });

  test('level 2 worked solution has the documented shape "a+b=s\\ns-c=r\\n\\boxed{r}"', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 50; i++) {
      const q = makeProblem(rng, 2);
      const [a, b, c] = q.prompt.slice(0, -1).split(/[+-]/).map(Number) as [number, number, number];
      assert.equal(q.solution, `${a}+${b}=${a + b}\n${a + b}-${c}=${a + b - c}\n\\boxed{${a + b - c}}`);
      assert.deepEqual(q, {
        prompt: `${a}+${b}-${c}=`,
        solution: q.solution,
        answer: String(a + b - c),
        level: 2,
        id: `L2:${a}+${b}-${c}`,
      });
    }
  });

  test('worst-case lengths stay in budget; level 2 results are never negative', () => {
    let maxSol = 0;
    let maxPrompt = 0;
    let minAns = Infinity;
    for (const level of LEVELS) {
      const next = trainStream(9, level);
      for (let i = 0; i < 20000; i++) {
        const p = next();
        maxSol = Math.max(maxSol, p.solution.length);
        maxPrompt = Math.max(maxPrompt, p.prompt.length);
        if (level === 2) minAns = Math.min(minAns, Number(p.answer));
      }
    }
    assert.ok(maxPrompt <= MAX_PROMPT_CHARS && maxSol <= MAX_SOLUTION_CHARS, `${maxPrompt} ${maxSol}`);
    assert.ok(minAns >= 0);
  });

  test('ARITH_LEVELS describes levels 1..4; bad levels are DataErrors', () => {
    assert.deepEqual(Object.keys(ARITH_LEVELS).map(Number), LEVELS);
    for (const l of LEVELS) assert.ok(ARITH_LEVELS[l]!.length > 0 && !ARITH_LEVELS[l]!.includes('\n'));
    assert.equal(DEFAULT_ARITH_LEVEL, 2);
    for (const bad of [0, 5, 2.5, NaN]) {
      assert.throws(
        () => makeProblem(new Rng(1), bad),
        (e) => e instanceof DataError && /makeProblem: level must be one of 1, 2, 3, 4/.test(e.message),
      );
      assert.throws(() => trainStream(1, bad), DataError);
      assert.throws(() => heldOutSet(bad, 1), DataError);
    }
  });
});

describe('arith: seeding and split', () => {
  test('same seed → same stream; another seed or level → another stream', () => {
    for (const level of LEVELS) {
      const a = take(trainStream(42, level), 300);
      assert.deepEqual(take(trainStream(42, level), 300), a);
      assert.notDeepEqual(
        take(trainStream(43, level), 300).map((p) => p.id),
        a.map((p) => p.id),
      );
    }
    const byLevel = LEVELS.map((l) => take(trainStream(7, l), 1)[0]!.id);
    assert.equal(new Set(byLevel).size, 4);
  });

  test('trainStream never yields a held-out problem (20,000 draws per level)', () => {
    for (const level of LEVELS) {
      const next = trainStream(2024, level);
      for (let i = 0; i < 20000; i++) assert.ok(!isHeldOut(next()), `level ${level} draw ${i}`);
    }
  });

  test('isHeldOut holds out ≈10% of ids, by id only', () => {
    const rng = new Rng(99, 2);
    let held = 0;
    const N = 50000;
    for (let i = 0; i < N; i++) if (isHeldOut(makeProblem(rng, 2))) held++;
    assert.ok(Math.abs(held / N - 0.1) < 0.01, `held-out fraction ${held / N}`);
    const p = makeProblem(new Rng(3), 2);
    assert.equal(isHeldOut({ ...p, solution: 'x', answer: 'y' }), isHeldOut(p));
  });

  test('heldOutSet: fixed, distinct, all held out, disjoint from training, prefix-stable', () => {
    for (const level of LEVELS) {
      const set = heldOutSet(level, 500);
      assert.equal(set.length, 500);
      assert.equal(new Set(set.map((p) => p.id)).size, 500, `level ${level}: distinct`);
      for (const p of set) {
        assert.ok(isHeldOut(p));
        assert.equal(p.level, level);
        checkProblem(p);
      }
      assert.deepEqual(heldOutSet(level, 500), set);
      assert.deepEqual(heldOutSet(level, 100), set.slice(0, 100));
      const ids = new Set(set.map((p) => p.id));
      const next = trainStream(5, level);
      for (let i = 0; i < 5000; i++) assert.ok(!ids.has(next().id));
    }
    assert.deepEqual(heldOutSet(2, 0), []);
    assert.throws(() => heldOutSet(2, -1), DataError);
    // Level 1 has only 90·90 ids, ≈10% of them held out: 5000 distinct ones cannot exist.
    assert.throws(
      () => heldOutSet(1, 5000),
      (e) => e instanceof DataError && /level 1 yielded only \d+ distinct/.test(e.message),
    );
  });

  test('arithRows maps to PromptRow', () => {
    const ps = heldOutSet(3, 3);
    assert.deepEqual(
      arithRows(ps),
      ps.map((p) => ({ prompt: p.prompt, answer: p.answer, fields: { solution: p.solution, level: 3, id: p.id } })),
    );
  });
});

describe('arith: the project verifier accepts the worked solutions', () => {
  // The verifier is written in parallel: use index.ts's export when it exists, else verify.ts's.
  const candidates = ['index.ts', 'verify.ts'].map(
    (f) => new URL(`../../src/rewards/math-verify/${f}`, import.meta.url),
  );
  const found = candidates.find((u) => existsSync(fileURLToPath(u)));

  test('verify(answer, solution) is true for 200 problems and false for a wrong answer', async (t) => {
    if (!found) {
      t.skip('src/rewards/math-verify/index.ts (or verify.ts) does not exist yet');
      return;
    }
    const mod = (await import(found.href)) as { verify?: unknown };
    if (typeof mod.verify !== 'function') {
      t.skip(`${found.pathname} does not export verify(gold, pred) yet`);
      return;
    }
    const verify = mod.verify as (gold: string, pred: string) => unknown;
    const probe = verify('1', '\\boxed{1}');
    if (typeof probe !== 'boolean') {
      t.skip(`${found.pathname}: verify is not synchronous (returned ${typeof probe})`);
      return;
    }
    const ps = LEVELS.flatMap((l) => take(trainStream(11, l), 50));
    for (const p of ps) {
      assert.equal(verify(p.answer, p.solution), true, `${p.id}: ${JSON.stringify(p.solution)}`);
      const wrong = String(Number(p.answer) + 1);
      assert.equal(verify(wrong, p.solution), false, `${p.id} against gold ${wrong}`);
      assert.equal(
        verify(p.answer, p.solution.replace(/\\boxed\{\d+\}$/, `\\boxed{${wrong}}`)),
        false,
        `${p.id} with boxed ${wrong}`,
      );
    }
  });
});
