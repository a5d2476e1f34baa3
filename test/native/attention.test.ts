/**
 * Flash-style causal GQA attention (native/cpu/attention.cc via src/tensor/ops/attention.ts)
 * against a naive float64 reference that builds the full softmax: forward and backward (dq, dk,
 * dv) on random inputs with GQA, left/right padding, T not a multiple of the tiles, D = 24 and 64;
 * finite differences of the reference; the KV-cache path equal to the rows of full attention;
 * bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { attention, attentionCached } from '../../src/tensor/ops/attention.ts';
import { checkFiniteDiff, checkTensor, randn, rng, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';
import { defaultBackend } from '../../src/backend/index.ts';

describeEachBackend('attention', ['attentionForward', 'attentionBackward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  interface Shape {
    B: number;
    Tq: number;
    Tk: number;
    Tmax: number; // key rows allocated per batch item (k/v [B, Tmax, Hkv, D], mask [B, Tmax])
    H: number;
    Hkv: number;
    D: number;
    scale: number;
  }

  /** Float64 attention with the full score matrix. Returns out [B,Tq,H,D] and valid[(b*Tq+i)*H+h]. */
  function refForward(
    q: ArrayLike<number>,
    k: ArrayLike<number>,
    v: ArrayLike<number>,
    mask: Int32Array | null,
    s: Shape,
  ) {
    const { B, Tq, Tk, Tmax, H, Hkv, D, scale } = s;
    const out = new Float64Array(B * Tq * H * D);
    const valid = new Uint8Array(B * Tq * H);
    const probs: Float64Array[] = []; // per (b, i, h): softmax over keys 0..Tk-1
    const q0 = Tk - Tq;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < Tq; i++)
        for (let h = 0; h < H; h++) {
          const kh = Math.floor(h / (H / Hkv));
          const sc = new Float64Array(Tk).fill(-Infinity);
          let mx = -Infinity;
          for (let j = 0; j <= q0 + i; j++) {
            if (mask && mask[b * Tmax + j] === 0) continue;
            let d0 = 0;
            for (let d = 0; d < D; d++)
              d0 += q[((b * Tq + i) * H + h) * D + d]! * k[((b * Tmax + j) * Hkv + kh) * D + d]!;
            sc[j] = d0 * scale;
            mx = Math.max(mx, sc[j]!);
          }
          const p = new Float64Array(Tk);
          const row = (b * Tq + i) * H + h;
          probs[row] = p;
          if (mx === -Infinity) continue;
          valid[row] = 1;
          let z = 0;
          for (let j = 0; j < Tk; j++) z += p[j] = sc[j] === -Infinity ? 0 : Math.exp(sc[j]! - mx);
          for (let j = 0; j < Tk; j++) {
            p[j]! /= z;
            if (p[j] === 0) continue;
            for (let d = 0; d < D; d++) out[row * D + d] += p[j]! * v[((b * Tmax + j) * Hkv + kh) * D + d]!;
          }
        }
    return { out, valid, probs };
  }

  /** Float64 gradients of L = Σ R ⊙ out (full attention, Tq = Tk = Tmax). */
  function refBackward(
    q: Float64Array,
    k: Float64Array,
    v: Float64Array,
    mask: Int32Array | null,
    s: Shape,
    R: Float64Array,
  ) {
    const { B, Tq: T, H, Hkv, D, scale } = s;
    const { out, valid, probs } = refForward(q, k, v, mask, s);
    const dq = new Float64Array(q.length),
      dk = new Float64Array(k.length),
      dv = new Float64Array(v.length);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < T; i++)
        for (let h = 0; h < H; h++) {
          const row = (b * T + i) * H + h;
          if (!valid[row]) continue;
          const kh = Math.floor(h / (H / Hkv));
          const p = probs[row]!;
          let Di = 0;
          for (let d = 0; d < D; d++) Di += R[row * D + d]! * out[row * D + d]!;
          for (let j = 0; j <= i; j++) {
            if (p[j] === 0) continue;
            const kv = ((b * T + j) * Hkv + kh) * D;
            let dp = 0;
            for (let d = 0; d < D; d++) {
              dp += R[row * D + d]! * v[kv + d]!;
              dv[kv + d] += p[j]! * R[row * D + d]!;
            }
            const ds = p[j]! * (dp - Di) * scale;
            for (let d = 0; d < D; d++) {
              dq[row * D + d] += ds * k[kv + d]!;
              dk[kv + d] += ds * q[row * D + d]!;
            }
          }
        }
    return { dq, dk, dv, out, valid };
  }

  /** Mask [B, T]: item 0 left-padded by `left`, item 1 right-padded by `right`, item 2 both (when present). */
  function paddingMask(B: number, T: number, left: number, right: number): Int32Array {
    const m = new Int32Array(B * T).fill(1);
    for (let j = 0; j < left; j++) m[j] = 0;
    if (B > 1) for (let j = T - right; j < T; j++) m[T + j] = 0;
    if (B > 2) for (let j = 0; j < T; j++) if (j < 2 || j >= T - 3) m[2 * T + j] = 0;
    return m;
  }

  function runCase(
    label: string,
    seed: number,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    mask: Int32Array | null,
    scale?: number,
  ): void {
    test(label, () => {
      const r = rng(seed);
      const s: Shape = { B, Tq: T, Tk: T, Tmax: T, H, Hkv, D, scale: scale ?? 1 / Math.sqrt(D) };
      const Q = randn(B * T * H * D, r),
        K = randn(B * T * Hkv * D, r),
        V = randn(B * T * Hkv * D, r),
        R = randn(B * T * H * D, r);
      const ref = refBackward(Q, K, V, mask, s, R);
      tidy(() => {
        const q = Tensor.fromArray(f32(Q), [B, T, H, D]);
        const k = Tensor.fromArray(f32(K), [B, T, Hkv, D]);
        const v = Tensor.fromArray(f32(V), [B, T, Hkv, D]);
        const m = mask ? Tensor.fromArray(mask, [B, T], 'int32') : null;
        q.requiresGrad = k.requiresGrad = v.requiresGrad = true;
        const out = attention(q, k, v, m, scale === undefined ? undefined : { scale });
        const o = out.toArray();
        // compare only rows with an attendable key; the others must be exactly 0
        const ours: number[] = [],
          want: number[] = [];
        for (let row = 0; row < B * T * H; row++)
          for (let d = 0; d < D; d++) {
            if (ref.valid[row]) {
              ours.push(o[row * D + d]!);
              want.push(ref.out[row * D + d]!);
            } else
              assert.equal(
                o[row * D + d],
                0,
                `attention: row ${row} has no attendable key but output ${o[row * D + d]}`,
              );
          }
        checkTensor('attention', 'out', ours, want, 1e-5);
        backward(out, Tensor.fromArray(f32(R), [B, T, H, D]));
        checkTensor('attention', 'dq', q.grad!.toArray(), ref.dq, 1e-5);
        checkTensor('attention', 'dk', k.grad!.toArray(), ref.dk, 1e-5);
        checkTensor('attention', 'dv', v.grad!.toArray(), ref.dv, 1e-5);
        const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
          const f = refForward(qq, kk, vv, mask, s).out;
          let t = 0;
          for (let i = 0; i < f.length; i++) t += f[i]! * R[i]!;
          return t;
        };
        checkFiniteDiff('attention', 'dq', q.grad!.toArray(), (x) => loss(x, K, V), Float64Array.from(Q), r, {
          count: 6,
        });
        checkFiniteDiff('attention', 'dk', k.grad!.toArray(), (x) => loss(Q, x, V), Float64Array.from(K), r, {
          count: 6,
        });
        checkFiniteDiff('attention', 'dv', v.grad!.toArray(), (x) => loss(Q, K, x), Float64Array.from(V), r, {
          count: 6,
        });
        for (const t of [q, k, v]) t.grad!.dispose();
      });
    });
  }

  describe('attention forward + backward vs float64', () => {
    runCase('GQA H=4 Hkv=2, D=24, T=70, left + right padding', 1, 2, 70, 4, 2, 24, paddingMask(2, 70, 9, 13));
    runCase('GQA H=4 Hkv=1, D=64, T=40, no mask', 2, 1, 40, 4, 1, 64, null);
    runCase(
      'H=2 Hkv=2, D=64, T=133 (3 key tiles), three masks, scale 0.3',
      3,
      3,
      133,
      2,
      2,
      64,
      paddingMask(3, 133, 70, 5),
      0.3,
    );
    runCase(
      'D=17 (generic path), H=3 Hkv=1, T=33, all-padded item',
      4,
      2,
      33,
      3,
      1,
      17,
      Int32Array.from({ length: 66 }, (_, i) => (i < 33 ? 0 : 1)),
    );
  });

  describe('attention determinism', () => {
    test('backward is bitwise identical across runs (each gradient element has one writer)', () => {
      const r = rng(5);
      const B = 2,
        T = 100,
        H = 4,
        Hkv = 2,
        D = 32;
      const Q = f32(randn(B * T * H * D, r)),
        K = f32(randn(B * T * Hkv * D, r)),
        V = f32(randn(B * T * Hkv * D, r)),
        R = f32(randn(B * T * H * D, r));
      const run = () =>
        tidy(() => {
          const q = Tensor.fromArray(Q, [B, T, H, D]),
            k = Tensor.fromArray(K, [B, T, Hkv, D]),
            v = Tensor.fromArray(V, [B, T, Hkv, D]);
          q.requiresGrad = k.requiresGrad = v.requiresGrad = true;
          backward(
            attention(q, k, v, Tensor.fromArray(paddingMask(B, T, 3, 4), [B, T], 'int32')),
            Tensor.fromArray(R, [B, T, H, D]),
          );
          const g = [q.grad!.toArray(), k.grad!.toArray(), v.grad!.toArray()];
          for (const t of [q, k, v]) t.grad!.dispose();
          return g;
        });
      const a = run(),
        b = run();
      for (let i = 0; i < 3; i++) assert.deepEqual(a[i], b[i], `attention: gradient ${'qkv'[i]} differs between runs`);
    });
  });

  describe('attentionCached', () => {
    test('prefill + decode steps with a cache equal the rows of full attention (left-padded prompts)', () => {
      const r = rng(7);
      const B = 3,
        H = 4,
        Hkv = 2,
        D = 24,
        T0 = 20,
        Tt = 27,
        Tmax = 32;
      const sFull: Shape = { B, Tq: Tt, Tk: Tt, Tmax: Tt, H, Hkv, D, scale: 1 / Math.sqrt(D) };
      const Q = randn(B * Tt * H * D, r),
        K = randn(B * Tt * Hkv * D, r),
        V = randn(B * Tt * Hkv * D, r);
      const mask = new Int32Array(B * Tt).fill(1);
      for (let j = 0; j < 6; j++) mask[j] = 0; // item 0: 6 pad tokens on the left
      for (let j = 0; j < 2; j++) mask[Tt + j] = 0; // item 1: 2
      mask[2 * Tt + 24] = 0; // item 2: a padded completion token (after EOS)
      const full = refForward(Q, K, V, mask, sFull);
      // rows of q [B, Tt, H, D] for positions [t0, t1)
      const qRows = (t0: number, t1: number) => {
        const out = new Float32Array(B * (t1 - t0) * H * D);
        for (let b = 0; b < B; b++)
          out.set(f32(Q.subarray((b * Tt + t0) * H * D, (b * Tt + t1) * H * D)), b * (t1 - t0) * H * D);
        return out;
      };
      // cache holding the first Tk rows; rows beyond are NaN (they must never be read)
      const cacheOf = (src: Float64Array, Tk: number) => {
        const c = new Float32Array(B * Tmax * Hkv * D).fill(NaN);
        for (let b = 0; b < B; b++)
          c.set(f32(src.subarray(b * Tt * Hkv * D, (b * Tt + Tk) * Hkv * D)), b * Tmax * Hkv * D);
        return c;
      };
      const maskC = new Int32Array(B * Tmax).fill(7); // garbage past Tk: only the first Tk columns are read
      for (let b = 0; b < B; b++) maskC.set(mask.subarray(b * Tt, (b + 1) * Tt), b * Tmax);
      // steps: prefill 20 rows, 4 single-token decode steps, then one 3-token step
      const steps: Array<[number, number]> = [
        [0, T0],
        [20, 21],
        [21, 22],
        [22, 23],
        [23, 24],
        [24, 27],
      ];
      for (const [t0, t1] of steps) {
        tidy(() => {
          const Tq = t1 - t0;
          const q = Tensor.fromArray(qRows(t0, t1), [B, Tq, H, D]);
          const kc = Tensor.fromArray(cacheOf(K, t1), [B, Tmax, Hkv, D]);
          const vc = Tensor.fromArray(cacheOf(V, t1), [B, Tmax, Hkv, D]);
          const o = attentionCached(q, kc, vc, Tensor.fromArray(maskC, [B, Tmax], 'int32'), t1).toArray();
          const ours: number[] = [],
            want: number[] = [];
          for (let b = 0; b < B; b++)
            for (let i = 0; i < Tq; i++)
              for (let h = 0; h < H; h++) {
                const row = (b * Tt + t0 + i) * H + h,
                  mine = (b * Tq + i) * H + h;
                for (let d = 0; d < D; d++) {
                  if (full.valid[row]) {
                    ours.push(o[mine * D + d]!);
                    want.push(full.out[row * D + d]!);
                  } else assert.equal(o[mine * D + d], 0, `attentionCached: step ${t0}: row without keys is not 0`);
                }
              }
          checkTensor('attentionCached', `out (positions ${t0}..${t1 - 1})`, ours, want, 1e-5);
        });
      }
    });

    test('decode shape B=16 Tq=1 Tk=150 of a Tmax=192 cache', () => {
      const r = rng(8);
      const B = 16,
        H = 8,
        Hkv = 2,
        D = 64,
        Tk = 150,
        Tmax = 192;
      const s: Shape = { B, Tq: 1, Tk, Tmax, H, Hkv, D, scale: 1 / Math.sqrt(D) };
      const Q = randn(B * H * D, r),
        K = randn(B * Tmax * Hkv * D, r),
        V = randn(B * Tmax * Hkv * D, r);
      const mask = new Int32Array(B * Tmax).fill(1);
      for (let b = 0; b < B; b++) for (let j = 0; j < b; j++) mask[b * Tmax + j] = 0;
      const ref = refForward(Q, K, V, mask, s);
      tidy(() => {
        const o = attentionCached(
          Tensor.fromArray(f32(Q), [B, 1, H, D]),
          Tensor.fromArray(f32(K), [B, Tmax, Hkv, D]),
          Tensor.fromArray(f32(V), [B, Tmax, Hkv, D]),
          Tensor.fromArray(mask, [B, Tmax], 'int32'),
          Tk,
        );
        checkTensor('attentionCached', 'out', o.toArray(), ref.out, 1e-5);
      });
    });
  });

  describe('attention bad input', () => {
    test('shape mismatch, wrong dtype, disposed tensor, bad Tk -> errors naming op and shapes', () => {
      tidy(() => {
        const q = Tensor.zeros([2, 8, 4, 16]);
        const k = Tensor.zeros([2, 8, 2, 16]);
        const isErr = (re: RegExp) => (e: unknown) => e instanceof TensorOpError && re.test((e as Error).message);
        assert.throws(
          () => attention(q, Tensor.zeros([2, 8, 3, 16]), Tensor.zeros([2, 8, 3, 16]), null),
          isErr(/^attention: q \[2,8,4,16\] vs k \[2,8,3,16\]: 4 query heads are not a multiple of 3 kv heads/),
        );
        assert.throws(
          () => attention(q, k, Tensor.zeros([2, 8, 2, 8]), null),
          isErr(/^attention: k \[2,8,2,16\] vs v \[2,8,2,8\]: shapes differ/),
        );
        assert.throws(
          () => attention(q, Tensor.zeros([2, 7, 2, 16]), Tensor.zeros([2, 7, 2, 16]), null),
          isErr(/sequence lengths differ/),
        );
        assert.throws(
          () => attention(q, k, k, Tensor.zeros([2, 8])),
          isErr(/^attention: keyMask must be int32, got float32 \[2,8\]/),
        );
        assert.throws(
          () => attention(q, k, k, Tensor.zeros([2, 9], 'int32')),
          isErr(/^attention: keyMask \[2,9\]: expected \[2,8\]/),
        );
        assert.throws(
          () => attention(Tensor.zeros([2, 8, 64]), k, k, null),
          isErr(/^attention: q must have rank 4, got \[2,8,64\]/),
        );
        const d = Tensor.zeros([2, 8, 2, 16]);
        d.dispose();
        assert.throws(() => attention(q, d, k, null), isErr(/^attention: k was disposed \(shape \[2,8,2,16\]\)/));
        const m = Tensor.zeros([2, 8], 'int32');
        assert.throws(
          () => attentionCached(q, k, k, m, 9),
          isErr(/^attentionCached: Tk = 9 must be an integer with Tq \(8\) <= Tk <= Tmax \(8\)/),
        );
        assert.throws(
          () => attentionCached(Tensor.zeros([2, 1, 4, 16], 'bfloat16'), k, k, m, 3),
          isErr(/^attentionCached: q must be float32, got bfloat16/),
        );
        // the kernel re-checks sizes itself
        const small = Tensor.zeros([256]);
        assert.throws(
          () =>
            defaultBackend().attentionForward(
              Tensor.zeros(q.shape).deviceBuffer,
              null,
              q.deviceBuffer,
              small.deviceBuffer,
              k.deviceBuffer,
              null,
              2,
              8,
              8,
              8,
              4,
              2,
              16,
              0.25,
            ),
          (e: unknown) =>
            e instanceof NativeOpError &&
            /^attention_forward: k holds 256 elements, needs 512/.test((e as Error).message),
        );
      });
    });
  });
});
