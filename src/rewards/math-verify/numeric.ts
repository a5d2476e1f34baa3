/**
 * @module rewards/math-verify/numeric
 * Numerical evaluation of a MathJSON expression at one sample point, in complex doubles with
 * error bounds (complex.ts). Free variables take the point's values; an uninterpreted function
 * call (`f(x)`, `F_{n-k-1}`, `I(0)`, see expr.ts `OpaqueCall`) takes a fixed pseudo-random
 * value of its name and arguments, so equal calls agree and `F_k F_{n-k-1}` equals
 * `F_{n-k-1} F_k` while `f(x)` differs from `f(y)`. Anything we cannot evaluate (a sum with a
 * symbolic bound, a string) throws NumericError and the caller decides.
 */
import * as C from './complex.ts';
import type { CVal } from './complex.ts';
import { numLiteral } from './expr.ts';
import type { Json } from './expr.ts';
import * as R from './rational.ts';

export { NumericError } from './complex.ts';

/** One sample point: values of the free variables, and the index that also varies opaque calls. */
export interface Point {
  vars: Record<string, CVal>;
  trial: number;
}

/** Real sample values: negative, small, moderate and large, irregular so no identity holds by accident. */
const REAL_SAMPLES = [-1.3721, 0.5772, 2.7183, 11.318, -6.2017, 0.8415];
/** One complex point, used only for expressions without Abs/floor-like functions (see leaf.ts). */
const COMPLEX_SAMPLE: CVal = { re: 0.6123, im: 0.7941, err: 0 };

/** Value of variable number `k` at trial `t` (distinct variables get distinct values). */
export function sampleValue(t: number, k: number, complexPoint: boolean): CVal {
  if (complexPoint && t === REAL_SAMPLES.length)
    return { re: COMPLEX_SAMPLE.re + 0.173 * k, im: COMPLEX_SAMPLE.im - 0.061 * k, err: 0 };
  const base = REAL_SAMPLES[(t + 2 * k) % REAL_SAMPLES.length]!;
  return { re: base * (1 + 0.0917 * k) + 0.031 * k, im: 0, err: 0 };
}

export const trialCount = (complexPoint: boolean): number => REAL_SAMPLES.length + (complexPoint ? 1 : 0);

function hash(s: string): number {
  let h = 2166136261;
  for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 16777619) >>> 0;
  return h;
}

/** An uninterpreted function's value: smooth in its arguments, different per name and per trial. */
function opaque(name: string, args: CVal[], p: Point): CVal {
  const h = hash(name);
  const c = 0.7 + (h % 997) / 1000,
    d = ((h >>> 10) % 991) / 300;
  let r = sampleValue(p.trial, 3 + (h % 5), false);
  for (let k = 0; k < args.length; k++) {
    const arg = C.add(C.mul(C.real(c + 0.11 * k), args[k]!), C.real(d + k));
    r = C.mul(r, C.add(C.real(1.3), C.mul(C.real(0.5), C.sin(arg))));
  }
  return r;
}

const TRIG: Record<string, (a: CVal) => CVal> = {
  Sin: C.sin,
  Cos: C.cos,
  Tan: (a) => C.div(C.sin(a), C.cos(a)),
  Cot: (a) => C.div(C.cos(a), C.sin(a)),
  Sec: (a) => C.div(C.ONE, C.cos(a)),
  Csc: (a) => C.div(C.ONE, C.sin(a)),
  Arcsin: C.asin,
  Arccos: C.acos,
  Arctan: C.atan,
  Arccot: (a) => C.atan(C.div(C.ONE, a)),
  Sinh: C.sinh,
  Cosh: C.cosh,
  Tanh: (a) => C.div(C.sinh(a), C.cosh(a)),
};
const INVERSE: Record<string, string> = { Sin: 'Arcsin', Cos: 'Arccos', Tan: 'Arctan', Cot: 'Arccot' };

/** floor/ceil/sign: real only, and refused when the error interval straddles a jump. */
function stepFn(a: CVal, f: (x: number) => number): CVal {
  const x = C.realPart(a);
  if (f(x - a.err) !== f(x + a.err)) C.bad('a step function is too close to its jump');
  return C.real(f(x));
}

function nonNegInt(a: CVal, max: number): number {
  const x = C.realPart(a);
  const n = Math.round(x);
  if (Math.abs(x - n) > 1e-9 || a.err > 0.25 || n < 0 || n > max) C.bad('factorial or binomial of a non-integer');
  return n;
}

/** Value of `j` at point `p`; throws NumericError when undefined. */
export function evalAt(j: Json, p: Point, depth = 0): CVal {
  if (depth > 200) C.bad('expression nested too deeply');
  const lit = numLiteral(j);
  if (lit) return C.real(R.toNumber(lit.v));
  if (typeof j === 'string') {
    switch (j) {
      case 'Pi':
        return C.real(Math.PI);
      case 'e':
      case 'ExponentialE':
        return C.real(Math.E);
      case 'i':
      case 'ImaginaryUnit':
        return C.I;
      case 'Half':
        return C.real(0.5);
    }
    const v = p.vars[j];
    return v ?? C.bad(`no value for "${j}"`);
  }
  if (!Array.isArray(j)) return C.bad();
  const [head, ...args] = j as [Json, ...Json[]];
  const f = (k: number) => evalAt(args[k]!, p, depth + 1);
  if (
    head === 'Apply' &&
    Array.isArray(args[0]) &&
    args[0][0] === 'InverseFunction' &&
    typeof args[0][1] === 'string' &&
    INVERSE[args[0][1]]
  ) {
    return TRIG[INVERSE[args[0][1]]!]!(f(1));
  }
  switch (head) {
    case 'OpaqueCall':
      return opaque(
        String(args[0]),
        args.slice(1).map((_, k) => f(k + 1)),
        p,
      );
    case 'Delimiter':
      return args.length === 1 ? f(0) : C.bad();
    case 'Negate':
      return C.neg(f(0));
    case 'Add': {
      let r: CVal = { re: 0, im: 0, err: 0 };
      for (let k = 0; k < args.length; k++) r = C.add(r, f(k));
      return r;
    }
    case 'Subtract':
      return C.sub(f(0), f(1));
    case 'Multiply':
    case 'InvisibleOperator': {
      // `\exp(x)` arrives as InvisibleOperator("Exp", Delimiter(x)).
      if (args[0] === 'Exp' && args.length === 2) return C.exp(f(1));
      let r = C.ONE;
      for (let k = 0; k < args.length; k++) r = C.mul(r, f(k));
      return r;
    }
    case 'Divide':
    case 'Rational':
      return C.div(f(0), f(1));
    case 'Power':
      if (args[0] === 'e' || args[0] === 'ExponentialE') return C.exp(f(1));
      return C.pow(f(0), f(1));
    case 'Sqrt':
      return C.sqrt(f(0));
    case 'Root':
      return C.root(f(0), f(1));
    case 'Exp':
      return C.exp(f(0));
    case 'Ln':
      return C.log(f(0));
    case 'Log':
    case 'Lb': {
      const base = head === 'Lb' ? C.real(2) : args.length > 1 ? f(1) : C.real(10);
      return C.div(C.log(f(0)), C.log(base));
    }
    case 'Abs': {
      const a = f(0);
      return C.mk(C.mag(a), 0, a.err);
    }
    case 'Degrees':
      return C.mul(f(0), C.real(Math.PI / 180));
    case 'Floor':
      return stepFn(f(0), Math.floor);
    case 'Ceil':
      return stepFn(f(0), Math.ceil);
    case 'Sign':
      return stepFn(f(0), Math.sign);
    case 'Factorial': {
      const n = nonNegInt(f(0), 170);
      let v = 1;
      for (let k = 2; k <= n; k++) v *= k;
      return C.real(v);
    }
    case 'Binomial': {
      const n = nonNegInt(f(0), 1000),
        k = nonNegInt(f(1), 1000);
      let v = 1;
      for (let t = 1; t <= k; t++) v = (v * (n - k + t)) / t;
      return C.real(k > n ? 0 : Math.round(v));
    }
  }
  if (typeof head === 'string' && TRIG[head]) return TRIG[head](f(0));
  return C.bad(`cannot evaluate ${typeof head === 'string' ? head : 'this expression'}`);
}

/** Heads that are not holomorphic: a complex sample point would reject true real identities (|x|² = x²). */
const REAL_ONLY = new Set(['Abs', 'Floor', 'Ceil', 'Sign', 'Factorial', 'Binomial', 'Max', 'Min', 'Mod', 'Round']);

export function realOnly(j: Json, depth = 0): boolean {
  if (!Array.isArray(j) || depth > 200) return false;
  if (typeof j[0] === 'string' && REAL_ONLY.has(j[0])) return true;
  return j.some((x, k) => k > 0 && realOnly(x, depth + 1));
}
