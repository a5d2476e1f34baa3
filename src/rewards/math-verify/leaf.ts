/**
 * @module rewards/math-verify/leaf
 * Equality of two scalar answers ("leaves" of the structure tree), each step only when the
 * previous one could not decide:
 *   1. identical normalised strings (so `9^{9^{9}}` equals itself without arithmetic);
 *   2. exact values: BigInt rationals, or integer towers compared as (base, exponent) pairs.
 *      When either side was written as a decimal both are rounded to `floatRounding` places
 *      (Math-Verify's `float_rounding=6`), but to that many significant digits below 1, and a
 *      non-zero value never equals 0: `1.6\times10^{-19}` is not `0`, `0.0833333` is `1/12`;
 *   3. the same tree up to commutativity (canon.ts), for what has no numeric value;
 *   4. a numerical identity test at negative, small, large and (when no |x|, floor… is
 *      involved) complex sample points, in complex arithmetic with error bounds (numeric.ts):
 *      `x` ≠ `|x|`, `\sqrt{x^2}` ≠ `x`, `\ln x` ≠ `\ln|x|`, while `(x+1)^2` = `x^2+2x+1`.
 * Anything undecidable is NOT equal: a false negative costs a reward, a false positive teaches cheating.
 */
import { compactKey } from './normalize.ts';
import { exactValue, freeSymbols, hasDecimal, isInfinity, opaqueNames, parseExpr } from './expr.ts';
import type { Exact, Json } from './expr.ts';
import { canonKey } from './canon.ts';
import { evalAt, realOnly, sampleValue, trialCount, NumericError } from './numeric.ts';
import type { CVal } from './complex.ts';
import { mag, within } from './complex.ts';
import * as R from './rational.ts';
import type { Rat } from './rational.ts';

/** How two answers are compared (verify.ts fills in the defaults). */
export interface CompareOptions {
  /** Decimal places a written decimal is compared to (significant digits below 1). Default 6. */
  floatRounding: number;
  /** Also accept a relation prediction against a set/interval gold (`x \in [-2,7]` vs `-2 \le x \le 7`). Default false. */
  allowSetRelationComp: boolean;
}

export const DEFAULT_COMPARE: CompareOptions = { floatRounding: 6, allowSetRelationComp: false };

/** Results whose error bound exceeds this fraction of their size are refused (cancellation ate them). */
const MAX_REL_ERR = 1e-11;

interface Leaf {
  json: Json | null;
  exact: Exact | null;
  decimal: boolean;
  inf: 1 | -1 | 0;
}

const leafCache = new Map<string, Leaf>();

function leafInfo(s: string): Leaf {
  const hit = leafCache.get(s);
  if (hit) return hit;
  const info = computeLeaf(s);
  if (leafCache.size > 2000) leafCache.clear();
  leafCache.set(s, info);
  return info;
}

function computeLeaf(s: string): Leaf {
  const key = compactKey(s);
  // Fast path for plain numbers: no parser needed.
  if (/^-?\d+(\.\d+)?$/.test(key)) {
    const v = R.parseDecimal(key)!;
    const decimal = key.includes('.') && !R.isInt(v);
    return { json: null, exact: { kind: 'rat', v, decimal }, decimal, inf: 0 };
  }
  if (/^[+-]?\\infty$|^[+-]?(infinity|inf|oo)$/i.test(key))
    return { json: null, exact: null, decimal: false, inf: key.startsWith('-') ? -1 : 1 };
  // A mixed number `2\frac{1}{2}` means 5/2 to a reader.
  const mixed = /^(-?)(\d+)\\frac\{?(\d+)\}?\{?(\d+)\}?$/.exec(key);
  if (mixed && mixed[4] !== '0' && BigInt(mixed[3]!) < BigInt(mixed[4]!)) {
    const v = R.add(R.rat(BigInt(mixed[2]!)), R.rat(BigInt(mixed[3]!), BigInt(mixed[4]!)));
    return { json: null, exact: { kind: 'rat', v: mixed[1] ? R.neg(v) : v, decimal: false }, decimal: false, inf: 0 };
  }
  let json: Json;
  try {
    json = parseExpr(s);
  } catch {
    return { json: null, exact: null, decimal: false, inf: 0 };
  }
  const inf = isInfinity(json);
  return { json, exact: inf ? null : exactValue(json), decimal: hasDecimal(json), inf };
}

/** floor(log10(|a|)) of a non-zero rational, exactly. */
function log10Floor(a: Rat): number {
  const n = a.num < 0n ? -a.num : a.num;
  let e = n.toString().length - a.den.toString().length;
  const atLeast = (k: number) => (k >= 0 ? n >= a.den * 10n ** BigInt(k) : n * 10n ** BigInt(-k) >= a.den);
  while (!atLeast(e)) e--;
  while (atLeast(e + 1)) e++;
  return e;
}

/** Decimal places used for two values of magnitude about 10^e: `places`, or that many significant digits below 1. */
const placesFor = (e: number, places: number): number => (e >= 0 ? places : places - 1 - e);

/** Equality of two rationals when one was written as a decimal (see the module note). */
export function decimalsEqual(a: Rat, b: Rat, places: number): boolean {
  if (R.eq(a, b)) return true;
  if (a.num === 0n || b.num === 0n) return false; // never a non-zero value equal to 0
  const abs = (x: Rat) => (x.num < 0n ? R.neg(x) : x);
  const e = log10Floor(R.cmp(abs(a), abs(b)) >= 0 ? a : b);
  if (e < -300) return false;
  const p = placesFor(e, places);
  return R.eq(R.roundTo(a, p), R.roundTo(b, p));
}

function exactEqual(a: Exact, b: Exact, decimal: boolean, places: number): boolean {
  if (a.kind === 'rat' && b.kind === 'rat') return decimal ? decimalsEqual(a.v, b.v, places) : R.eq(a.v, b.v);
  if (a.kind === 'tower' && b.kind === 'tower') return a.sign === b.sign && a.base === b.base && a.exp === b.exp;
  return false; // a tower is never equal to a number we could build
}

/** The double version of decimalsEqual, for values known only numerically (`\pi` vs `3.141593`). */
function roundedEqual(x: number, y: number, err: number, places: number): boolean {
  const m = Math.max(Math.abs(x), Math.abs(y));
  if (m <= 16 * err) return true; // both zero within their errors
  if (x === 0 || y === 0) return false;
  const p = placesFor(Math.floor(Math.log10(m)), places);
  const scale = 10 ** p;
  if (m * scale > 9e15) return Math.abs(x - y) <= 16 * err + 1e-12 * m;
  if (err * scale > 0.01) return false; // the value is not known to that many places
  return Math.round(x * scale) === Math.round(y * scale);
}

/** Beyond 2^53 doubles no longer hold integers: `\sqrt{10^{40}+1}` and `10^{20}` are the same double. */
const MAX_EXACT_DOUBLE = 2 ** 53;

function close(a: CVal, b: CVal, decimal: boolean, places: number, constant: boolean): boolean {
  const err = a.err + b.err;
  const m = Math.max(mag(a), mag(b));
  if (err > MAX_REL_ERR * Math.max(m, 1)) return false;
  // A constant that large must be decided exactly (or structurally), never by rounding.
  if (constant && !decimal && m > MAX_EXACT_DOUBLE) return false;
  if (!decimal) return within(a, b);
  return roundedEqual(a.re, b.re, err, places) && roundedEqual(a.im, b.im, err, places);
}

const sameSet = (a: Set<string>, b: Set<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

/** Sample points shared by both sides: one per trial, over the union of their variables. */
function* points(ja: Json, jb: Json): Generator<{ vars: Record<string, CVal>; trial: number }> {
  const names = [...new Set([...freeSymbols(ja), ...freeSymbols(jb)])].sort();
  const constant = names.length === 0 && opaqueNames(ja).size === 0 && opaqueNames(jb).size === 0;
  const complexPoint = names.length > 0 && !realOnly(ja) && !realOnly(jb);
  const n = constant ? 1 : trialCount(complexPoint);
  for (let t = 0; t < n; t++) {
    const vars: Record<string, CVal> = {};
    names.forEach((name, k) => (vars[name] = sampleValue(t, k, complexPoint)));
    yield { vars, trial: t };
  }
}

/** Values of both sides at each point where at least one is defined; null when only one side is defined somewhere. */
function pairs(ja: Json, jb: Json): [CVal, CVal][] | null {
  if (!sameSet(opaqueNames(ja), opaqueNames(jb))) return null;
  const out: [CVal, CVal][] = [];
  for (const p of points(ja, jb)) {
    const a = tryEval(ja, p),
      b = tryEval(jb, p);
    if (a === null && b === null) continue;
    if (a === null || b === null) return null; // defined on one side only: different functions
    out.push([a, b]);
  }
  return out;
}

function tryEval(j: Json, p: { vars: Record<string, CVal>; trial: number }): CVal | null {
  try {
    return evalAt(j, p);
  } catch (e) {
    if (e instanceof NumericError) return null;
    throw e;
  }
}

function numericEqual(ja: Json, jb: Json, decimal: boolean, places: number): boolean {
  const ps = pairs(ja, jb);
  if (!ps || ps.length === 0) return false;
  const constant = freeSymbols(ja).size + freeSymbols(jb).size + opaqueNames(ja).size === 0;
  if (!constant && ps.length < 2) return false;
  return ps.every(([a, b]) => close(a, b, decimal, places, constant));
}

/**
 * The constant c with a = c·b everywhere (both sides of an equation or relation moved to one
 * side), from the sample points; null when there is none or the sides have no variables.
 */
export function proportionality(as: string, bs: string): { re: number; im: number } | null {
  const a = leafInfo(as),
    b = leafInfo(bs);
  if (!a.json || !b.json) return null;
  if (freeSymbols(a.json).size + freeSymbols(b.json).size === 0) return null;
  const ps = pairs(a.json, b.json);
  if (!ps) return null;
  let c: { re: number; im: number } | null = null;
  let n = 0;
  for (const [x, y] of ps) {
    const ex = x.err + 1e-300,
      ey = y.err + 1e-300;
    const zx = mag(x) <= 16 * ex,
      zy = mag(y) <= 16 * ey;
    if (zx && zy) continue;
    if (zx || zy || x.err > MAX_REL_ERR * mag(x) || y.err > MAX_REL_ERR * mag(y)) return null;
    const d = y.re * y.re + y.im * y.im;
    const r = { re: (x.re * y.re + x.im * y.im) / d, im: (x.im * y.re - x.re * y.im) / d };
    if (c && Math.hypot(r.re - c.re, r.im - c.im) > 1e-8 * Math.hypot(c.re, c.im)) return null;
    c ??= r;
    n++;
  }
  return n >= 2 ? c : null;
}

function isWord(s: string): boolean {
  return /[a-zA-Z]{3,}/.test(s.replace(/\\[a-zA-Z]+/g, ' '));
}

function ratJson(e: Exact): Json {
  if (e.kind !== 'rat') return 'Nothing';
  return ['Divide', { num: e.v.num.toString() }, { num: e.v.den.toString() }];
}

/** Scalar equality of two leaf strings (gold first). */
export function leafEqual(as: string, bs: string, o: CompareOptions = DEFAULT_COMPARE): boolean {
  if (compactKey(as) === compactKey(bs)) return true;
  // Words (`Evelyn`, `odd`) are names, not products of symbols: "dog" must not equal "god".
  if (isWord(as) || isWord(bs)) return compactKey(as).toLowerCase() === compactKey(bs).toLowerCase();
  const a = leafInfo(as),
    b = leafInfo(bs);
  if (a.inf || b.inf) return a.inf === b.inf && a.inf !== 0;
  const decimal = a.decimal || b.decimal;
  if (a.exact && b.exact) return exactEqual(a.exact, b.exact, decimal, o.floatRounding);
  if (a.exact?.kind === 'tower' || b.exact?.kind === 'tower') return false;
  if ((!a.json && !a.exact) || (!b.json && !b.exact)) return false;
  const ja: Json = a.json ?? ratJson(a.exact!);
  const jb: Json = b.json ?? ratJson(b.exact!);
  if (canonKey(ja) === canonKey(jb)) return true;
  return numericEqual(ja, jb, decimal, o.floatRounding);
}
