/**
 * @module rewards/math-verify/expr
 * One scalar expression: parsed by `@cortex-js/compute-engine` 0.27.0 in its NON-canonical form
 * (canonicalisation evaluates, and `9^{9^{9}}` then never returns), then judged by our own
 * evaluators over the MathJSON tree:
 *   - `exactValue`: BigInt rationals, with every intermediate size bounded (MAX_BITS); a power
 *     too large to build becomes an integer *tower* (base, exponent) compared structurally;
 *   - `floatValue`: complex doubles at sample points for expressions with sqrt, pi, trig, logs or
 *     free variables (a numerical identity test). It reports `bad` when a value overflowed or
 *     an intermediate was so large that the result cannot be trusted, and the caller then
 *     refuses the equality instead of accepting it.
 */
import { ComputeEngine } from '@cortex-js/compute-engine';
import * as R from './rational.ts';
import type { Rat } from './rational.ts';

/** MathJSON as compute-engine emits it: numbers, symbols / 'strings', `{num}` objects, [head, ...args]. */
export type Json = number | string | { num: string } | Json[];

let engine: ComputeEngine | null = null;
const cache = new Map<string, Json>();

/** Parses one expression (non-canonical); throws on a LaTeX syntax error compute-engine reports. */
export function parseExpr(latex: string): Json {
  const hit = cache.get(latex);
  if (hit !== undefined) return hit;
  engine ??= new ComputeEngine();
  const src = rewriteForParser(latex);
  const json = fixup(engine.parse(src, { canonical: false }).json as Json, 0);
  if (containsError(json)) throw new Error(`cannot parse "${latex.slice(0, 80)}"`);
  if (cache.size > 5000) cache.clear();
  cache.set(latex, json);
  return json;
}

/** Constructs compute-engine 0.27 does not parse, rewritten to ones it does. */
function rewriteForParser(s: string): string {
  return s
    .replace(/\\binom\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, '\\operatorname{Binomial}($1,$2)')
    .replace(/\\arc(sin|cos|tan)/g, '\\arc$1')
    .replace(/\\operatorname\{(arc\w+|sgn)\}/g, '\\$1');
}

/** `Binomial(a,b)` arrives as InvisibleOperator("Binomial", Delimiter(Sequence(a,b))): make it a call. */
function fixup(j: Json, depth: number): Json {
  if (!Array.isArray(j) || depth > 300) return j;
  const d = j[2];
  if (j[0] === 'InvisibleOperator' && j[1] === 'Binomial' && j.length === 3 && Array.isArray(d) && d[0] === 'Delimiter' && Array.isArray(d[1]) && d[1][0] === 'Sequence' && d[1].length === 3) {
    return ['Binomial', fixup(d[1][1]!, depth + 1), fixup(d[1][2]!, depth + 1)];
  }
  return j.map((x, k) => (k === 0 ? x : fixup(x, depth + 1)));
}

function containsError(j: Json): boolean {
  if (Array.isArray(j)) {
    if (j[0] === 'Error' || j[0] === 'LatexString') return true;
    return j.some(containsError);
  }
  return j === 'Nothing';
}

// ---------------------------------------------------------------------------------------------
// Exact evaluation

/** An exact value: a rational, or a huge integer power b^e (b > 1 not itself a perfect power). */
export type Exact = { kind: 'rat'; v: Rat; decimal: boolean } | { kind: 'tower'; sign: 1 | -1; base: bigint; exp: bigint };

const SYMBOL_CONST = new Set(['Pi', 'ExponentialE', 'e', 'i', 'ImaginaryUnit', 'PositiveInfinity', 'NegativeInfinity', 'ComplexInfinity']);

function numLiteral(j: Json): { v: Rat; decimal: boolean } | null {
  if (typeof j === 'number') {
    if (!Number.isFinite(j)) return null;
    const s = Number.isInteger(j) && Math.abs(j) > 1e15 ? BigInt(j).toString() : String(j);
    const v = R.parseDecimal(s);
    return v ? { v, decimal: !Number.isInteger(j) } : null;
  }
  if (typeof j === 'object' && !Array.isArray(j) && typeof j.num === 'string') {
    const s = j.num.replace(/\(\d+\)$/, '');
    const v = R.parseDecimal(s);
    return v ? { v, decimal: /[.eE]/.test(s) && !R.isInt(v) } : null;
  }
  return null;
}

/** Smallest r with r^k = n (n > 1), as [r, k]. */
function perfectPowerRoot(n: bigint): [bigint, bigint] {
  if (R.bitLength(n) > 53) return [n, 1n];
  const x = Number(n);
  for (let k = Math.floor(Math.log2(x)); k >= 2; k--) {
    const r = Math.round(x ** (1 / k));
    if (r > 1 && BigInt(r) ** BigInt(k) === n) {
      const [r2, k2] = perfectPowerRoot(BigInt(r));
      return [r2, k2 * BigInt(k)];
    }
  }
  return [n, 1n];
}

function asRat(e: Exact | null): { v: Rat; decimal: boolean } | null {
  return e && e.kind === 'rat' ? e : null;
}

/** Exact value of an expression without free symbols, or null (irrational, symbolic, too large). */
export function exactValue(j: Json, depth = 0): Exact | null {
  if (depth > 200) return null;
  const lit = numLiteral(j);
  if (lit) return { kind: 'rat', ...lit };
  if (!Array.isArray(j)) return null;
  const [head, ...args] = j as [string, ...Json[]];
  const sub = (k: number) => exactValue(args[k]!, depth + 1);
  const rats = () => {
    const out: { v: Rat; decimal: boolean }[] = [];
    for (const a of args) {
      const r = asRat(exactValue(a, depth + 1));
      if (!r) return null;
      out.push(r);
    }
    return out;
  };
  const guard = (v: Rat, decimal: boolean): Exact | null => (R.ratBits(v) > R.MAX_BITS * 2 ? null : { kind: 'rat', v, decimal });
  switch (head) {
    case 'Delimiter':
      return args.length === 1 ? sub(0) : null;
    case 'Negate': {
      const a = sub(0);
      if (!a) return null;
      return a.kind === 'rat' ? { ...a, v: R.neg(a.v) } : { ...a, sign: a.sign === 1 ? -1 : 1 };
    }
    case 'Add':
    case 'Multiply':
    case 'InvisibleOperator': {
      if (args.length === 1) return sub(0);
      const rs = rats();
      if (!rs) return null;
      let v = head === 'Add' ? R.ZERO : R.ONE;
      for (const r of rs) {
        v = head === 'Add' ? R.add(v, r.v) : R.mul(v, r.v);
        if (R.ratBits(v) > R.MAX_BITS * 2) return null;
      }
      return guard(v, rs.some((r) => r.decimal));
    }
    case 'Subtract': {
      const rs = rats();
      if (!rs || rs.length !== 2) return null;
      return guard(R.sub(rs[0]!.v, rs[1]!.v), rs[0]!.decimal || rs[1]!.decimal);
    }
    case 'Divide':
    case 'Rational': {
      const rs = rats();
      if (!rs || rs.length !== 2 || rs[1]!.v.num === 0n) return null;
      return guard(R.div(rs[0]!.v, rs[1]!.v), rs[0]!.decimal || rs[1]!.decimal);
    }
    case 'Sqrt':
    case 'Root': {
      const a = asRat(sub(0));
      const n = head === 'Sqrt' ? 2n : (() => {
        const r = asRat(sub(1));
        return r && R.isInt(r.v) && r.v.num >= 2n && r.v.num <= 64n ? r.v.num : 0n;
      })();
      if (!a || n === 0n) return null;
      return rootExact(a.v, n, a.decimal);
    }
    case 'Power': {
      const b = asRat(sub(0));
      const e = asRat(sub(1));
      if (!b || !e) return towerOf(args, depth);
      if (R.isInt(e.v)) {
        const p = R.pow(b.v, e.v.num);
        if (p) return { kind: 'rat', v: p, decimal: b.decimal || e.decimal };
        return towerOf(args, depth);
      }
      // b^(p/q): exact only when the q-th root is rational.
      if (e.v.den <= 64n) {
        const root = rootExact(b.v, e.v.den, b.decimal);
        if (root && root.kind === 'rat') {
          const p = R.pow(root.v, e.v.num);
          if (p) return { kind: 'rat', v: p, decimal: root.decimal };
        }
      }
      return null;
    }
    case 'Factorial': {
      const a = asRat(sub(0));
      if (!a || !R.isInt(a.v) || a.v.num < 0n || a.v.num > 300n) return null;
      let v = 1n;
      for (let k = 2n; k <= a.v.num; k++) v *= k;
      return { kind: 'rat', v: R.rat(v), decimal: false };
    }
    case 'Binomial': {
      const rs = rats();
      if (!rs || rs.length !== 2 || !R.isInt(rs[0]!.v) || !R.isInt(rs[1]!.v)) return null;
      const n = rs[0]!.v.num, k = rs[1]!.v.num;
      if (n < 0n || k < 0n || n > 2000n) return null;
      if (k > n) return { kind: 'rat', v: R.ZERO, decimal: false };
      let v = 1n;
      for (let t = 1n; t <= k; t++) v = (v * (n - k + t)) / t;
      return { kind: 'rat', v: R.rat(v), decimal: false };
    }
    case 'Abs': {
      const a = asRat(sub(0));
      return a ? { ...a, kind: 'rat', v: a.v.num < 0n ? R.neg(a.v) : a.v } : null;
    }
    default:
      return null;
  }
}

function rootExact(a: Rat, n: bigint, decimal: boolean): Exact | null {
  if (n === 2n) {
    const r = R.sqrtExact(a);
    return r ? { kind: 'rat', v: r, decimal } : null;
  }
  if (R.ratBits(a) > 2 * R.MAX_BITS) return null;
  const neg = a.num < 0n;
  if (neg && n % 2n === 0n) return null;
  const root = (x: bigint): bigint | null => {
    const g = BigInt(Math.round(Number(x) ** (1 / Number(n))));
    for (const c of [g - 1n, g, g + 1n]) if (c >= 0n && c ** n === x) return c;
    return null;
  };
  const rn = root(neg ? -a.num : a.num), rd = root(a.den);
  if (rn === null || rd === null) return null;
  return { kind: 'rat', v: R.rat(neg ? -rn : rn, rd), decimal };
}

/** b^e with b an integer > 1 and e a positive integer (possibly itself a tower), too large to expand. */
function towerOf(args: Json[], depth: number): Exact | null {
  const b = asRat(exactValue(args[0]!, depth + 1));
  if (!b || !R.isInt(b.v) || b.v.num < 2n) return null;
  const e = exactValue(args[1]!, depth + 1);
  if (!e || e.kind !== 'rat' || !R.isInt(e.v) || e.v.num < 1n) return null;
  const [root, k] = perfectPowerRoot(b.v.num);
  return { kind: 'tower', sign: 1, base: root, exp: e.v.num * k };
}

// ---------------------------------------------------------------------------------------------
// Floating evaluation (complex), for the numerical identity test

/** A complex double plus the largest magnitude met while computing it. */
export interface FVal {
  re: number;
  im: number;
  /** max |intermediate|: when it dwarfs the result, cancellation ate the precision. */
  scale: number;
}

class Bad extends Error {}
const bad = (): never => {
  throw new Bad('numeric evaluation overflowed or is undefined');
};

function mk(re: number, im: number, scale: number): FVal {
  if (!Number.isFinite(re) || !Number.isFinite(im)) bad();
  const m = Math.hypot(re, im);
  return { re, im, scale: Math.max(scale, m) };
}

const cmul = (a: FVal, b: FVal): FVal => mk(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re, Math.max(a.scale, b.scale));
function cdiv(a: FVal, b: FVal): FVal {
  const d = b.re * b.re + b.im * b.im;
  if (d === 0 || Math.hypot(b.re, b.im) < 1e-14 * b.scale) bad();
  return mk((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d, Math.max(a.scale, b.scale));
}
function clog(a: FVal): FVal {
  const m = Math.hypot(a.re, a.im);
  if (m === 0) bad();
  return mk(Math.log(m), Math.atan2(a.im, a.re), a.scale);
}
function cexp(a: FVal): FVal {
  const m = Math.exp(a.re);
  return mk(m * Math.cos(a.im), a.im === 0 ? 0 : m * Math.sin(a.im), a.scale);
}
function cpow(a: FVal, b: FVal): FVal {
  if (b.im === 0 && Number.isInteger(b.re) && Math.abs(b.re) <= 64) {
    let r: FVal = { re: 1, im: 0, scale: 1 };
    for (let k = 0; k < Math.abs(b.re); k++) r = cmul(r, a);
    return b.re < 0 ? cdiv({ re: 1, im: 0, scale: 1 }, r) : { ...r, scale: Math.max(r.scale, a.scale) };
  }
  if (a.im === 0 && a.re > 0 && b.im === 0) return mk(a.re ** b.re, 0, Math.max(a.scale, b.scale));
  if (a.re === 0 && a.im === 0) return b.re > 0 ? mk(0, 0, a.scale) : bad();
  return cexp(cmul(b, clog(a)));
}
const real = (x: number): FVal => mk(x, 0, Math.abs(x));

function realOnly(a: FVal, f: (x: number) => number): FVal {
  if (Math.abs(a.im) > 1e-12 * Math.max(1, Math.abs(a.re))) bad();
  return mk(f(a.re), 0, a.scale);
}

const TRIG: Record<string, (x: number) => number> = {
  Sin: Math.sin, Cos: Math.cos, Tan: Math.tan,
  Cot: (x) => 1 / Math.tan(x), Sec: (x) => 1 / Math.cos(x), Csc: (x) => 1 / Math.sin(x),
  Arcsin: Math.asin, Arccos: Math.acos, Arctan: Math.atan, Arccot: (x) => Math.atan(1 / x),
  Sinh: Math.sinh, Cosh: Math.cosh, Tanh: Math.tanh,
  Floor: Math.floor, Ceil: Math.ceil, Sign: Math.sign,
};
const INVERSE: Record<string, string> = { Sin: 'Arcsin', Cos: 'Arccos', Tan: 'Arctan', Cot: 'Arccot' };

/** Numeric value with free symbols bound from `env`; throws (Bad) when undefined or overflowed. */
export function floatValue(j: Json, env: Record<string, number>, depth = 0): FVal {
  if (depth > 200) bad();
  const lit = numLiteral(j);
  if (lit) return real(R.toNumber(lit.v));
  if (typeof j === 'string') {
    switch (j) {
      case 'Pi':
        return real(Math.PI);
      case 'e':
      case 'ExponentialE':
        return real(Math.E);
      case 'i':
      case 'ImaginaryUnit':
        return mk(0, 1, 1);
      case 'Half':
        return real(0.5);
    }
    if (j.startsWith("'")) bad(); // a string literal
    const v = env[j];
    if (v === undefined) bad();
    return real(v!);
  }
  if (!Array.isArray(j)) return bad();
  const [head, ...args] = j as [Json, ...Json[]];
  const f = (k: number) => floatValue(args[k]!, env, depth + 1);
  if (Array.isArray(head) && head[0] === 'InverseFunction' && typeof head[1] === 'string' && INVERSE[head[1]]) {
    return realOnly(f(0), TRIG[INVERSE[head[1]]!]!);
  }
  if (Array.isArray(head) && head[0] === 'Apply') return bad();
  switch (head) {
    case 'Delimiter':
      return args.length === 1 ? f(0) : bad();
    case 'Negate': {
      const a = f(0);
      return { re: -a.re, im: -a.im, scale: a.scale };
    }
    case 'Add': {
      let re = 0, im = 0, scale = 0;
      for (let k = 0; k < args.length; k++) {
        const a = f(k);
        re += a.re;
        im += a.im;
        scale = Math.max(scale, a.scale);
      }
      return mk(re, im, scale);
    }
    case 'Subtract': {
      const a = f(0), b = f(1);
      return mk(a.re - b.re, a.im - b.im, Math.max(a.scale, b.scale));
    }
    case 'Multiply':
    case 'InvisibleOperator': {
      // `\exp(x)` arrives as InvisibleOperator("Exp", Delimiter(x)).
      if (args[0] === 'Exp' && args.length === 2) return cexp(f(1));
      let r: FVal = { re: 1, im: 0, scale: 1 };
      for (let k = 0; k < args.length; k++) r = cmul(r, f(k));
      return r;
    }
    case 'Divide':
    case 'Rational':
      return cdiv(f(0), f(1));
    case 'Power':
      if (args[0] === 'e' || args[0] === 'ExponentialE') return cexp(f(1));
      return cpow(f(0), f(1));
    case 'Sqrt':
      return cpow(f(0), real(0.5));
    case 'Root': {
      const a = f(0), n = f(1);
      // Real odd roots of negatives: ∛(-8) = -2, as a reader means it.
      if (a.im === 0 && a.re < 0 && n.im === 0 && Number.isInteger(n.re) && n.re % 2 === 1) return mk(-((-a.re) ** (1 / n.re)), 0, a.scale);
      return cpow(a, cdiv(real(1), n));
    }
    case 'Exp':
      return cexp(f(0));
    case 'Ln':
      return clog(f(0));
    case 'Log':
    case 'Lb': {
      const base = head === 'Lb' ? real(2) : args.length > 1 ? f(1) : real(10);
      return cdiv(clog(f(0)), clog(base));
    }
    case 'Abs': {
      const a = f(0);
      return mk(Math.hypot(a.re, a.im), 0, a.scale);
    }
    case 'Degrees':
      return cmul(f(0), real(Math.PI / 180));
    case 'Factorial': {
      const a = f(0);
      if (a.im !== 0 || !Number.isInteger(a.re) || a.re < 0 || a.re > 170) bad();
      let v = 1;
      for (let k = 2; k <= a.re; k++) v *= k;
      return real(v);
    }
    case 'Binomial': {
      const n = f(0), k = f(1);
      if (!Number.isInteger(n.re) || !Number.isInteger(k.re) || n.re > 1000) bad();
      let v = 1;
      for (let t = 1; t <= k.re; t++) v = (v * (n.re - k.re + t)) / t;
      return real(v);
    }
  }
  if (typeof head === 'string' && TRIG[head]) return realOnly(f(0), TRIG[head]);
  return bad();
}

/** Free symbols (variables) of an expression, constants excluded. */
export function freeSymbols(j: Json, out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 200) return out;
  if (typeof j === 'string') {
    if (!SYMBOL_CONST.has(j) && !j.startsWith("'") && j !== 'Exp' && j !== 'Half') out.add(j);
  } else if (Array.isArray(j)) {
    for (let k = 1; k < j.length; k++) freeSymbols(j[k]!, out, depth + 1);
    if (Array.isArray(j[0])) freeSymbols(j[0], out, depth + 1);
  }
  return out;
}

/** Whether any literal in the expression was written as a (non-integer) decimal. */
export function hasDecimal(j: Json): boolean {
  const lit = numLiteral(j);
  if (lit) return lit.decimal;
  return Array.isArray(j) && j.some((x, k) => k > 0 && hasDecimal(x));
}

export function isInfinity(j: Json): 1 | -1 | 0 {
  if (j === 'PositiveInfinity') return 1;
  if (j === 'NegativeInfinity') return -1;
  if (Array.isArray(j) && j[0] === 'Negate' && j.length === 2) return (-isInfinity(j[1]!) as 1 | -1 | 0) || 0;
  if (Array.isArray(j) && j[0] === 'Delimiter' && j.length === 2) return isInfinity(j[1]!);
  return 0;
}

export { Bad as NumericError };
