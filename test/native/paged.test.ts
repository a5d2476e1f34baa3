/**
 * The paged KV cache kernels (native/cpu/paged.cc via src/tensor/ops/paged.ts): pagedKvWrite scatters
 * rows into slots; pagedAttention over scattered, shared and partially filled blocks equals a float64
 * causal GQA reference over each row's own keys (decode Tq = 1 and prefill Tq > 1), is thread
 * invariant, and bad tables, slots and shapes are one clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { pagedAttention, pagedKvWrite } from '../../src/tensor/ops/paged.ts';
import { assertSameAcrossThreads, checkTensor, randn, rng, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';

describeEachBackend('paged attention', ['pagedKvWrite', 'pagedAttentionForward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);
  const Hkv = 2,
    H = 4,
    D = 8,
    bs = 4,
    NB = 12;
  const row = Hkv * D;

  /** Row b's keys: a random permutation of blocks, rows 0 and 1 sharing their first block. */
  function layout(ctx: number[], r: () => number, bs: number, NB: number): { table: Int32Array; maxBlocks: number } {
    const maxBlocks = Math.max(...ctx.map((c) => Math.ceil(c / bs)));
    const free = Array.from({ length: NB }, (_, i) => i).sort(() => r() - 0.5);
    const table = new Int32Array(ctx.length * maxBlocks);
    let shared = -1;
    ctx.forEach((c, b) => {
      for (let j = 0; j < Math.ceil(c / bs); j++) {
        if (j === 0 && b === 1 && shared >= 0) table[b * maxBlocks] = shared;
        else table[b * maxBlocks + j] = free.pop()!;
        if (j === 0 && b === 0) shared = table[0]!;
      }
    });
    return { table, maxBlocks };
  }

  function reference(
    q: Float64Array,
    pool: { k: Float64Array; v: Float64Array },
    table: Int32Array,
    maxBlocks: number,
    ctx: number[],
    Tq: number,
    g: { H: number; Hkv: number; D: number; bs: number },
  ): Float64Array {
    const { H, Hkv, D, bs } = g;
    const row = Hkv * D;
    const out = new Float64Array(ctx.length * Tq * H * D);
    const scale = 1 / Math.sqrt(D);
    ctx.forEach((c, b) => {
      const slot = (s: number) => table[b * maxBlocks + Math.floor(s / bs)]! * bs + (s % bs);
      for (let i = 0; i < Tq; i++)
        for (let h = 0; h < H; h++) {
          const kh = Math.floor(h / (H / Hkv));
          const qo = ((b * Tq + i) * H + h) * D;
          const n = c - Tq + i + 1;
          const sc = Array.from({ length: n }, (_, s) => {
            let d = 0;
            for (let e = 0; e < D; e++) d += q[qo + e]! * pool.k[slot(s) * row + kh * D + e]!;
            return d * scale;
          });
          const mx = Math.max(...sc);
          const p = sc.map((x) => Math.exp(x - mx));
          const Z = p.reduce((a, x) => a + x, 0);
          for (let e = 0; e < D; e++) {
            let acc = 0;
            for (let s = 0; s < n; s++) acc += p[s]! * pool.v[slot(s) * row + kh * D + e]!;
            out[qo + e] = acc / Z;
          }
        }
    });
    return out;
  }

  // geometries: the small one above; Qwen2.5-0.5B's heads (14 on 2 kv heads, D 64: the AVX-512 path,
  // keys across several 64-key chunks); a group wider than one task's 16 vectors (40 heads on 1 kv head)
  const geometries = [
    { H, Hkv, D, bs, NB, ctx: [5, 9, 3, 16] },
    { H: 14, Hkv: 2, D: 64, bs: 16, NB: 24, ctx: [70, 130, 5, 64] },
    { H: 40, Hkv: 1, D: 16, bs: 8, NB: 24, ctx: [66, 3, 9] },
  ];
  for (const g of geometries)
    for (const Tq of [1, 3])
      test(`H ${g.H} / Hkv ${g.Hkv}, D ${g.D}, Tq ${Tq}: scattered, shared and partial blocks equal the float64 reference; each row equals itself alone; thread invariant`, () => {
        const r = rng(7 + Tq + g.D);
        const ctx = g.ctx.map((c) => Math.max(c, Tq));
        const grow = g.Hkv * g.D;
        const { table, maxBlocks } = layout(ctx, r, g.bs, g.NB);
        const k = randn(g.NB * g.bs * grow, r);
        const v = randn(g.NB * g.bs * grow, r);
        const q = randn(ctx.length * Tq * g.H * g.D, r);
        tidy(() => {
          const kp = Tensor.fromArray(f32(k), [g.NB * g.bs, g.Hkv, g.D]);
          const vp = Tensor.fromArray(f32(v), [g.NB * g.bs, g.Hkv, g.D]);
          const run = (rows: number[]) => {
            const per = Tq * g.H * g.D;
            const qs = new Float32Array(rows.length * per);
            const tb = new Int32Array(rows.length * maxBlocks);
            rows.forEach((b, i) => {
              qs.set(f32(q).subarray(b * per, (b + 1) * per), i * per);
              tb.set(table.subarray(b * maxBlocks, (b + 1) * maxBlocks), i * maxBlocks);
            });
            return pagedAttention(
              Tensor.fromArray(qs, [rows.length, Tq, g.H, g.D]),
              kp,
              vp,
              Tensor.fromArray(tb, [rows.length, maxBlocks], 'int32'),
              Tensor.fromArray(Int32Array.from(rows.map((b) => ctx[b]!)), [rows.length], 'int32'),
              g.bs,
            ).toArray();
          };
          const all = ctx.map((_, b) => b);
          const want = reference(
            Float64Array.from(f32(q)),
            { k: Float64Array.from(f32(k)), v: Float64Array.from(f32(v)) },
            table,
            maxBlocks,
            ctx,
            Tq,
            g,
          );
          const got = run(all);
          checkTensor('pagedAttention', 'out', got, want, 1e-5);
          const per = Tq * g.H * g.D;
          for (const b of all)
            assert.deepEqual(
              run([b]),
              got.subarray(b * per, (b + 1) * per),
              `row ${b} alone differs from row ${b} in the batch`,
            );
          assertSameAcrossThreads(() => Array.from(run(all)));
        });
      });

  test('pagedKvWrite puts each row at its slot and leaves the others', () => {
    const r = rng(3);
    tidy(() => {
      const kp = Tensor.zeros([NB * bs, Hkv, D]);
      const vp = Tensor.zeros([NB * bs, Hkv, D]);
      const k = f32(randn(3 * row, r));
      const v = f32(randn(3 * row, r));
      const slots = Int32Array.of(7, 0, 45);
      pagedKvWrite(
        kp,
        vp,
        Tensor.fromArray(k, [3, Hkv, D]),
        Tensor.fromArray(v, [3, Hkv, D]),
        Tensor.fromArray(slots, [3], 'int32'),
      );
      const K = kp.toArray();
      const V = vp.toArray();
      slots.forEach((s, i) => {
        assert.deepEqual(K.subarray(s * row, (s + 1) * row), k.subarray(i * row, (i + 1) * row));
        assert.deepEqual(V.subarray(s * row, (s + 1) * row), v.subarray(i * row, (i + 1) * row));
      });
      assert.equal(Array.from(K).filter((x) => x !== 0).length, 3 * row);
    });
  });

  test('bad input: slot outside the pool, block outside the pool, too many keys, shapes', () => {
    tidy(() => {
      const kp = Tensor.zeros([NB * bs, Hkv, D]);
      const one = Tensor.zeros([1, Hkv, D]);
      assert.throws(
        () => pagedKvWrite(kp, kp, one, one, Tensor.fromArray(Int32Array.of(NB * bs), [1], 'int32')),
        (e: unknown) =>
          e instanceof NativeOpError && /slot 48 of row 0 is outside the pool of 48 slots/.test(e.message),
      );
      const q = Tensor.zeros([1, 1, H, D]);
      const ctx = (n: number) => Tensor.fromArray(Int32Array.of(n), [1], 'int32');
      assert.throws(
        () => pagedAttention(q, kp, kp, Tensor.fromArray(Int32Array.of(NB), [1, 1], 'int32'), ctx(2), bs),
        (e: unknown) => e instanceof NativeOpError && /entry 0 = 12 is outside the pool of 12 blocks/.test(e.message),
      );
      assert.throws(
        () => pagedAttention(q, kp, kp, Tensor.fromArray(Int32Array.of(0), [1, 1], 'int32'), ctx(5), bs),
        (e: unknown) =>
          e instanceof NativeOpError && /row 0 has 5 keys; need 1 <= keys <= max_blocks·block_size = 4/.test(e.message),
      );
      assert.throws(
        () => pagedAttention(Tensor.zeros([1, 1, 3, D]), kp, kp, Tensor.zeros([1, 1], 'int32'), ctx(1), bs),
        (e: unknown) => e instanceof TensorOpError && /3 query heads are not a multiple of 2 kv heads/.test(e.message),
      );
      assert.throws(
        () => pagedAttention(q, kp, kp, Tensor.zeros([1, 1], 'int32'), ctx(1), 5),
        (e: unknown) =>
          e instanceof TensorOpError &&
          /blockSize 5 must be a positive integer dividing the pool's 48 slots/.test(e.message),
      );
    });
  });
});
