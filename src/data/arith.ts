/**
 * @module data/arith
 * The embedded demo's procedural reasoning task: short multi-step integer arithmetic with a worked
 * solution ending in `\boxed{…}`, sized for a tiny character-level model (prompt ≤ 16 characters,
 * solution ≤ 44). Problems come from a seeded {@link Rng}; the held-out split is a fixed function of
 * the problem id (a hash, no seed involved), so every machine and every seed agrees on it and the
 * training stream can never draw a held-out problem.
 *
 * Shapes (level 2, the demo default):
 *   prompt   "47+18-25="
 *   solution "47+18=65\n65-25=40\n\\boxed{40}"   one line "x op y=z" per binary operation, left to right
 *   answer   "40"
 *   id       "L2:47+18-25"                        (level + expression: unique and stable)
 *
 * Every operand and every intermediate result is non-negative: the subtrahend is drawn no larger
 * than the running total. A tiny model then never has to learn a minus sign in results, which the
 * PyTorch feasibility run (issue 6) found makes `a+b-c` learnable from scratch on 2 cores.
 */
import { DataError } from '../errors.ts';
import type { PromptRow } from './dataset.ts';
import { Rng } from './rng.ts';

export interface ArithProblem {
  /** the expression followed by "=", e.g. "47+18-25=" */
  prompt: string;
  /** worked steps, one "x op y=z" line per operation, then `\boxed{answer}` */
  solution: string;
  /** the final value in decimal, e.g. "40" */
  answer: string;
  level: number;
  /** "L<level>:<expression>", e.g. "L2:47+18-25"; the held-out split hashes it */
  id: string;
}

export interface ArithOptions {
  /** difficulty 1..4 (see ARITH_LEVELS), default 2 */
  level?: number;
  seed: number;
}

/** One line per level, for `--help`, reports and the README. */
export const ARITH_LEVELS: Record<number, string> = {
  1: 'a+b with 2-digit a, b',
  2: 'a+b-c with 2-digit a, b, c and c <= a+b (results >= 0)',
  3: 'a+b-c+d with 2-digit a, b, c, d and c <= a+b (results >= 0)',
  4: 'a*b+c with 2-digit a, c and a 1-digit multiplier b in 2..9',
};

export const DEFAULT_ARITH_LEVEL = 2;
/** Character budgets every level keeps (worst cases: "99+99-10+99=" and level 3's 43-char solution). */
export const MAX_PROMPT_CHARS = 16;
export const MAX_SOLUTION_CHARS = 44;
/** Fraction of problem ids in the held-out split, in per mille. */
export const HELDOUT_PER_MILLE = 100;
/** The held-out set's own seed: fixed forever so its problems never change between runs. */
const HELDOUT_SEED = 20250601;

type Op = '+' | '-' | '*';

/** Uniform integer in [lo, hi] (inclusive). */
const uniform = (rng: Rng, lo: number, hi: number): number => lo + rng.nextInt(hi - lo + 1);

function checkLevel(level: number, where: string): void {
  if (!Number.isInteger(level) || !(level in ARITH_LEVELS)) {
    throw new DataError(
      `${where}: level must be one of ${Object.keys(ARITH_LEVELS).join(', ')} (got ${level}); pick a level from ARITH_LEVELS`,
    );
  }
}

/** Build the problem from its first operand and the (op, operand) chain, evaluated left to right. */
function build(level: number, first: number, chain: Array<[Op, number]>): ArithProblem {
  let expr = String(first);
  let acc = first;
  const lines: string[] = [];
  for (const [op, y] of chain) {
    const z = op === '+' ? acc + y : op === '-' ? acc - y : acc * y;
    lines.push(`${acc}${op}${y}=${z}`);
    expr += `${op}${y}`;
    acc = z;
  }
  const answer = String(acc);
  lines.push(`\\boxed{${answer}}`);
  return { prompt: `${expr}=`, solution: lines.join('\n'), answer, level, id: `L${level}:${expr}` };
}

/**
 * One problem of `level`, drawing its operands from `rng`. Level 4 puts the multiplication first
 * (a*b+c), so left-to-right evaluation agrees with operator precedence at every level.
 */
export function makeProblem(rng: Rng, level: number): ArithProblem {
  checkLevel(level, 'makeProblem');
  const a = uniform(rng, 10, 99);
  if (level === 4)
    return build(4, a, [
      ['*', uniform(rng, 2, 9)],
      ['+', uniform(rng, 10, 99)],
    ]);
  const b = uniform(rng, 10, 99);
  if (level === 1) return build(1, a, [['+', b]]);
  // c ≤ a+b keeps a+b-c ≥ 0; a+b ≥ 20, so the range [10, min(99, a+b)] is never empty.
  const c = uniform(rng, 10, Math.min(99, a + b));
  if (level === 2)
    return build(2, a, [
      ['+', b],
      ['-', c],
    ]);
  return build(3, a, [
    ['+', b],
    ['-', c],
    ['+', uniform(rng, 10, 99)],
  ]);
}

/**
 * 32-bit FNV-1a of the id's UTF-16 code units, then the murmur3 finalizer so that ids differing
 * in one digit land far apart (FNV alone leaves the low bits weakly mixed for short strings).
 */
function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** True for the ≈10% of problem ids in the fixed held-out split (depends on the id only). */
export function isHeldOut(p: ArithProblem): boolean {
  return idHash(p.id) % 1000 < HELDOUT_PER_MILLE;
}

/**
 * The fixed held-out set: the first `n` distinct held-out problems drawn from the set's own seed,
 * so `heldOutSet(l, m)` is a prefix of `heldOutSet(l, n)` for m ≤ n, on every machine.
 * Level 1 has only ≈810 held-out problems (90·90 ids × 10%); asking for more is a DataError.
 */
export function heldOutSet(level: number, n: number): ArithProblem[] {
  checkLevel(level, 'heldOutSet');
  if (!Number.isInteger(n) || n < 0) throw new DataError(`heldOutSet: n must be a non-negative integer (got ${n})`);
  const rng = new Rng(HELDOUT_SEED, level);
  const seen = new Set<string>();
  const out: ArithProblem[] = [];
  // Level 1's ≈810 ids are all found well within this many draws (coupon collector: ~8100·ln 8100 ≈ 73k).
  const maxDraws = 200_000 + 100 * n;
  for (let draws = 0; out.length < n; draws++) {
    if (draws >= maxDraws) {
      throw new DataError(
        `heldOutSet: level ${level} yielded only ${out.length} distinct held-out problems in ${maxDraws} draws (asked for ${n}); ask for fewer or use a higher level`,
      );
    }
    const p = makeProblem(rng, level);
    if (!isHeldOut(p) || seen.has(p.id)) continue;
    seen.add(p.id);
    out.push(p);
  }
  return out;
}

/** A seeded infinite stream of training problems; held-out ids are skipped, so none ever appears. */
export function trainStream(seed: number, level: number): () => ArithProblem {
  checkLevel(level, 'trainStream');
  // stream = level: the same seed gives unrelated draws at different levels.
  const rng = new Rng(seed, level);
  return () => {
    for (;;) {
      const p = makeProblem(rng, level);
      if (!isHeldOut(p)) return p;
    }
  };
}

/** Problems as dataset rows: the gold answer plus solution/level/id for SFT targets and reports. */
export function arithRows(problems: ArithProblem[]): PromptRow[] {
  return problems.map((p) => ({
    prompt: p.prompt,
    answer: p.answer,
    fields: { solution: p.solution, level: p.level, id: p.id },
  }));
}
