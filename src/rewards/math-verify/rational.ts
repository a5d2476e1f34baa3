/**
 * @module rewards/math-verify/rational
 * Exact rationals over BigInt: the ground truth for numeric answers. Integers of any length compare
 * exactly (`12345678901234567890123` vs `...124` differ), decimals are kept as the fractions they
 * denote (`0.1` is 1/10, never the float 0.1000000000000000055...). Sizes are bounded by the callers
 * (see `MAX_BITS`) so no hostile power can allocate unbounded memory.
 */

/** A reduced fraction num/den with den > 0. */
export interface Rat {
  num: bigint;
  den: bigint;
}

/** Largest integer size (bits) the exact evaluator builds; beyond it a value is "too large to decide exactly". */
export const MAX_BITS = 4096;

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

export function rat(num: bigint, den: bigint = 1n): Rat {
  if (den === 0n) throw new RangeError('division by zero');
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

export const ZERO: Rat = { num: 0n, den: 1n };
export const ONE: Rat = { num: 1n, den: 1n };

export const add = (a: Rat, b: Rat): Rat => rat(a.num * b.den + b.num * a.den, a.den * b.den);
export const sub = (a: Rat, b: Rat): Rat => rat(a.num * b.den - b.num * a.den, a.den * b.den);
export const mul = (a: Rat, b: Rat): Rat => rat(a.num * b.num, a.den * b.den);
export const div = (a: Rat, b: Rat): Rat => rat(a.num * b.den, a.den * b.num);
export const neg = (a: Rat): Rat => ({ num: -a.num, den: a.den });
export const eq = (a: Rat, b: Rat): boolean => a.num === b.num && a.den === b.den;
export const cmp = (a: Rat, b: Rat): number => {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};
export const isInt = (a: Rat): boolean => a.den === 1n;

export function bitLength(n: bigint): number {
  if (n < 0n) n = -n;
  return n === 0n ? 0 : n.toString(16).length * 4;
}

/** Bits needed to hold a rational: used to stop growth before it becomes a memory attack. */
export const ratBits = (a: Rat): number => bitLength(a.num) + bitLength(a.den);

/**
 * `a^e` for an integer exponent, or null when the result would exceed MAX_BITS (a decision then
 * needs structure, not arithmetic: `9^{9^{9}}` is never expanded).
 */
export function pow(a: Rat, e: bigint): Rat | null {
  if (e === 0n) return ONE;
  if (a.num === 0n) return e > 0n ? ZERO : null;
  if ((a.num === 1n || a.num === -1n) && a.den === 1n) return rat(e % 2n === 0n ? 1n : a.num);
  const neg = e < 0n;
  const k = neg ? -e : e;
  if (BigInt(ratBits(a)) * k > BigInt(MAX_BITS)) return null;
  const r = { num: a.num ** k, den: a.den ** k };
  return neg ? div(ONE, r) : r;
}

/** Parses a plain decimal literal (`-12.50`, `.5`, `3e-2`) exactly; null when it is not one. */
export function parseDecimal(s: string): Rat | null {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d{1,4}))?$/i.exec(s.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const frac = m[3] ?? '';
  let num = BigInt((m[2] || '0') + frac);
  let den = 10n ** BigInt(frac.length);
  const ex = m[4] ? Number(m[4]) : 0;
  if (ex > 0) num *= 10n ** BigInt(ex);
  else if (ex < 0) den *= 10n ** BigInt(-ex);
  if (m[1] === '-') num = -num;
  return rat(num, den);
}

/** Nearest double (through a decimal string, so 1/3 and huge integers both convert sensibly). */
export function toNumber(a: Rat): number {
  if (a.den === 1n) return Number(a.num);
  const bn = bitLength(a.num),
    bd = bitLength(a.den);
  if (bn < 1000 && bd < 1000) return Number(a.num) / Number(a.den);
  // Scale both into double range first: keep the top ~60 bits of each.
  const sn = Math.max(0, bn - 60),
    sd = Math.max(0, bd - 60);
  return (Number(a.num >> BigInt(sn)) / Number(a.den >> BigInt(sd))) * 2 ** (sn - sd);
}

/** Rounds to `digits` decimal places, half away from zero (Math-Verify's float rounding of 6 digits). */
export function roundTo(a: Rat, digits: number): Rat {
  const scale = 10n ** BigInt(digits);
  const x = a.num * scale * 2n;
  const d = a.den * 2n;
  // round(half away from zero) of (a.num*scale/a.den)
  let q = (a.num * scale) / a.den;
  const rem = x - q * d; // 2*(a.num*scale - q*a.den)
  if (a.num >= 0n ? rem >= a.den : -rem >= a.den) q += a.num >= 0n ? 1n : -1n;
  return rat(q, scale);
}

/** Exact integer square root when `a` is a perfect square of a rational, else null. */
export function sqrtExact(a: Rat): Rat | null {
  if (a.num < 0n) return null;
  const rn = isqrt(a.num),
    rd = isqrt(a.den);
  return rn * rn === a.num && rd * rd === a.den ? rat(rn, rd) : null;
}

export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  // Newton refinement (the float start is exact for small n and close for big ones).
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) {
      if (x * x > n) {
        x -= 1n;
        continue;
      }
      while ((x + 1n) * (x + 1n) <= n) x += 1n;
      return x;
    }
    x = y;
  }
}

export function ratToString(a: Rat): string {
  return a.den === 1n ? a.num.toString() : `${a.num}/${a.den}`;
}
