/**
 * @module rewards/math-verify/complex
 * Complex doubles that carry a bound on their own rounding error (`err`, absolute). The
 * numerical identity test needs both: complex arithmetic because answers are sampled at
 * negative points (`\sqrt{x}` at x = -1.37 is imaginary, `\ln x` has an imaginary part π), and
 * an error bound because "equal up to rounding" must not be confused with "tiny": the old test
 * called anything below 1e-9 zero, so `1.6\times10^{-19}` equalled 0. Here two values are equal
 * only when they differ by less than their propagated errors, and a result whose error is large
 * (catastrophic cancellation, `(\sqrt2+10^{20})-10^{20}`) is refused rather than trusted.
 *
 * Every operation propagates a first-order bound and adds its own rounding (`U`·|result|).
 * Branch cuts: a value whose imaginary part is within its error of 0 is snapped onto the real
 * axis before `log`/`sqrt`/`pow`, so roundoff cannot move it across the cut and flip a sign.
 */

/** A complex value with an absolute error bound. */
export interface CVal {
  re: number;
  im: number;
  err: number;
}

/** Thrown when a value is undefined, overflowed, or too uncertain to use (division by ~0, log of ~0). */
export class NumericError extends Error {}

/** Rounding of one double operation, with margin (2^-52 ≈ 2.2e-16). */
export const U = 2.5e-16;

export function bad(why = 'numeric evaluation is undefined or overflowed'): never {
  throw new NumericError(why);
}

export const mag = (a: CVal): number => Math.hypot(a.re, a.im);

export function mk(re: number, im: number, err: number): CVal {
  if (!Number.isFinite(re) || !Number.isFinite(im) || !Number.isFinite(err)) bad();
  return { re, im, err: err + U * Math.hypot(re, im) };
}

/** A real literal; exact integers below 2^53 carry no error. */
export function real(x: number): CVal {
  if (!Number.isFinite(x)) bad();
  return { re: x, im: 0, err: Number.isInteger(x) && Math.abs(x) < 2 ** 53 ? 0 : U * Math.abs(x) };
}

export const I: CVal = { re: 0, im: 1, err: 0 };
export const ONE: CVal = { re: 1, im: 0, err: 0 };

export const add = (a: CVal, b: CVal): CVal => mk(a.re + b.re, a.im + b.im, a.err + b.err);
export const sub = (a: CVal, b: CVal): CVal => mk(a.re - b.re, a.im - b.im, a.err + b.err);
export const neg = (a: CVal): CVal => ({ re: -a.re, im: -a.im, err: a.err });

export function mul(a: CVal, b: CVal): CVal {
  return mk(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re, mag(a) * b.err + mag(b) * a.err + a.err * b.err);
}

export function div(a: CVal, b: CVal): CVal {
  const mb = mag(b);
  // A divisor that may be zero within its error: the quotient is unknowable.
  if (mb === 0 || mb <= 4 * b.err) bad('division by a value indistinguishable from 0');
  const d = b.re * b.re + b.im * b.im;
  const re = (a.re * b.re + a.im * b.im) / d;
  const im = (a.im * b.re - a.re * b.im) / d;
  return mk(re, im, (a.err + Math.hypot(re, im) * b.err) / (mb - b.err));
}

/** The value itself with a negligible imaginary part removed (see the module note on branch cuts). */
function snap(a: CVal): CVal {
  return a.im !== 0 && Math.abs(a.im) <= a.err ? { re: a.re, im: 0, err: a.err + Math.abs(a.im) } : a;
}

export function exp(a: CVal): CVal {
  if (a.re > 700) bad();
  const m = Math.exp(a.re);
  const re = m * Math.cos(a.im),
    im = a.im === 0 ? 0 : m * Math.sin(a.im);
  return mk(re, im, m * Math.expm1(Math.min(a.err, 50)));
}

export function log(x: CVal): CVal {
  const a = snap(x);
  const m = mag(a);
  if (m === 0 || m <= 2 * a.err) bad('logarithm of a value indistinguishable from 0');
  // A negative real within error of the axis: principal branch, imaginary part +π.
  return mk(Math.log(m), Math.atan2(a.im, a.re), a.err / (m - a.err));
}

export function sqrt(x: CVal): CVal {
  const a = snap(x);
  const m = mag(a);
  let re = Math.sqrt((m + a.re) / 2);
  let im = Math.sqrt(Math.max(0, (m - a.re) / 2));
  if (a.im < 0) im = -im;
  if (a.im === 0) {
    if (a.re >= 0) im = 0;
    else re = 0;
  }
  const r = Math.hypot(re, im);
  // Near 0 the derivative blows up: the error is at most sqrt(err).
  const err = m > 4 * a.err ? a.err / (2 * Math.sqrt(m - a.err)) : Math.sqrt(m + a.err) + r;
  return mk(re, im, err);
}

/** a^n for an integer n by repeated squaring (errors propagate through `mul`). */
function powInt(a: CVal, n: number): CVal {
  let r = ONE,
    b = a,
    k = Math.abs(n);
  while (k > 0) {
    if (k & 1) r = mul(r, b);
    k = Math.floor(k / 2);
    if (k > 0) b = mul(b, b);
  }
  return n < 0 ? div(ONE, r) : r;
}

/** Odd denominators tried when a negative real base meets a rational exponent. */
const ODD_DENOMINATORS = [1, 3, 5, 7, 9, 11, 13, 15];

export function pow(x: CVal, b: CVal): CVal {
  const a = snap(x);
  if (b.im === 0 && b.err === 0 && Number.isInteger(b.re) && Math.abs(b.re) <= 4096) return powInt(a, b.re);
  if (a.re === 0 && a.im === 0 && a.err === 0) return b.re > 0 ? { re: 0, im: 0, err: 0 } : bad();
  // Real convention for odd roots of negatives, as readers (and \sqrt[3]{-8} = -2) mean them:
  // x^{2/3} = (∛x)^2 for x < 0, so `\sqrt[3]{x}^2` and `x^{2/3}` agree at negative points.
  if (a.im === 0 && a.re < 0 && b.im === 0 && b.err <= 1e-15 * Math.max(1, Math.abs(b.re))) {
    for (const q of ODD_DENOMINATORS) {
      const p = Math.round(b.re * q);
      if (Math.abs(b.re * q - p) < 1e-9) {
        const m = (-a.re) ** b.re;
        const v = p % 2 === 0 ? m : -m;
        return mk(v, 0, Math.abs(v) * ((Math.abs(b.re) * a.err) / Math.max(-a.re - a.err, 1e-300)));
      }
    }
  }
  return exp(mul(b, log(a)));
}

/** Real odd root of a negative real (∛-8 = -2), else the principal root. */
export function root(a: CVal, n: CVal): CVal {
  return pow(a, div(ONE, n));
}

export function sin(a: CVal): CVal {
  if (Math.abs(a.im) > 700) bad();
  const re = Math.sin(a.re) * Math.cosh(a.im),
    im = Math.cos(a.re) * Math.sinh(a.im);
  const dcos = Math.hypot(Math.cos(a.re) * Math.cosh(a.im), Math.sin(a.re) * Math.sinh(a.im));
  return mk(re, im, (dcos + a.err) * a.err);
}

export function cos(a: CVal): CVal {
  if (Math.abs(a.im) > 700) bad();
  const re = Math.cos(a.re) * Math.cosh(a.im),
    im = -Math.sin(a.re) * Math.sinh(a.im);
  const dsin = Math.hypot(Math.sin(a.re) * Math.cosh(a.im), Math.cos(a.re) * Math.sinh(a.im));
  return mk(re, im, (dsin + a.err) * a.err);
}

const half = (a: CVal): CVal => ({ re: a.re / 2, im: a.im / 2, err: a.err / 2 });
const timesI = (a: CVal): CVal => ({ re: -a.im, im: a.re, err: a.err });

/** asin z = -i log(iz + sqrt(1 - z²)); acos = π/2 - asin; atan z = (i/2)(log(1-iz) - log(1+iz)). */
export function asin(a: CVal): CVal {
  const w = log(add(timesI(a), sqrt(sub(ONE, mul(a, a)))));
  return { re: w.im, im: -w.re, err: w.err };
}
export const acos = (a: CVal): CVal => sub(real(Math.PI / 2), asin(a));
export function atan(a: CVal): CVal {
  const iz = timesI(a);
  return half(timesI(sub(log(sub(ONE, iz)), log(add(ONE, iz)))));
}
export const sinh = (a: CVal): CVal => half(sub(exp(a), exp(neg(a))));
export const cosh = (a: CVal): CVal => half(add(exp(a), exp(neg(a))));

/** The real part of a value that must be real (floor, sign, factorial), or a NumericError. */
export function realPart(a: CVal): number {
  if (Math.abs(a.im) > a.err + 1e-300) bad('a real-only function met a complex value');
  return a.re;
}

/** Whether |a - b| is within the errors of both (the same number as far as doubles can tell). */
export function within(a: CVal, b: CVal, slack = 16): boolean {
  return Math.hypot(a.re - b.re, a.im - b.im) <= slack * (a.err + b.err);
}
