/**
 * @module rewards/math-verify/compare
 * Equivalence of two parsed answers. Structure first (sets unordered, tuples ordered, interval
 * ends and brackets, matrices cell by cell, `x=3` against `3`, inequalities against intervals,
 * `\pm` against a pair), then scalar leaves in this order, each step only when the previous one
 * could not decide:
 *   1. identical normalised strings (so `9^{9^{9}}` equals itself without arithmetic);
 *   2. exact values: BigInt rationals, or integer towers compared as (base, exponent) pairs;
 *      a decimal on either side compares after rounding both to 6 places (Math-Verify's
 *      `float_rounding=6`);
 *   3. a numerical identity test in complex doubles at several sample points (sqrt, pi, trig,
 *      free variables), accepted only when no intermediate overflowed or dwarfed the result.
 * Anything undecidable is NOT equal: a false negative costs a reward, a false positive teaches cheating.
 */
import { compactKey } from './normalize.ts';
import type { Node } from './structure.ts';
import { isSimpleVar, parse } from './structure.ts';
import { exactValue, floatValue, freeSymbols, hasDecimal, isInfinity, parseExpr, NumericError } from './expr.ts';
import type { Exact, FVal, Json } from './expr.ts';
import * as R from './rational.ts';

/** Decimal places both sides are rounded to when either was written as a decimal (Math-Verify default). */
export const FLOAT_ROUNDING = 6;
/** Relative tolerance of the numerical identity test (far below any rounding a reader would do). */
const REL_TOL = 1e-10;
/** Intermediates larger than this times the result mean cancellation: the test is refused. */
const MAX_CANCELLATION = 1e6;

/** Sample points for free variables: irregular, positive, away from 0 and 1 (sqrt/log stay real). */
const SAMPLES = [0.5772156649, 1.6180339887, 2.7182818284 / 1.9, 0.8414709848, 1.4142135623];

interface Leaf {
  key: string;
  json: Json | null;
  exact: Exact | null;
  decimal: boolean;
  inf: 1 | -1 | 0;
}

function leafInfo(s: string): Leaf {
  const key = compactKey(s);
  let json: Json | null = null;
  // Fast path for plain numbers: no parser needed.
  if (/^-?\d+(\.\d+)?$/.test(key)) {
    const v = R.parseDecimal(key)!;
    return { key, json: null, exact: { kind: 'rat', v, decimal: key.includes('.') && !R.isInt(v) }, decimal: key.includes('.') && !R.isInt(v), inf: 0 };
  }
  if (/^[+-]?\\infty$|^[+-]?(infinity|inf|oo)$/i.test(key)) return { key, json: null, exact: null, decimal: false, inf: key.startsWith('-') ? -1 : 1 };
  // A mixed number `2\frac{1}{2}` means 5/2 to a reader.
  const mixed = /^(-?)(\d+)\\frac\{?(\d+)\}?\{?(\d+)\}?$/.exec(key);
  if (mixed && mixed[4] !== '0' && BigInt(mixed[3]!) < BigInt(mixed[4]!)) {
    const v = R.add(R.rat(BigInt(mixed[2]!)), R.rat(BigInt(mixed[3]!), BigInt(mixed[4]!)));
    return { key, json: null, exact: { kind: 'rat', v: mixed[1] ? R.neg(v) : v, decimal: false }, decimal: false, inf: 0 };
  }
  try {
    json = parseExpr(s);
  } catch {
    return { key, json: null, exact: null, decimal: false, inf: 0 };
  }
  const inf = isInfinity(json);
  return { key, json, exact: inf ? null : exactValue(json), decimal: hasDecimal(json), inf };
}

function exactEqual(a: Exact, b: Exact, decimal: boolean): boolean {
  if (a.kind === 'rat' && b.kind === 'rat') {
    if (decimal) return R.eq(R.roundTo(a.v, FLOAT_ROUNDING), R.roundTo(b.v, FLOAT_ROUNDING));
    return R.eq(a.v, b.v);
  }
  if (a.kind === 'tower' && b.kind === 'tower') return a.sign === b.sign && a.base === b.base && a.exp === b.exp;
  return false; // a tower is never equal to a number we could build
}

function closeEnough(a: FVal, b: FVal, decimal: boolean): boolean {
  const m = Math.max(Math.hypot(a.re, a.im), Math.hypot(b.re, b.im));
  const scale = Math.max(a.scale, b.scale);
  if (scale > 1e15) return false; // beyond 2^53: doubles no longer hold integers exactly
  if (decimal) {
    if (m > 1e9) return false;
    const r = (x: number) => Math.round(x * 10 ** FLOAT_ROUNDING);
    return r(a.re) === r(b.re) && r(a.im) === r(b.im);
  }
  const d = Math.hypot(a.re - b.re, a.im - b.im);
  if (m < 1e-9 * Math.max(1, scale)) return scale <= MAX_CANCELLATION && d <= 1e-12 * Math.max(1, scale); // both ~0
  if (scale > MAX_CANCELLATION * m) return false;
  return d <= REL_TOL * m;
}

/** Scalar equality of two leaf strings. */
export function leafEqual(as: string, bs: string): boolean {
  if (compactKey(as) === compactKey(bs)) return true;
  // Words (`Evelyn`, `odd`) are names, not products of symbols: "dog" must not equal "god".
  if (isWord(as) || isWord(bs)) return compactKey(as).toLowerCase() === compactKey(bs).toLowerCase();
  const a = leafInfo(as), b = leafInfo(bs);
  if (a.key === b.key) return true;
  if (a.inf || b.inf) return a.inf === b.inf && a.inf !== 0;
  const decimal = a.decimal || b.decimal;
  if (a.exact && b.exact) return exactEqual(a.exact, b.exact, decimal);
  if (a.exact?.kind === 'tower' || b.exact?.kind === 'tower') return false;
  if (!a.json && !a.exact) return false;
  if (!b.json && !b.exact) return false;
  const ja: Json = a.json ?? ratJson(a.exact!);
  const jb: Json = b.json ?? ratJson(b.exact!);
  // Both sides are evaluated over the union of their variables: sin²x+cos²x equals 1 everywhere.
  const names = [...new Set([...freeSymbols(ja), ...freeSymbols(jb)])].sort();
  const trials = names.length === 0 ? 1 : 3;
  try {
    for (let t = 0; t < trials; t++) {
      const env: Record<string, number> = {};
      names.forEach((n, k) => (env[n] = SAMPLES[(t * 2 + k) % SAMPLES.length]! + 0.11 * k + 0.07 * t));
      if (!closeEnough(floatValue(ja, env), floatValue(jb, env), decimal)) return false;
    }
    return true;
  } catch (e) {
    if (e instanceof NumericError) return false;
    throw e;
  }
}

function isWord(s: string): boolean {
  return /[a-zA-Z]{3,}/.test(s.replace(/\\[a-zA-Z]+/g, ' '));
}

function ratJson(e: Exact): Json {
  if (e.kind !== 'rat') return 'Nothing';
  return ['Divide', { num: e.v.num.toString() }, { num: e.v.den.toString() }];
}

// ---------------------------------------------------------------------------------------------
// Structures

type Eq = Extract<Node, { t: 'eq' }>;

/** The value side of an assignment `x = 3` (or `3 = x`), else null. */
function assignedValue(n: Eq): Node | null {
  const ps = n.parts;
  if (ps.length >= 2 && isSimpleVar(ps[0]!) && !isSimpleVar(ps[ps.length - 1]!)) return parse(ps[ps.length - 1]!);
  if (ps.length === 2 && isSimpleVar(ps[1]!) && !isSimpleVar(ps[0]!)) return parse(ps[0]!);
  // `a+b = 7`: the value stated last.
  if (ps.length >= 2 && !/[a-zA-Z]/.test(ps[ps.length - 1]!.replace(/\\[a-zA-Z]+/g, ''))) return parse(ps[ps.length - 1]!);
  return null;
}

function equationsEqual(a: Eq, b: Eq): boolean {
  if (a.parts.length === b.parts.length && a.parts.every((p, k) => leafEqual(p, b.parts[k]!))) return true;
  if (a.parts.length !== 2 || b.parts.length !== 2) return false;
  const [l1, r1] = a.parts as [string, string];
  const [l2, r2] = b.parts as [string, string];
  if (leafEqual(l1, r2) && leafEqual(r1, l2)) return true;
  // Same equation rearranged: (l1 - r1) = ±(l2 - r2), e.g. y = 2x+1 vs 2x - y + 1 = 0.
  const d1 = `(${l1})-(${r1})`, d2 = `(${l2})-(${r2})`;
  return leafEqual(d1, d2) || leafEqual(d1, `-(${d2})`);
}

function unorderedEqual(xs: Node[], ys: Node[]): boolean {
  if (xs.length !== ys.length) return false;
  const used = new Array<boolean>(ys.length).fill(false);
  outer: for (const x of xs) {
    for (let k = 0; k < ys.length; k++) {
      if (!used[k] && nodesEqual(x, ys[k]!)) {
        used[k] = true;
        continue outer;
      }
    }
    return false;
  }
  return true;
}

const orderedEqual = (xs: Node[], ys: Node[]): boolean => xs.length === ys.length && xs.every((x, k) => nodesEqual(x, ys[k]!));

function pmItems(n: Extract<Node, { t: 'pm' }>): Node[] {
  return [
    { t: 'leaf', s: `${n.a}+(${n.b})` },
    { t: 'leaf', s: `${n.a}-(${n.b})` },
  ];
}

/** A 2-item bracket pair read as an interval: `(a,b]`, `[a,b]`, or `(a,b)` when compared to an interval. */
function asInterval(n: Node): Extract<Node, { t: 'interval' }> | null {
  if (n.t === 'interval') return n;
  if (n.t === 'tuple' && n.items.length === 2) return { t: 'interval', lo: n.items[0]!, hi: n.items[1]!, loClosed: n.open === '[', hiClosed: n.close === ']' };
  return null;
}

/** Structural equality of two parsed answers (gold `a`, prediction `b`). */
export function nodesEqual(a: Node, b: Node): boolean {
  if (a.t === 'leaf' && b.t === 'leaf') return leafEqual(a.s, b.s);
  // Assignments: `x = 3` vs `3`.
  if (a.t === 'eq' && b.t === 'eq') {
    if (equationsEqual(a, b)) return true;
    const va = assignedValue(a), vb = assignedValue(b);
    return isSimpleVar(a.parts[0]!) && isSimpleVar(b.parts[0]!) && a.parts[0]!.trim() === b.parts[0]!.trim() && !!va && !!vb && nodesEqual(va, vb);
  }
  if (a.t === 'eq') {
    const v = assignedValue(a);
    return !!v && v.t !== 'eq' && nodesEqual(v, b);
  }
  if (b.t === 'eq') {
    const v = assignedValue(b);
    return !!v && v.t !== 'eq' && nodesEqual(a, v);
  }
  // A one-element bare list is its element.
  if (a.t === 'set' && a.bare && a.items.length === 1) return nodesEqual(a.items[0]!, b);
  if (b.t === 'set' && b.bare && b.items.length === 1) return nodesEqual(a, b.items[0]!);
  // ± expands to two values.
  if (a.t === 'pm' && b.t === 'pm') return (leafEqual(a.a, b.a) && leafEqual(a.b, b.b)) || unorderedEqual(pmItems(a), pmItems(b));
  if (a.t === 'pm') return nodesEqual({ t: 'set', items: pmItems(a), bare: true }, b);
  if (b.t === 'pm') return nodesEqual(a, { t: 'set', items: pmItems(b), bare: true });
  switch (a.t) {
    case 'set':
      if (b.t === 'set') return unorderedEqual(a.items, b.items);
      // "1, 2" against (1, 2): same values in the same order.
      if (b.t === 'tuple' && a.bare && b.open === '(') return orderedEqual(a.items, b.items);
      return false;
    case 'tuple': {
      if (b.t === 'tuple') {
        if (a.items.length === 2 && (a.open !== b.open || a.close !== b.close)) return false; // (1,2] is not [1,2]
        return orderedEqual(a.items, b.items);
      }
      if (b.t === 'set' && b.bare && a.open === '(') return orderedEqual(a.items, b.items);
      if (b.t === 'interval') return nodesEqual(asInterval(a) ?? a, b);
      if (b.t === 'matrix') return vectorEqual(b, a.items);
      return false;
    }
    case 'interval': {
      const bi = asInterval(b);
      if (bi) return a.loClosed === bi.loClosed && a.hiClosed === bi.hiClosed && nodesEqual(a.lo, bi.lo) && nodesEqual(a.hi, bi.hi);
      if (b.t === 'union' && b.parts.length === 1) return nodesEqual(a, b.parts[0]!);
      return false;
    }
    case 'union':
      if (b.t === 'union') return unorderedEqual(a.parts, b.parts);
      return a.parts.length === 1 && nodesEqual(a.parts[0]!, b);
    case 'matrix':
      if (b.t === 'matrix') return a.rows.length === b.rows.length && a.rows.every((r, k) => orderedEqual(r, b.rows[k]!));
      if (b.t === 'tuple') return vectorEqual(a, b.items);
      return false;
    case 'rel':
      if (b.t !== 'rel') return false;
      return relEqual(a, b);
    case 'leaf':
      if (b.t === 'union' && b.parts.length === 1) return nodesEqual(a, b.parts[0]!);
      if (b.t === 'set' && !b.bare && b.items.length === 1) return false; // {3} is a set, not 3
      return false;
    default:
      return false;
  }
}

/** A one-row or one-column matrix against a tuple. */
function vectorEqual(m: Extract<Node, { t: 'matrix' }>, items: Node[]): boolean {
  const cells = m.rows.length === 1 ? m.rows[0]! : m.rows.every((r) => r.length === 1) ? m.rows.map((r) => r[0]!) : null;
  return !!cells && orderedEqual(cells, items);
}

const FLIP: Record<string, string> = { '<': '>', '>': '<', '\\le': '\\ge', '\\ge': '\\le', '\\ne': '\\ne' };

function relEqual(a: Extract<Node, { t: 'rel' }>, b: Extract<Node, { t: 'rel' }>): boolean {
  if (a.parts.length !== b.parts.length) return false;
  const same = a.ops.every((o, k) => o === b.ops[k]) && a.parts.every((p, k) => leafEqual(p, b.parts[k]!));
  if (same) return true;
  const n = b.parts.length;
  return a.ops.every((o, k) => FLIP[o] === b.ops[b.ops.length - 1 - k]) && a.parts.every((p, k) => leafEqual(p, b.parts[n - 1 - k]!));
}
