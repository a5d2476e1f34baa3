/**
 * The verifier on adversarial input (issue 18 §6): compute-engine's parser backtracked on every
 * unclosed bracket (14 `(` took 3 s, 20 more than a minute), so unbalanced input is refused before
 * it is parsed. Then a fuzz of 10,000 random LaTeX-ish strings — unbalanced brackets, deep
 * nesting, long digit runs — through the worker pool: no comparison reaches its time limit, no
 * worker crashes (each has a 256 MiB heap cap, so flat memory is enforced, not assumed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verify } from '../../../src/rewards/math-verify/verify.ts';
import { checkBrackets } from '../../../src/rewards/math-verify/latex-parse.ts';
import { VerifierPool } from '../../../src/rewards/math-verify/pool.ts';

test('unbalanced brackets are refused before parsing (once exponential), balanced ones still verify', () => {
  for (const pred of [
    '\\boxed{' + '('.repeat(40) + 'x}',
    '\\boxed{' + '['.repeat(40) + '1+2}',
    '\\boxed{' + '\\left('.repeat(40) + 'x}',
    '('.repeat(60) + '1',
  ])
    assert.equal(verify('1', pred), false, pred);
  assert.throws(() => checkBrackets('((x)'), /1 unclosed/);
  assert.throws(() => checkBrackets('x)'), /no opener/);
  for (const ok of ['[0,1)', '\\left( x \\right]', '\\{1,2\\}', '\\left. x \\right|', '\\leftarrow (x)'])
    assert.doesNotThrow(() => checkBrackets(ok), ok);
  assert.equal(verify('(0,1]', '\\boxed{(0,1]}'), true);
  assert.equal(verify('2', '\\boxed{' + '('.repeat(12) + '2' + ')'.repeat(12) + '}'), true);
});

/** Deterministic LaTeX-ish strings (mulberry32). */
function fuzzStrings(n: number, seed: number): string[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const atoms = ['x', 'y', '2', '3.5', '\\pi', 'e', '\\infty', '1/2', 'i', 'n'];
  const ops = ['+', '-', '*', '/', '^', '=', ',', '\\cdot', '\\times', '<', '\\le', '\\cup'];
  const open = ['(', '[', '{', '\\{', '\\left(', '\\left[', '\\frac{', '\\sqrt{', '^{', '_{', '|', '\\langle'];
  const close = [')', ']', '}', '\\}', '\\right)', '\\right]', '}{', '|', '\\rangle'];
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    let s = '';
    const len = 1 + Math.floor(rnd() * 40);
    for (let j = 0; j < len; j++) {
      const r = rnd();
      if (r < 0.3) s += pick(atoms);
      else if (r < 0.5) s += pick(ops);
      else if (r < 0.7) s += pick(open);
      else if (r < 0.85) s += pick(close);
      else if (r < 0.9)
        s += '1'.repeat(1 + Math.floor(rnd() * 400)); // long digit runs
      else if (r < 0.95)
        s += pick(open).repeat(1 + Math.floor(rnd() * 30)); // deep / unclosed nesting
      else s += ' ';
    }
    out.push(rnd() < 0.5 ? `\\boxed{${s}}` : s);
  }
  return out;
}

test('fuzz: 10,000 random LaTeX-ish strings, none reaches the time limit, no worker crashes', async () => {
  const pool = new VerifierPool({ workers: 2, timeoutMs: 5000 });
  try {
    const preds = fuzzStrings(10_000, 18);
    const golds = ['1', 'x+1', '\\frac{1}{2}', '(0,1]', '\\{1,2\\}'];
    const rs = await Promise.all(preds.map((p, i) => pool.verify(golds[i % golds.length]!, p)));
    const s = pool.stats();
    const slow = rs.flatMap((r, i) => (r.timedOut ? [preds[i]!.slice(0, 80)] : []));
    assert.deepEqual(slow, [], `comparisons that timed out: ${slow.length}`);
    assert.equal(s.timeouts, 0);
    assert.equal(s.crashes, 0, 'a worker crashed (out of memory?)');
    assert.equal(s.comparisons, preds.length);
  } finally {
    await pool.close();
  }
});
