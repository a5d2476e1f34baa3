/**
 * The generation products (GemmArgs.packed → native/cpu/packed.cc): y = x·Wᵀ + bias through a
 * packed fp32 or bf16 copy of the weight (bf16: x rounded to bf16 too, fp32 accumulation), against a
 * float64 reference, for row counts that cross the 12- and 6-row micro-tiles, output counts that
 * cross the 16-output panel and its pairs, odd K (bf16 k-pairs padded); batch invariance (a row
 * alone = the same row inside any batch, bit for bit) and thread invariance; the copy follows
 * writes to the weight; no gradient path uses it. Where the CPU has AMX-BF16 (K % 32 == 0 takes the
 * tile path): the same checks across its 16-row tiles and 32-row blocks, and against the vector path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { gemmInto, linear, setGenerationWeights } from '../../src/tensor/ops/matmul.ts';
import { benchOp } from '../../src/backend/cpu/addon.ts';
import {
  assertSameAcrossThreads,
  checkTensor,
  matmulRef,
  randn,
  rng,
  roundBf16,
  transpose,
  describeEachBackend,
} from '../helpers.ts';

describeEachBackend('packed generation gemm', ['gemm'], (be) => {
  const f32 = (a: Float64Array) => Float32Array.from(a);
  const ref = (x: Float64Array, W: ArrayLike<number>, bias: Float64Array | null, M: number, N: number, K: number) => {
    const y = matmulRef(x, transpose(W, N, K), M, K, N);
    if (bias) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) y[m * N + n]! += bias[n]!;
    return y;
  };

  for (const dtype of ['float32', 'bfloat16'] as const)
    for (const [M, N, K] of [
      [1, 1, 1],
      [5, 15, 7],
      [6, 16, 33],
      [7, 17, 64],
      [13, 40, 96],
      [64, 33, 130],
      [25, 70, 33],
      [12, 32, 8],
    ] as const)
      test(`${dtype}: M ${M} N ${N} K ${K}, with and without bias`, () => {
        const r = rng(M * 1000 + N * 10 + K);
        const x = f32(randn(M * K, r));
        const W = f32(randn(N * K, r));
        const bias = randn(N, r);
        // bf16 products: both operands rounded to bf16 (x per call), fp32 accumulation
        const Wref = dtype === 'bfloat16' ? roundBf16(W) : W;
        const xref = dtype === 'bfloat16' ? roundBf16(x) : x;
        tidy(() => {
          const xt = Tensor.fromArray(x, [M, K]);
          const Wt = Tensor.fromArray(W, [N, K]);
          for (const b of [null, bias]) {
            const y = Tensor.empty([M, N]);
            const bt = b ? Tensor.fromArray(f32(b), [N]) : null;
            gemmInto(y, xt, Wt, { M, N, K, transB: true, bias: bt, weight: true, packed: dtype });
            const want = ref(Float64Array.from(xref), Wref, b ? Float64Array.from(f32(b)) : null, M, N, K);
            checkTensor('packed gemm', `y (${dtype}${b ? ', bias' : ''})`, y.toArray(), want, 1e-5);
          }
        });
        be.releasePackedWeights();
      });

  test('batch invariant: each row alone equals the row inside a batch of any size, bit for bit', () => {
    const r = rng(5);
    const K = 70,
      N = 50,
      M = 23;
    const x = f32(randn(M * K, r));
    const W = f32(randn(N * K, r));
    for (const dtype of ['float32', 'bfloat16'] as const)
      tidy(() => {
        const Wt = Tensor.fromArray(W, [N, K]);
        const full = Tensor.empty([M, N]);
        gemmInto(full, Tensor.fromArray(x, [M, K]), Wt, { M, N, K, transB: true, weight: true, packed: dtype });
        const all = full.toArray();
        for (const [lo, rows] of [
          [0, 1],
          [3, 1],
          [22, 1],
          [2, 7],
          [5, 12],
        ] as const) {
          const part = Tensor.empty([rows, N]);
          const xs = Tensor.fromArray(x.subarray(lo * K, (lo + rows) * K), [rows, K]);
          gemmInto(part, xs, Wt, { M: rows, N, K, transB: true, weight: true, packed: dtype });
          assert.deepEqual(
            part.toArray(),
            all.subarray(lo * N, (lo + rows) * N),
            `${dtype} rows ${lo}…${lo + rows - 1}`,
          );
        }
        assertSameAcrossThreads(() => {
          const y = Tensor.empty([M, N]);
          gemmInto(y, Tensor.fromArray(x, [M, K]), Wt, { M, N, K, transB: true, weight: true, packed: dtype });
          return Array.from(y.toArray());
        });
        be.releasePackedWeights();
      });
  });

  test('a bf16 weight (frozen LoRA base) gets a packed copy equal, bit for bit, to its fp32 widening', () => {
    const r = rng(13);
    const [M, N, K] = [9, 40, 64];
    const x = f32(randn(M * K, r));
    const W = roundBf16(f32(randn(N * K, r)));
    for (const dtype of ['float32', 'bfloat16'] as const)
      tidy(() => {
        const xt = Tensor.fromArray(x, [M, K]);
        const run = (w: Tensor) => {
          const y = Tensor.empty([M, N]);
          gemmInto(y, xt, w, { M, N, K, transB: true, weight: true, packed: dtype });
          return y.toArray();
        };
        const wide = run(Tensor.fromArray(W, [N, K]));
        const bf = Tensor.fromArray(W, [N, K], 'bfloat16');
        assert.equal(bf.dtype, 'bfloat16');
        assert.deepEqual(run(bf), wide, `${dtype} panels from a bf16 weight`);
        assert.deepEqual(run(bf), wide, `${dtype}: the kept copy, second use`);
        be.releasePackedWeights();
      });
  });

  test('the packed copy follows writes to the weight; linear under setGenerationWeights only without gradient', () => {
    const r = rng(9);
    const K = 20,
      N = 18,
      M = 4;
    const x = f32(randn(M * K, r));
    const W1 = f32(randn(N * K, r));
    const W2 = f32(randn(N * K, r));
    tidy(() => {
      const Wt = Tensor.fromArray(W1, [N, K]).keep();
      const xt = Tensor.fromArray(x, [M, K]);
      const prev = setGenerationWeights('float32');
      try {
        checkTensor('packed', 'y(W1)', linear(xt, Wt).toArray(), ref(Float64Array.from(x), W1, null, M, N, K), 1e-5);
        Wt.write(W2);
        checkTensor('packed', 'y(W2)', linear(xt, Wt).toArray(), ref(Float64Array.from(x), W2, null, M, N, K), 1e-5);
        // with a gradient the training product runs (and the backward works)
        Wt.requiresGrad = true;
        const y = linear(xt, Wt);
        assert.ok(y.requiresGrad, 'a recorded product');
      } finally {
        setGenerationWeights(prev);
        Wt.requiresGrad = false;
        Wt.dispose();
      }
    });
    be.releasePackedWeights();
  });

  // The AMX path (native/cpu/packed.cc): bf16 products with K % 32 == 0 on CPUs with AMX-BF16.
  const amx = be.name === 'cpu' && (benchOp('packed_amx')(-1) as boolean);
  const amxSkip = amx
    ? false
    : be.name !== 'cpu'
      ? 'AMX is a CPU path'
      : 'no AMX-BF16 on this CPU (or the OS refused the tile state, or GPG_RL_AMX=0)';
  test(
    'AMX (bf16, K % 32 == 0): float64 reference across row tiles and panel pairs, bias, batch and thread invariance',
    { skip: amxSkip },
    () => {
      for (const [M, N, K] of [
        [1, 16, 32],
        [15, 40, 64],
        [16, 33, 96],
        [17, 50, 32],
        [33, 16, 128],
        [70, 72, 96],
      ] as const) {
        const r = rng(M * 7 + N * 3 + K);
        const x = f32(randn(M * K, r));
        const W = f32(randn(N * K, r));
        const bias = f32(randn(N, r));
        tidy(() => {
          const Wt = Tensor.fromArray(W, [N, K]);
          const bt = Tensor.fromArray(bias, [N]);
          const full = Tensor.empty([M, N]);
          gemmInto(full, Tensor.fromArray(x, [M, K]), Wt, {
            M,
            N,
            K,
            transB: true,
            bias: bt,
            weight: true,
            packed: 'bfloat16',
          });
          const all = full.toArray();
          const want = ref(Float64Array.from(roundBf16(x)), roundBf16(W), Float64Array.from(bias), M, N, K);
          checkTensor('packed gemm (AMX)', `y M ${M} N ${N} K ${K}`, all, want, 1e-5);
          // rows alone and in sub-batches that start inside a 16-row tile or a 32-row block
          for (const [lo, rows] of [
            [0, 1],
            [M - 1, 1],
            [Math.floor(M / 2), Math.min(17, M - Math.floor(M / 2))],
          ] as const) {
            const part = Tensor.empty([rows, N]);
            const xs = Tensor.fromArray(x.subarray(lo * K, (lo + rows) * K), [rows, K]);
            gemmInto(part, xs, Wt, { M: rows, N, K, transB: true, bias: bt, weight: true, packed: 'bfloat16' });
            assert.deepEqual(
              part.toArray(),
              all.subarray(lo * N, (lo + rows) * N),
              `M ${M}: rows ${lo}…${lo + rows - 1}`,
            );
          }
          assertSameAcrossThreads(() => {
            const y = Tensor.empty([M, N]);
            gemmInto(y, Tensor.fromArray(x, [M, K]), Wt, {
              M,
              N,
              K,
              transB: true,
              bias: bt,
              weight: true,
              packed: 'bfloat16',
            });
            return Array.from(y.toArray());
          });
        });
        be.releasePackedWeights();
      }
    },
  );

  test(
    'AMX and the vector path (vdpbf16ps) agree within fp32 rounding of the same bf16 products',
    { skip: amxSkip },
    () => {
      const [M, N, K] = [40, 48, 896];
      const r = rng(11);
      const x = f32(randn(M * K, r));
      const W = f32(randn(N * K, r));
      const run = () =>
        tidy(() => {
          const y = Tensor.empty([M, N]);
          gemmInto(y, Tensor.fromArray(x, [M, K]), Tensor.fromArray(W, [N, K]), {
            M,
            N,
            K,
            transB: true,
            weight: true,
            packed: 'bfloat16',
          });
          return y.toArray();
        });
      const onAmx = run();
      assert.equal(benchOp('packed_amx')(0), false, 'the vector path when AMX is switched off');
      let onVector: ArrayLike<number>;
      try {
        onVector = run();
      } finally {
        assert.equal(benchOp('packed_amx')(1), true);
      }
      // |y| ~ sqrt(K): both sum the same exact bf16 products in fp32, in another order
      const want = ref(Float64Array.from(roundBf16(x)), roundBf16(W), null, M, N, K);
      checkTensor('packed gemm (AMX)', 'y', onAmx, want, 1e-5);
      checkTensor('packed gemm (vector)', 'y', onVector, want, 1e-5);
      checkTensor('packed gemm', 'AMX vs vector', onAmx, Float64Array.from(onVector), 1e-5);
      be.releasePackedWeights();
    },
  );
});
