/**
 * @module rewards/math-verify/expr
 * Exact judgement of one parsed scalar expression (MathJSON from latex-parse.ts):
 *   - `exactValue`: BigInt rationals, with every intermediate size bounded (MAX_BITS); a power
 *     too large to build becomes an integer *tower* (base, exponent) compared structurally;
 *   - helpers the comparison needs: literals, free symbols, uninterpreted function names,
 *     whether a decimal was written, infinities.
 * Numerical evaluation (for identities with sqrt, pi, trig, logs or variables) is numeric.ts.
 */
import * as R from './rational.ts';
import type { Rat } from './rational.ts';
import type { Json } from './latex-parse.ts';

export { parseExpr } from './latex-parse.ts';
export type { Json } from './latex-parse.ts';
export { NumericError } from './complex.ts';

// ---------------------------------------------------------------------------------------------
// Exact evaluation

/** An exact value: a rational, or a huge integer power b^e (b > 1 not itself a perfect power). */
export type Exact =
  { kind: 'rat'; v: Rat; decimal: boolean } | { kind: 'tower'; sign: 1 | -1; base: bigint; exp: bigint };

const SYMBOL_CONST = new Set([
  'Pi',
  'ExponentialE',
  'e',
  'i',
  'ImaginaryUnit',
  'PositiveInfinity',
  'NegativeInfinity',
  'ComplexInfinity',
]);

/** A number literal's exact value and whether it was written as a decimal, else null. */
export function numLiteral(j: Json): { v: Rat; decimal: boolean } | null {
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
  const guard = (v: Rat, decimal: boolean): Exact | null =>
    R.ratBits(v) > R.MAX_BITS * 2 ? null : { kind: 'rat', v, decimal };
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
      return guard(
        v,
        rs.some((r) => r.decimal),
      );
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
      const n =
        head === 'Sqrt'
          ? 2n
          : (() => {
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
      const n = rs[0]!.v.num,
        k = rs[1]!.v.num;
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
  const rn = root(neg ? -a.num : a.num),
    rd = root(a.den);
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

/** Free symbols (variables) of an expression: constants and uninterpreted function names excluded. */
export function freeSymbols(j: Json, out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 200) return out;
  if (typeof j === 'string') {
    if (!SYMBOL_CONST.has(j) && !j.startsWith("'") && j !== 'Exp' && j !== 'Half') out.add(j);
  } else if (Array.isArray(j)) {
    for (let k = j[0] === 'OpaqueCall' ? 2 : 1; k < j.length; k++) freeSymbols(j[k]!, out, depth + 1);
    if (Array.isArray(j[0])) freeSymbols(j[0], out, depth + 1);
  }
  return out;
}

/** Names of the uninterpreted functions called (`f`, `F_`, `I`): both sides must call the same ones. */
export function opaqueNames(j: Json, out = new Set<string>(), depth = 0): Set<string> {
  if (!Array.isArray(j) || depth > 200) return out;
  if (j[0] === 'OpaqueCall') out.add(String(j[1]));
  for (let k = 1; k < j.length; k++) opaqueNames(j[k]!, out, depth + 1);
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
