/**
 * RoPE (rotate-half, HF apply_rotary_pos_emb) forward and backward (native/cpu/rope.cc via
 * src/tensor/ops/rope.ts) against a float64 reference that uses HF's float32 inv_freq and angles,
 * finite differences, left-padded and large positions, and bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { rope } from '../../src/tensor/ops/rope.ts';
import { checkFiniteDiff, checkTensor, randn, rng, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';

describeEachBackend('rope', ['ropeForward', 'ropeBackward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);
  const fr = Math.fround;

  /** HF: inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)) in float32; freqs = pos * inv_freq in float32. */
  function angle(pos: number, i: number, D: number, theta: number): number {
    const e = fr((2 * i) / D);
    const inv = fr(1 / fr(Math.pow(fr(theta), e)));
    return fr(pos * inv);
  }

  /** y (sign = 1) or the backward rotation (sign = -1) in float64. x [B,T,H,D], pos [B,T]. */
  function refRotate(
    x: ArrayLike<number>,
    pos: ArrayLike<number>,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
    sign = 1,
  ): Float64Array {
    const y = new Float64Array(B * T * H * D);
    const h2 = D / 2;
    for (let bt = 0; bt < B * T; bt++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < h2; i++) {
          const a = angle(pos[bt]!, i, D, theta);
          const c = Math.cos(a),
            s = sign * Math.sin(a);
          const o = (bt * H + h) * D;
          const x1 = x[o + i]!,
            x2 = x[o + i + h2]!;
          y[o + i] = x1 * c - x2 * s;
          y[o + i + h2] = x2 * c + x1 * s;
        }
    return y;
  }

  /** Left-padded position ids: max(cumsum(mask) - 1, 0) per row, with `pad[b]` leading pads. */
  function leftPaddedPositions(B: number, T: number, pad: number[]): Int32Array {
    const p = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      let cum = 0;
      for (let t = 0; t < T; t++) {
        if (t >= pad[b]!) cum++;
        p[b * T + t] = Math.max(cum - 1, 0);
      }
    }
    return p;
  }

  describe('rope', () => {
    const cases: Array<[string, number, number, number, number, number, Int32Array | null]> = [
      ['left-padded batch, D=64, theta 1e4', 3, 9, 4, 64, 10000, null],
      [
        'large and scattered positions (beyond the cached table), theta 1e6',
        2,
        5,
        2,
        16,
        1e6,
        Int32Array.from([0, 1, 4095, 4096, 65535, 65536, 70001, 123457, 9, 3]),
      ],
      ['tiny head dim D=2', 1, 4, 3, 2, 10000, Int32Array.from([5, 0, 2, 1])],
    ];
    for (const [label, B, T, H, D, theta, posGiven] of cases) {
      test(`forward + backward: ${label}`, () => {
        const r = rng(B * 100 + D);
        const n = B * T * H * D;
        const pos = posGiven ?? leftPaddedPositions(B, T, [0, 3, 6].slice(0, B));
        const X = randn(n, r),
          R = randn(n, r);
        tidy(() => {
          const x = Tensor.fromArray(f32(X), [B, T, H, D]);
          x.requiresGrad = true;
          const p = Tensor.fromArray(pos, [B, T]);
          const y = rope(x, p, theta);
          checkTensor('rope', 'y', y.toArray(), refRotate(X, pos, B, T, H, D, theta), 1e-6);
          backward(y, Tensor.fromArray(f32(R), [B, T, H, D]));
          const dx = x.grad!.toArray();
          checkTensor('rope', 'dx', dx, refRotate(R, pos, B, T, H, D, theta, -1), 1e-6);
          const loss = (v: Float64Array) => {
            const yy = refRotate(v, pos, B, T, H, D, theta);
            let s = 0;
            for (let i = 0; i < n; i++) s += yy[i]! * R[i]!;
            return s;
          };
          checkFiniteDiff('rope', 'dx', dx, loss, Float64Array.from(X), r, { count: 24, tol: 1e-5 });
          x.grad!.dispose();
        });
      });
    }

    test('position 0 is the identity and the rotation preserves norms', () => {
      const r = rng(4);
      const B = 2,
        T = 6,
        H = 2,
        D = 32;
      const X = randn(B * T * H * D, r);
      tidy(() => {
        const y = rope(Tensor.fromArray(f32(X), [B, T, H, D]), Tensor.zeros([B, T], 'int32'), 10000).toArray();
        assert.deepEqual(y, f32(X));
        const pos = Int32Array.from({ length: B * T }, (_, i) => i * 37);
        const z = rope(Tensor.fromArray(f32(X), [B, T, H, D]), Tensor.fromArray(pos, [B, T]), 10000).toArray();
        for (let t = 0; t < B * T * H; t++) {
          let a = 0,
            b = 0;
          for (let i = 0; i < D; i++) {
            a += X[t * D + i]! ** 2;
            b += z[t * D + i]! ** 2;
          }
          assert.ok(Math.abs(a - b) <= 1e-5 * a, `norm of head row ${t}: ${a} vs ${b}`);
        }
      });
    });

    test('bad input is a clear error', () => {
      tidy(() => {
        const isErr = (cls: typeof TensorOpError | typeof NativeOpError, re: RegExp) => (e: unknown) =>
          e instanceof cls && re.test((e as Error).message);
        const x = Tensor.zeros([2, 4, 3, 8]);
        const p = Tensor.zeros([2, 4], 'int32');
        assert.throws(
          () => rope(x, Tensor.zeros([2, 5], 'int32'), 1e4),
          isErr(TensorOpError, /^rope: x \[2,4,3,8\] vs positions \[2,5\]: expected positions \[2,4\]/),
        );
        assert.throws(
          () => rope(x, Tensor.zeros([2, 4]), 1e4),
          isErr(TensorOpError, /^rope: positions must be int32, got float32 \[2,4\]/),
        );
        assert.throws(
          () => rope(Tensor.zeros([2, 4, 24]), p, 1e4),
          isErr(TensorOpError, /^rope: x must have rank 4, got \[2,4,24\]/),
        );
        assert.throws(
          () => rope(Tensor.zeros([2, 4, 3, 7]), p, 1e4),
          isErr(TensorOpError, /^rope: x \[2,4,3,7\]: head dim 7 must be even/),
        );
        assert.throws(() => rope(x, p, 0), isErr(TensorOpError, /^rope: theta must be a finite number > 0, got 0/));
        const neg = Tensor.fromArray(Int32Array.from([0, 1, 2, 3, 0, -1, 2, 3]), [2, 4]);
        assert.throws(
          () => rope(x, neg, 1e4),
          isErr(NativeOpError, /^rope_forward: positions\[5\] = -1 is out of range \[0, 16777216\)/),
        );
        const d = Tensor.zeros([2, 4, 3, 8]);
        d.dispose();
        assert.throws(() => rope(d, p, 1e4), isErr(TensorOpError, /^rope: x was disposed \(shape \[2,4,3,8\]\)/));
      });
    });
  });
});
