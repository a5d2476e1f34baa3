/**
 * @module data/rng
 * A small seeded PRNG whose whole state is four uint32 words, so the trainer can checkpoint it
 * and a resumed run draws exactly the same numbers: xoshiro128** (Blackman & Vigna 2018,
 * https://prng.di.unimi.it/xoshiro128starstar.c), seeded through splitmix64 as its authors
 * recommend (a seed of 0 is fine; the all-zero state cannot occur).
 */
import { GpgRlError } from '../errors.ts';

/** The checkpointable state: four uint32 words. */
export interface RngState {
  s: [number, number, number, number];
}

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 step: returns [next state, output]; used only to expand a seed into 128 bits. */
function splitmix64(x: bigint): [bigint, bigint] {
  const next = (x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /**
   * @param seed a non-negative safe integer (or bigint)
   * @param stream an independent stream index mixed into the seed (e.g. an epoch number), so
   *   `new Rng(seed, e)` gives unrelated sequences for different `e`.
   */
  constructor(seed: number | bigint = 0, stream: number | bigint = 0) {
    if (typeof seed === 'number' && (!Number.isSafeInteger(seed) || seed < 0)) {
      throw new GpgRlError(`Rng: seed must be a non-negative safe integer (got ${seed})`, 'GPG_RNG');
    }
    let x = BigInt(seed) & MASK64;
    let a: bigint;
    let b: bigint;
    [x, a] = splitmix64(x ^ ((BigInt(stream) * 0xd1b54a32d192ed03n) & MASK64));
    [x, b] = splitmix64(x);
    this.s0 = Number(a & 0xffffffffn);
    this.s1 = Number(a >> 32n);
    this.s2 = Number(b & 0xffffffffn);
    this.s3 = Number(b >> 32n);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // unreachable in practice
  }

  /** Next uint32 (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits (two draws). */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling), for 1 ≤ n ≤ 2^32. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new GpgRlError(`Rng.nextInt: n must be an integer in [1, 2^32] (got ${n})`, 'GPG_RNG');
    }
    const limit = 2 ** 32 - (2 ** 32 % n); // largest multiple of n that fits
    for (;;) {
      const u = this.nextUint32();
      if (u < limit) return u % n;
    }
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** A copy of the state; `setState` of it continues the sequence exactly. */
  state(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3] };
  }

  setState(state: RngState): void {
    const s = (state as { s?: unknown })?.s;
    if (
      !Array.isArray(s) ||
      s.length !== 4 ||
      !s.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) ||
      s.every((w) => w === 0)
    ) {
      throw new GpgRlError(
        `Rng.setState: state must be { s: [4 uint32, not all 0] } (got ${JSON.stringify(state)})`,
        'GPG_RNG',
      );
    }
    [this.s0, this.s1, this.s2, this.s3] = s as [number, number, number, number];
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }
}
