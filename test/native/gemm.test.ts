/**
 * GEMM forward and backward against a float64 reference: every transpose case, batched, broadcast
 * weights, bias, alpha/beta, fp32 (our AVX-512 kernel) and bf16 (oneDNN) operands, shapes that
 * cross every blocking boundary of the packed kernel (KC, MC, NC, partial micro-tiles, the row and
 * the column thread split); linear/matmul backward through the tape checked against the analytic
 * float64 gradient and finite differences; the decode kernel's row and column tails.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { gemmInto, linear, matmul, setAutocast } from '../../src/tensor/ops/matmul.ts';
import {
  assertSameAcrossThreads,
  checkFiniteDiff,
  checkTensor,
  matmulRef,
  randn,
  rng,
  roundBf16,
  transpose,
  describeEachBackend,
} from '../helpers.ts';
import { TensorOpError, NativeOpError } from '../../src/errors.ts';

describeEachBackend('gemm', ['gemm'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  describe('gemm forward', () => {
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      test(`transA=${tA} transB=${tB}, batched, fp32`, () => {
        const r = rng(11 + Number(tA) * 2 + Number(tB));
        const batch = 3,
          M = 17,
          N = 29,
          K = 13;
        const A = randn(batch * M * K, r);
        const B = randn(batch * K * N, r);
        tidy(() => {
          const tAt = Tensor.fromArray(f32(A), tA ? [batch, K, M] : [batch, M, K]);
          const tBt = Tensor.fromArray(f32(B), tB ? [batch, N, K] : [batch, K, N]);
          const C = Tensor.zeros([batch, M, N]);
          gemmInto(C, tAt, tBt, { batch, batchB: batch, M, N, K, transA: tA, transB: tB });
          const ref = new Float64Array(batch * M * N);
          for (let b = 0; b < batch; b++) {
            let a = A.subarray(b * M * K, (b + 1) * M * K);
            let bb = B.subarray(b * K * N, (b + 1) * K * N);
            if (tA) a = transpose(a, K, M);
            if (tB) bb = transpose(bb, N, K);
            ref.set(matmulRef(a, bb, M, K, N), b * M * N);
          }
          checkTensor('gemm', 'C', C.toArray(), ref, 1e-5);
        });
      });
    }

    test('broadcast weights, bias, alpha and beta (+=)', () => {
      const r = rng(5);
      const batch = 2,
        M = 8,
        N = 24,
        K = 40;
      const A = randn(batch * M * K, r),
        W = randn(N * K, r),
        bias = randn(N, r),
        C0 = randn(batch * M * N, r);
      tidy(() => {
        const C = Tensor.fromArray(f32(C0), [batch, M, N]);
        gemmInto(C, Tensor.fromArray(f32(A), [batch, M, K]), Tensor.fromArray(f32(W), [N, K]), {
          batch,
          batchB: 1,
          M,
          N,
          K,
          transB: true,
          beta: 1,
          bias: Tensor.fromArray(f32(bias), [N]),
        });
        const Wt = transpose(W, N, K);
        const ref = new Float64Array(batch * M * N);
        for (let b = 0; b < batch; b++) {
          const c = matmulRef(A.subarray(b * M * K, (b + 1) * M * K), Wt, M, K, N);
          for (let i = 0; i < M * N; i++) ref[b * M * N + i] = c[i]! + bias[i % N]! + C0[b * M * N + i]!;
        }
        checkTensor('gemm', 'C (bias, beta=1)', C.toArray(), ref, 1e-5);
        const C2 = Tensor.zeros([M, N]);
        gemmInto(C2, Tensor.fromArray(f32(A.subarray(0, M * K)), [M, K]), Tensor.fromArray(f32(W), [N, K]), {
          M,
          N,
          K,
          transB: true,
          alpha: 0.25,
        });
        const ref2 = matmulRef(A.subarray(0, M * K), Wt, M, K, N).map((v) => v * 0.25);
        checkTensor('gemm', 'C (alpha=0.25)', C2.toArray(), ref2, 1e-5);
      });
    });

    test('bf16 operands with fp32 accumulation (decode-like skinny shape)', () => {
      const r = rng(9);
      const M = 8,
        N = 256,
        K = 128;
      const A = randn(M * K, r),
        W = randn(N * K, r);
      tidy(() => {
        const a = Tensor.fromArray(f32(A), [M, K], 'bfloat16');
        const w = Tensor.fromArray(f32(W), [N, K], 'bfloat16');
        const C = Tensor.zeros([M, N]);
        gemmInto(C, a, w, { M, N, K, transB: true });
        // reference on the bf16-rounded inputs in float64: only accumulation error remains
        const ref = matmulRef(roundBf16(A), transpose(roundBf16(W), N, K), M, K, N);
        checkTensor('gemm', 'C bf16', C.toArray(), ref, 1e-5);
        // and against the unrounded fp32 product within the bf16 path tolerance
        checkTensor('gemm', 'C bf16 vs fp32 ref', C.toArray(), matmulRef(A, transpose(W, N, K), M, K, N), 1e-2);
      });
    });

    test('bad input is a clear error, never a crash', () => {
      tidy(() => {
        const a = Tensor.zeros([4, 8]);
        const w = Tensor.zeros([16, 9]);
        assert.throws(
          () => linear(a, w),
          (e: unknown) =>
            e instanceof TensorOpError &&
            /linear: x \[4,8\] vs weight \[16,9\]: last dims differ/.test((e as Error).message),
        );
        const small = Tensor.zeros([3]);
        assert.throws(
          () => gemmInto(small, a, Tensor.zeros([8, 16]), { M: 4, N: 16, K: 8 }),
          (e: unknown) =>
            e instanceof NativeOpError && /^gemm: C holds 3 elements, needs 64/.test((e as Error).message),
        );
        // the same messages under autocast and with an int32 operand (checked before any cast, on every backend)
        const short = Tensor.zeros([5]);
        for (const [aOff, needs] of [
          [0, 32],
          [2, 34],
        ] as const)
          assert.throws(
            () => gemmInto(Tensor.zeros([64]), short, Tensor.zeros([8, 16]), { M: 4, N: 16, K: 8, bf16: true, aOff }),
            (e: unknown) =>
              e instanceof NativeOpError &&
              new RegExp(`^gemm: A holds 5 elements, needs ${needs}$`).test((e as Error).message),
          );
        for (const bf16 of [false, true])
          assert.throws(
            () =>
              gemmInto(Tensor.zeros([64]), Tensor.zeros([32], 'int32'), Tensor.zeros([8, 16]), {
                M: 4,
                N: 16,
                K: 8,
                bf16,
              }),
            (e: unknown) =>
              e instanceof NativeOpError && /^gemm: A is int32 but B is float32$/.test((e as Error).message),
          );
        // an fp32 product with a bf16 operand (a frozen bf16 weight) widens it: the fp32 product of its values
        const Bv = Float32Array.from({ length: 128 }, (_, i) => (i % 7) - 3.25);
        const Av = Float32Array.from({ length: 32 }, (_, i) => (i % 5) * 0.5);
        const mixed = Tensor.zeros([64]);
        gemmInto(mixed, Tensor.fromArray(Av, [4, 8]), Tensor.fromArray(Bv, [8, 16], 'bfloat16'), { M: 4, N: 16, K: 8 });
        checkTensor('gemm', 'C (bf16 B widened)', mixed.toArray(), matmulRef(Av, Bv, 4, 8, 16), 1e-7);
        const d = Tensor.zeros([4, 8]);
        d.dispose();
        assert.throws(
          () => linear(d, Tensor.zeros([2, 8])),
          (e: unknown) => e instanceof TensorOpError && /linear: x was disposed/.test((e as Error).message),
        );
      });
    });
  });

  describe('linear / matmul backward', () => {
    test('linear: dx, dW, db vs float64 analytic and finite differences', () => {
      const r = rng(21);
      const M = 6,
        K = 10,
        N = 7;
      const X = randn(M * K, r),
        W = randn(N * K, r, 0.5),
        Bb = randn(N, r),
        R = randn(M * N, r);
      // L = Σ R ⊙ (X Wᵀ + b)
      const loss = (x: Float64Array, w: Float64Array, b: Float64Array) => {
        const y = matmulRef(x, transpose(w, N, K), M, K, N);
        let s = 0;
        for (let i = 0; i < M * N; i++) s += R[i]! * (y[i]! + b[i % N]!);
        return s;
      };
      tidy(() => {
        const x = Tensor.fromArray(f32(X), [M, K]);
        const w = Tensor.fromArray(f32(W), [N, K]);
        const b = Tensor.fromArray(f32(Bb), [N]);
        for (const t of [x, w, b]) t.requiresGrad = true;
        const y = linear(x, w, b);
        backward(y, Tensor.fromArray(f32(R), [M, N]));
        checkTensor('linear', 'dx', x.grad!.toArray(), matmulRef(R, W, M, N, K), 1e-5);
        checkTensor('linear', 'dW', w.grad!.toArray(), matmulRef(transpose(R, M, N), X, N, M, K), 1e-5);
        const db = new Float64Array(N);
        for (let i = 0; i < M * N; i++) db[i % N] += R[i]!;
        checkTensor('linear', 'db', b.grad!.toArray(), db, 1e-5);
        checkFiniteDiff('linear', 'dx', x.grad!.toArray(), (v) => loss(v, W, Bb), Float64Array.from(X), r);
        checkFiniteDiff('linear', 'dW', w.grad!.toArray(), (v) => loss(X, v, Bb), Float64Array.from(W), r);
        for (const t of [x, w, b]) t.grad!.dispose();
      });
    });

    for (const [tA, tB, bcast] of [
      [false, false, false],
      [false, true, false],
      [true, false, false],
      [true, true, false],
      [false, false, true],
      [false, true, true],
      [true, false, true],
      [true, true, true],
    ] as const) {
      test(`matmul transA=${tA} transB=${tB} broadcastB=${bcast}: finite differences`, () => {
        const r = rng(100 + Number(tA) * 4 + Number(tB) * 2 + Number(bcast));
        const batch = 2,
          M = 4,
          K = 5,
          N = 3;
        const A = randn(batch * M * K, r),
          Bv = randn((bcast ? 1 : batch) * K * N, r),
          R = randn(batch * M * N, r);
        const f = (a: Float64Array, b: Float64Array) => {
          let s = 0;
          for (let i = 0; i < batch; i++) {
            let ai = a.subarray(i * M * K, (i + 1) * M * K);
            let bi = bcast ? b : b.subarray(i * K * N, (i + 1) * K * N);
            if (tA) ai = transpose(ai, K, M);
            if (tB) bi = transpose(bi, N, K);
            const c = matmulRef(ai, bi, M, K, N);
            for (let j = 0; j < M * N; j++) s += c[j]! * R[i * M * N + j]!;
          }
          return s;
        };
        tidy(() => {
          const a = Tensor.fromArray(f32(A), tA ? [batch, K, M] : [batch, M, K]);
          const b = Tensor.fromArray(f32(Bv), bcast ? (tB ? [N, K] : [K, N]) : tB ? [batch, N, K] : [batch, K, N]);
          a.requiresGrad = b.requiresGrad = true;
          const c = matmul(a, b, { transA: tA, transB: tB });
          backward(c, Tensor.fromArray(f32(R), [batch, M, N]));
          checkFiniteDiff('matmul', 'da', a.grad!.toArray(), (v) => f(v, Bv), Float64Array.from(A), r, {
            count: 40,
            tol: 1e-5,
          });
          checkFiniteDiff('matmul', 'db', b.grad!.toArray(), (v) => f(A, v), Float64Array.from(Bv), r, {
            count: 40,
            tol: 1e-5,
          });
          a.grad!.dispose();
          b.grad!.dispose();
        });
      });
    }

    test('mixed precision linear stays within the bf16 tolerance', () => {
      const r = rng(33);
      const M = 16,
        K = 64,
        N = 32;
      const X = randn(M * K, r),
        W = randn(N * K, r),
        R = randn(M * N, r);
      const prev = setAutocast(true);
      try {
        tidy(() => {
          const x = Tensor.fromArray(f32(X), [M, K]);
          const w = Tensor.fromArray(f32(W), [N, K]);
          x.requiresGrad = w.requiresGrad = true;
          const y = linear(x, w);
          checkTensor('linear bf16', 'y', y.toArray(), matmulRef(X, transpose(W, N, K), M, K, N), 1e-2);
          backward(y, Tensor.fromArray(f32(R), [M, N]));
          checkTensor('linear bf16', 'dx', x.grad!.toArray(), matmulRef(R, W, M, N, K), 1e-2);
          checkTensor('linear bf16', 'dW', w.grad!.toArray(), matmulRef(transpose(R, M, N), X, N, M, K), 1e-2);
          x.grad!.dispose();
          w.grad!.dispose();
        });
      } finally {
        setAutocast(prev);
      }
    });
  });

  describe('gemm blocking (packed fp32 kernel)', () => {
    // [M, N, K]: K > KC (2048) in two equal depth blocks with N > nc (992 at that depth); M > MC
    // (42) with a partial 14-row tile; N > nc (4096 at small K) with a partial 32-column panel and
    // M too small to split rows (columns split instead); row blocks shared out with all of packed A
    // kept across column blocks (with and without two depth blocks); odd sizes everywhere.
    const shapes = [
      [20, 1000, 2100],
      [200, 70, 300],
      [3, 4133, 20],
      [29, 47, 513],
      [100, 4133, 20],
      [60, 1000, 2100],
    ] as const;
    for (const [M, N, K] of shapes) {
      for (const [tA, tB] of [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ] as const) {
        test(`M=${M} N=${N} K=${K} transA=${tA} transB=${tB}: bias, beta=0.5 vs float64`, () => {
          const r = rng(M + N + K + Number(tA) * 7 + Number(tB) * 13);
          const A = randn(M * K, r),
            B = randn(K * N, r),
            bias = randn(N, r),
            C0 = randn(M * N, r);
          tidy(() => {
            const C = Tensor.fromArray(f32(C0), [M, N]);
            gemmInto(
              C,
              Tensor.fromArray(f32(A), tA ? [K, M] : [M, K]),
              Tensor.fromArray(f32(B), tB ? [N, K] : [K, N]),
              {
                M,
                N,
                K,
                transA: tA,
                transB: tB,
                beta: 0.5,
                bias: Tensor.fromArray(f32(bias), [N]),
              },
            );
            const ref = matmulRef(tA ? transpose(A, K, M) : A, tB ? transpose(B, N, K) : B, M, K, N).map(
              (v, i) => v + bias[i % N]! + 0.5 * C0[i]!,
            );
            checkTensor('gemm', 'C', C.toArray(), ref, 1e-5);
          });
        });
      }
    }

    test('element offsets into the storages (views) and batched broadcast weights', () => {
      const r = rng(77);
      const batch = 3,
        M = 31,
        N = 45,
        K = 530,
        aOff = 5,
        bOff = 11,
        cOff = 7;
      const A = randn(aOff + batch * M * K, r),
        B = randn(bOff + N * K, r);
      tidy(() => {
        const C = Tensor.zeros([cOff + batch * M * N]);
        gemmInto(C, Tensor.fromArray(f32(A), [A.length]), Tensor.fromArray(f32(B), [B.length]), {
          batch,
          batchB: 1,
          M,
          N,
          K,
          transB: true,
          aOff,
          bOff,
          cOff,
        });
        const out = C.toArray();
        const Wt = transpose(B.subarray(bOff), N, K);
        for (let b = 0; b < batch; b++) {
          const ref = matmulRef(A.subarray(aOff + b * M * K, aOff + (b + 1) * M * K), Wt, M, K, N);
          checkTensor('gemm', `C[${b}]`, out.subarray(cOff + b * M * N, cOff + (b + 1) * M * N), ref, 1e-5);
        }
        for (let i = 0; i < cOff; i++) assert.equal(out[i], 0, 'elements before cOff are untouched');
      });
    });

    // [150, 300, 700]: one column block; [150, 4200, 40]: two, with packed A kept and read by
    // whichever thread takes a row block.
    for (const [M, N, K] of [
      [150, 300, 700],
      [150, 4200, 40],
    ] as const) {
      test(`bitwise identical results on 1 and 2 threads (M=${M} N=${N} K=${K})`, () => {
        const r = rng(3);
        const A = f32(randn(M * K, r)),
          B = f32(randn(N * K, r));
        assertSameAcrossThreads(() =>
          tidy(() => {
            const C = Tensor.zeros([M, N]);
            gemmInto(C, Tensor.fromArray(A, [M, K]), Tensor.fromArray(B, [N, K]), { M, N, K, transB: true });
            return Array.from(C.toArray());
          }),
        );
      });
    }
  });

  describe('gemv (decode-shaped Linear)', () => {
    for (const [M, N, K] of [
      [1, 7, 5],
      [3, 33, 40],
      [8, 130, 67],
      [13, 65, 1024],
      [16, 64, 512],
      [32, 9, 17],
    ] as const) {
      test(`M=${M} N=${N} K=${K}: bias, beta 0 and 1 vs float64`, () => {
        const r = rng(M * 1000 + N + K);
        const X = randn(M * K, r),
          W = randn(N * K, r),
          bias = randn(N, r),
          C0 = randn(M * N, r);
        tidy(() => {
          const x = Tensor.fromArray(f32(X), [M, K]);
          const w = Tensor.fromArray(f32(W), [N, K]);
          const b = Tensor.fromArray(f32(bias), [N]);
          const y = linear(x, w, b); // routed to the small-M kernel
          const ref = matmulRef(X, transpose(W, N, K), M, K, N).map((v, i) => v + bias[i % N]!);
          checkTensor('gemv', 'y', y.toArray(), ref, 1e-5);
          const C = Tensor.fromArray(f32(C0), [M, N]);
          gemmInto(C, x, w, { M, N, K, transB: true, beta: 1 });
          checkTensor(
            'gemv',
            'y += x Wᵀ',
            C.toArray(),
            matmulRef(X, transpose(W, N, K), M, K, N).map((v, i) => v + C0[i]!),
            1e-5,
          );
        });
      });
    }
  });
});
