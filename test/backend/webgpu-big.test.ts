/**
 * Tensors over the WebGPU binding limit (maxStorageBufferBindingSize: 128 MiB on lavapipe, where a
 * 0.5B model's embedding is 545 MB): the limit is lowered here (setBindingLimit, as
 * GPG_RL_WEBGPU_MAX_BINDING_MB does) so small shapes take the split paths — the elementwise ops and
 * AdamW in element ranges, the embedding gather / scatter-add in vocabulary row windows, gemm in
 * blocks (the three LM-head layouts, bias, autocast, batched), copyRows in row ranges, the row
 * kernels (RMSNorm, RoPE, sumRows, dropout, log-softmax family, KL, sampling) and attention in
 * pieces of rows or batch items, the paged-KV write in slot windows and paged attention over
 * gathered blocks — and each equals the CPU backend; a single unit over the limit, or an operand
 * bound whole, refuses in one line naming the op, the operand, its size and the limit; a fixture model whose tied embedding is over the limit gives the CPU's log-probs and
 * gradients. Skips with one line when no adapter loads.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadBackend, setDefaultBackend, type Backend, type DeviceBuffer } from '../../src/backend/index.ts';
import { WebGpuOpError } from '../../src/backend/webgpu/device.ts';
import type { GemmArgs } from '../../src/backend/types.ts';
import { relErr, webgpuOrWhy } from '../helpers.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { readSafetensorsFile, toInt32 } from '../../src/model/safetensors.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { generate } from '../../src/generate/generate.ts';

const FIXTURES = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;

const { gpu, why } = await webgpuOrWhy();
const cpu = await loadBackend('cpu');

/** Deterministic values in [-1, 1). */
function data(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** sampleTokens on both backends for logits [B, V] (seeded) and the given uniforms: each backend's ids and log-probs. */
function sampleBoth(
  B: number,
  V: number,
  seed: number,
  u: Float32Array,
  o: { temperature: number; topK: number; topP: number; greedy: boolean },
): { cpu: Float32Array[]; gpu: Float32Array[] } {
  return both(
    [
      { n: B * V, seed },
      { n: B, seed: 0, ints: u },
      { n: B, seed: 0, dtype: 'int32', ints: new Int32Array(B) },
      { n: B, seed: 0 },
    ],
    [2, 3],
    (b, [x, un, ids, lp]) => b.sampleTokens(ids!, lp!, x!, un!, B, V, o.temperature, o.topK, o.topP, o.greedy),
  );
}

/** Runs `f` on both backends with the same float32 inputs (sizes, seeds); returns each backend's outputs. */
function both(
  inputs: { n: number; seed: number; dtype?: 'float32' | 'int32' | 'bfloat16'; ints?: Int32Array | Float32Array }[],
  outs: number[],
  f: (be: Backend, bufs: DeviceBuffer[]) => void,
): { cpu: Float32Array[]; gpu: Float32Array[] } {
  const run = (be: Backend) => {
    const bufs = inputs.map((x) => {
      const b = be.allocate(x.dtype ?? 'float32', x.n);
      be.upload(b, x.ints ?? data(x.n, x.seed));
      return b;
    });
    f(be, bufs);
    const res = outs.map((k) => Float32Array.from(be.download(bufs[k]!)));
    for (const b of bufs) be.free(b);
    return res;
  };
  return { cpu: run(cpu), gpu: run(gpu!) };
}

function close(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    // equal values (the +inf log-sum-exp of a query row with every key masked) are no error
    if (got[i] !== want[i]) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  assert.ok(worst <= tol, `${what}: max error ${worst.toExponential(3)}`);
}

describe('webgpu: tensors over the binding limit', { skip: gpu ? false : why }, () => {
  const be = gpu!;
  const LIMIT = 4096; // bytes: 1024 floats per binding
  let prev = 0;
  before(() => {
    prev = be.setBindingLimit(LIMIT);
    assert.equal(be.bindingLimit, LIMIT);
  });
  after(() => be.setBindingLimit(prev));

  test('elementwise ops and AdamW run in element ranges and equal the CPU', () => {
    const n = 5000; // ~5 bindings
    const r = both(
      [
        { n, seed: 1 },
        { n, seed: 2 },
        { n, seed: 3 },
        { n, seed: 4 },
        { n, seed: 5 },
      ],
      [0, 1, 2, 3, 4],
      (b, [p, gr, m, v, y]) => {
        b.scale(gr!, 0.5, n);
        b.axpy(y!, gr!, -2, n);
        b.addForward(y!, y!, p!, n);
        b.fill(m!, 0.25, n - 3);
        b.fill(v!, 0.5, n);
        b.adamwStep(p!, gr!, m!, v!, n, 1e-2, 0.9, 0.999, 1e-8, 0.1, 3);
      },
    );
    for (let k = 0; k < 5; k++) close(r.gpu[k]!, r.cpu[k]!, 1e-6, `buffer ${k}`);
  });

  test('casts over the limit equal the CPU', () => {
    const n = 4101; // odd: the last bf16 word is half used
    const r = both(
      [
        { n, seed: 7 },
        { n, seed: 0, dtype: 'bfloat16' },
        { n, seed: 8 },
      ],
      [1, 2],
      (b, [x, h, back]) => {
        b.castF32Bf16(h!, x!, n);
        b.castBf16F32(back!, h!, n);
      },
    );
    for (let k = 0; k < 2; k++) assert.deepEqual(r.gpu[k], r.cpu[k], `buffer ${k}`);
  });

  test('copy over the limit (bfloat16 at odd offsets, float32 within one buffer) equals the CPU', () => {
    const n = 5000;
    const r = both(
      [
        { n, seed: 15 },
        { n, seed: 0, dtype: 'bfloat16' },
        { n, seed: 0, dtype: 'bfloat16' },
        { n, seed: 16 },
      ],
      [2, 3],
      (b, [x, h, h2, y]) => {
        b.castF32Bf16(h!, x!, n);
        b.castF32Bf16(h2!, y!, n);
        b.copy(h2!, 3, h!, 1, n - 7); // odd offsets: half words at both ends
        b.copy(h2!, 2001, h2!, 10, 1500); // within one bf16 buffer
        b.copy(y!, 2500, y!, 7, 2400); // within one float32 buffer
      },
    );
    assert.deepEqual(r.gpu[0], r.cpu[0], 'bfloat16 copies');
    assert.deepEqual(r.gpu[1], r.cpu[1], 'float32 copy within one buffer');
  });

  test('embedding gather and scatter-add in vocabulary windows (and token pieces) equal the CPU', () => {
    const V = 300,
      C = 8; // weight 2400 floats: 3 windows
    // 37 tokens: out and dout fit one binding; 300: they do not (pieces of tokens)
    for (const N of [37, 300]) {
      const ids = Int32Array.from({ length: N }, (_, i) => (i * 97 + 5) % V);
      ids[3] = V - 1;
      ids[4] = 0;
      ids[9] = ids[2]!; // a repeated id sums in token order
      ids[N - 1] = ids[2]!; // and across token pieces
      const r = both(
        [
          { n: V * C, seed: 11 },
          { n: N, seed: 0, dtype: 'int32', ints: ids },
          { n: N * C, seed: 12 },
          { n: N * C, seed: 13 },
          { n: V * C, seed: 14 },
        ],
        [2, 0, 4],
        (b, [w, id, out, dout, dw]) => {
          b.embeddingForward(out!, w!, id!, N, V, C);
          b.embeddingBackward(w!, dout!, id!, N, V, C, false);
          b.embeddingBackward(dw!, dout!, id!, N, V, C, true);
        },
      );
      close(r.gpu[0]!, r.cpu[0]!, 0, `forward (${N} tokens)`);
      close(r.gpu[1]!, r.cpu[1]!, 1e-6, `backward (${N} tokens)`);
      close(r.gpu[2]!, r.cpu[2]!, 1e-6, `backward, accumulated (${N} tokens)`);
    }
  });

  test('gemm in blocks: the LM head layouts, bias, autocast and a product with every operand big', () => {
    const R = 5,
      V = 300,
      H = 8;
    const cases: { name: string; a: number; b: number; c: number; o: GemmArgs }[] = [
      // logits [R, V] = h [R, H] · Wᵀ (W [V, H] tied embedding)
      { name: 'logits', a: R * H, b: V * H, c: R * V, o: { M: R, N: V, K: H, transB: true } },
      // dh [R, H] = dlogits [R, V] · W [V, H]
      { name: 'dhidden', a: R * V, b: V * H, c: R * H, o: { M: R, N: H, K: V } },
      // dW [V, H] += dlogitsᵀ · h
      { name: 'dweight', a: R * V, b: R * H, c: V * H, o: { M: V, N: H, K: R, transA: true, beta: 1 } },
      { name: 'bias', a: R * H, b: V * H, c: R * V, o: { M: R, N: V, K: H, transB: true, beta: 0.5 } },
      { name: 'autocast', a: R * H, b: V * H, c: R * V, o: { M: R, N: V, K: H, transB: true, bf16: true } },
      { name: 'all big', a: 70 * 50, b: 50 * 60, c: 70 * 60, o: { M: 70, N: 60, K: 50, alpha: 0.5, beta: -1 } },
      {
        name: 'all big, both transposed, offsets',
        a: 70 * 50 + 3,
        b: 50 * 60 + 5,
        c: 70 * 60 + 7,
        o: { M: 70, N: 60, K: 50, transA: true, transB: true, aOff: 3, bOff: 5, cOff: 7, beta: 1 },
      },
    ];
    for (const c of cases) {
      const withBias = c.name === 'bias';
      const r = both(
        [
          { n: c.a, seed: 21 },
          { n: c.b, seed: 22 },
          { n: c.c, seed: 23 },
          { n: c.o.N, seed: 24 },
        ],
        [2],
        (b, [A, B, Cb, bias]) => b.gemm(Cb!, A!, B!, { ...c.o, bias: withBias ? bias! : null }),
      );
      close(r.gpu[0]!, r.cpu[0]!, 1e-5, c.name);
    }
  });

  test('copyRows over the limit in row ranges equals the CPU', () => {
    const r = both(
      [
        { n: 60 * 50, seed: 31 },
        { n: 40 * 70, seed: 32 },
      ],
      [1],
      (b, [src, dst]) => b.copyRows(dst!, src!, 38, 45, 70, 50, 3, 17),
    );
    close(r.gpu[0]!, r.cpu[0]!, 0, 'copyRows');
  });

  test('RMSNorm forward and backward in pieces of rows (windows and, off the alignment, copies) equal the CPU', () => {
    // C 4: pieces of 192 rows whose windows start aligned; C 40: pieces of 24 rows, through copies
    for (const [N, C] of [
      [600, 4],
      [50, 40],
    ] as const) {
      const r = both(
        [
          { n: N * C, seed: 41 },
          { n: C, seed: 42 },
          { n: N * C, seed: 43 },
          { n: N * C, seed: 0 },
          { n: N, seed: 0 },
          { n: N * C, seed: 0 },
          { n: C, seed: 44 },
        ],
        [3, 4, 5, 6],
        (b, [x, w, dy, y, rstd, dx, dw]) => {
          b.rmsnormForward(y!, rstd!, x!, w!, N, C, 1e-6);
          b.rmsnormBackward(dx!, dw!, dy!, x!, w!, rstd!, N, C);
        },
      );
      ['y', 'rstd', 'dx', 'dw'].forEach((name, k) => close(r.gpu[k]!, r.cpu[k]!, 1e-5, `${name} (C ${C})`));
    }
  });

  test('sumRows, dropout and RoPE over the limit equal the CPU', () => {
    const M = 70,
      N = 30;
    const r = both(
      [
        { n: M * N, seed: 51 },
        { n: N, seed: 52 },
      ],
      [1],
      (b, [x, out]) => b.sumRows(out!, x!, M, N, 0.5),
    );
    close(r.gpu[0]!, r.cpu[0]!, 1e-5, 'sumRows');
    const n = 5000;
    const d = both(
      [
        { n, seed: 53 },
        { n, seed: 0 },
        { n, seed: 54 },
      ],
      [1, 2],
      (b, [x, out, dx]) => {
        b.dropoutForward(out!, x!, n, 0.3, 2 ** 40 + 7);
        b.dropoutBackward(dx!, x!, n, 0.3, 2 ** 40 + 7);
      },
    );
    close(d.gpu[0]!, d.cpu[0]!, 0, 'dropout forward');
    close(d.gpu[1]!, d.cpu[1]!, 0, 'dropout backward');
    const B = 2,
      T = 30,
      H = 4,
      D = 8;
    const pos = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 50);
    const e = both(
      [
        { n: B * T * H * D, seed: 55 },
        { n: B * T, seed: 0, dtype: 'int32', ints: pos },
        { n: B * T * H * D, seed: 0 },
        { n: B * T * H * D, seed: 0 },
      ],
      [2, 3],
      (b, [x, p, y, dx]) => {
        b.ropeForward(y!, x!, p!, B, T, H, D, 10000);
        b.ropeBackward(dx!, x!, p!, B, T, H, D, 10000);
      },
    );
    close(e.gpu[0]!, e.cpu[0]!, 1e-6, 'rope forward');
    close(e.gpu[1]!, e.cpu[1]!, 1e-6, 'rope backward');
  });

  test('the log-softmax family and KL in pieces of rows (at a row offset, in place or not) equal the CPU', () => {
    const rows = 7,
      V = 300,
      off = 3;
    const tg = Int32Array.from({ length: off + rows }, (_, i) => (i * 41) % V);
    const r = both(
      [
        { n: rows * V, seed: 61 },
        { n: off + rows, seed: 0, dtype: 'int32', ints: tg },
        { n: off + rows, seed: 0 },
        { n: off + rows, seed: 0 },
        { n: off + rows, seed: 0 },
        { n: off + rows, seed: 62 },
        { n: rows * V, seed: 0 },
        { n: rows * V, seed: 61 },
        { n: rows * V, seed: 0 },
      ],
      [2, 3, 4, 6, 7, 8],
      (b, [logits, t, lp, lse, ent, dlp, dl, dlIn, dh]) => {
        b.logprobsForward(lp!, lse!, ent!, logits!, t!, rows, V, 0.7, off);
        b.logprobsBackward(dl!, logits!, dlp!, lse!, t!, rows, V, 0.7, off);
        b.logprobsBackward(dlIn!, dlIn!, dlp!, lse!, t!, rows, V, 0.7, off);
        b.logprobsEntropyBackward(dh!, logits!, dlp!, lse!, ent!, rows, V, 0.7, off);
      },
    );
    ['lp', 'lse', 'entropy', 'dlogits', 'dlogits in place', 'entropy dlogits'].forEach((name, k) =>
      close(r.gpu[k]!, r.cpu[k]!, 1e-5, name),
    );
    const N = 6;
    const kl = both(
      [
        { n: N * V, seed: 63 },
        { n: N * V, seed: 64 },
        { n: N, seed: 0 },
        { n: N * V, seed: 65 },
        { n: N * V, seed: 0 },
        { n: N * V, seed: 65 },
      ],
      [2, 4, 5],
      (b, [pl, ql, out, u, hv, uIn]) => {
        b.klForward(out!, pl!, ql!, N, V, 1.3);
        b.klHvp(hv!, pl!, u!, N, V, 1.3);
        b.klHvp(uIn!, pl!, uIn!, N, V, 1.3);
      },
    );
    ['kl', 'hvp', 'hvp in place'].forEach((name, k) => close(kl.gpu[k]!, kl.cpu[k]!, 1e-5, name));
  });

  test('attention forward and backward in pieces of batch items equal the CPU', () => {
    const B = 3,
      T = 20,
      H = 4,
      Hkv = 2,
      D = 8; // q 640 floats per item: 3 items over a 1024-float binding
    const mask = Int32Array.from({ length: B * T }, (_, i) => (i % T < 2 && i >= T ? 0 : 1)); // item 1 left-padded
    const nq = B * T * H * D,
      nkv = B * T * Hkv * D;
    const r = both(
      [
        { n: nq, seed: 71 },
        { n: nkv, seed: 72 },
        { n: nkv, seed: 73 },
        { n: B * T, seed: 0, dtype: 'int32', ints: mask },
        { n: nq, seed: 0 },
        { n: B * H * T, seed: 0 },
        { n: nq, seed: 74 },
        { n: nq, seed: 0 },
        { n: nkv, seed: 0 },
        { n: nkv, seed: 0 },
      ],
      [4, 5, 7, 8, 9],
      (b, [q, k, v, m, out, lse, dout, dq, dk, dv]) => {
        b.attentionForward(out!, lse!, q!, k!, v!, m!, B, T, T, T, H, Hkv, D, 0.35);
        b.attentionBackward(dq!, dk!, dv!, dout!, q!, k!, v!, out!, lse!, m!, B, T, H, Hkv, D, 0.35);
      },
    );
    ['out', 'lse', 'dq', 'dk', 'dv'].forEach((name, k) => close(r.gpu[k]!, r.cpu[k]!, 1e-5, name));
  });

  test('paged KV write and attention over the limit (slot windows, gathered blocks; or rows of q in pieces) equal the CPU', () => {
    const Hkv = 2,
      H = 4,
      D = 8,
      bs = 4,
      row = Hkv * D;
    const cases = [
      // pools of 2560 floats (3 bindings): slot windows and gathered blocks; row 1 shares row 0's
      // first block, blocks from both ends of the pool
      { NB: 40, Tq: 2, ctx: [9, 14, 3], table: [0, 39, 0, 0, 0, 38, 20, 21, 37, 0, 0, 0] },
      // pools of 768 floats (one binding), q and out of 1536: pieces of rows
      {
        NB: 12,
        Tq: 8,
        ctx: [8, 12, 9, 10, 16, 8],
        table: [0, 1, 0, 0, 2, 3, 4, 0, 5, 6, 7, 0, 8, 9, 7, 0, 10, 11, 1, 0, 2, 3, 0, 0],
      },
    ];
    for (const { NB, Tq, ctx, table } of cases) {
      const S = NB * bs;
      const n = 30;
      const R = ctx.length;
      const maxBlocks = table.length / R;
      // slots spread over the whole pool
      const slots = Int32Array.from({ length: n }, (_, i) => (i * 53) % S);
      const r = both(
        [
          { n: S * row, seed: 81 },
          { n: S * row, seed: 82 },
          { n: n * row, seed: 83 },
          { n: n * row, seed: 84 },
          { n, seed: 0, dtype: 'int32', ints: slots },
          { n: R * Tq * H * D, seed: 85 },
          { n: table.length, seed: 0, dtype: 'int32', ints: Int32Array.from(table) },
          { n: R, seed: 0, dtype: 'int32', ints: Int32Array.from(ctx) },
          { n: R * Tq * H * D, seed: 0 },
        ],
        [0, 1, 8],
        (b, [kp, vp, k, v, sl, q, tb, c, out]) => {
          b.pagedKvWrite(kp!, vp!, k!, v!, sl!, n, S, row);
          b.pagedAttentionForward(out!, q!, kp!, vp!, tb!, c!, R, Tq, H, Hkv, D, bs, maxBlocks, NB, 0.35);
        },
      );
      close(r.gpu[0]!, r.cpu[0]!, 0, `k pool (${NB} blocks)`);
      close(r.gpu[1]!, r.cpu[1]!, 0, `v pool (${NB} blocks)`);
      close(r.gpu[2]!, r.cpu[2]!, 1e-5, `paged attention (${NB} blocks)`);
    }
  });

  test('sampling in pieces of rows and a batched product with big operands equal the CPU', () => {
    const B = 5,
      V = 300;
    const u = Float32Array.from({ length: B }, (_, i) => (i + 0.5) / B);
    for (const [greedy, topK, topP] of [
      [true, 0, 1],
      [false, 0, 1],
      [false, 20, 0.9],
    ] as const) {
      const r = sampleBoth(B, V, 91, u, { temperature: 0.8, topK, topP, greedy });
      close(r.gpu[0]!, r.cpu[0]!, 0, `ids (greedy ${greedy}, top_k ${topK}, top_p ${topP})`);
      close(r.gpu[1]!, r.cpu[1]!, 1e-5, `log-probs (greedy ${greedy}, top_k ${topK}, top_p ${topP})`);
    }
    const [batch, M, N, K] = [3, 20, 30, 25];
    for (const batchB of [3, 1]) {
      const r = both(
        [
          { n: batch * M * K, seed: 92 },
          { n: batchB * K * N, seed: 93 },
          { n: batch * M * N, seed: 94 },
        ],
        [2],
        (b, [A, Bm, Cm]) => b.gemm(Cm!, A!, Bm!, { M, N, K, batch, batchB, beta: 0.5 }),
      );
      close(r.gpu[0]!, r.cpu[0]!, 1e-5, `batched gemm (batchB ${batchB})`);
    }
  });

  test('a single unit over the limit, or an operand bound whole, refuses in one line: the op, the operand, its size, the limit', () => {
    // one row of logits (2000 floats) does not fit a 1024-float binding
    const logits = be.allocate('float32', 4000);
    const lse = be.allocate('float32', 2);
    // a RoPE table for positions up to 299 (300 · 4 cos values) is bound whole
    const x = be.allocate('float32', 8);
    const y = be.allocate('float32', 8);
    const pos = be.allocate('int32', 1);
    try {
      assert.throws(
        () => be.logprobsForward(null, lse, null, logits, null, 2, 2000, 1, 0),
        (e: unknown) =>
          e instanceof WebGpuOpError &&
          /^webgpu: logprobsForward: one row of logits \(2000 float32 elements, 7\.8 KiB\) exceeds this adapter's maxStorageBufferBindingSize \(4\.0 KiB\)$/.test(
            e.message,
          ),
      );
      be.upload(pos, Int32Array.of(299));
      assert.throws(
        () => be.ropeForward(y, x, pos, 1, 1, 1, 8, 10000),
        (e: unknown) =>
          e instanceof WebGpuOpError &&
          /^webgpu: rope_forward: cos table \(float32\[\d+\], [\d.]+ KiB\) exceeds this adapter's maxStorageBufferBindingSize \(4\.0 KiB\); rope_forward binds it in one piece$/.test(
            e.message,
          ),
      );
    } finally {
      for (const b of [logits, lse, x, y, pos]) be.free(b);
    }
  });

  test('a fixture model over the limit: log-probs, gradients and greedy generation equal the CPU', () => {
    const kind = 'qwen2-tiny'; // embedding 384 × 64 floats = 96 KiB; one sequence's q 16 × 64 floats = 4 KiB
    const ref = readSafetensorsFile(join(FIXTURES, kind, 'reference.safetensors')).tensors;
    const T = ref.get('input_ids')!.shape[1]!;
    const step = (b: Backend, B: number) => {
      const ids = Int32Array.from(toInt32(ref.get('input_ids')!).subarray(0, B * T));
      const mask = Int32Array.from(toInt32(ref.get('attention_mask')!).subarray(0, B * T));
      const prev = setDefaultBackend(b);
      const model = CausalLM.load(join(FIXTURES, kind));
      try {
        model.setRequiresGrad(true);
        return tidy(() => {
          const { logps, index } = model.tokenLogps({ ids, mask, B, T });
          const w = Float32Array.from({ length: index.length }, (_, i) => ((i % 5) - 2) / index.length);
          const lp = logps.toFloat32();
          backward(logps, Tensor.fromArray(w, [w.length]));
          const grads = new Map<string, Float32Array>();
          for (const [n, p] of model.trainableParameters()) grads.set(n, p.grad!.toFloat32());
          return { lp, grads };
        });
      } finally {
        model.dispose();
        if (prev) setDefaultBackend(prev);
      }
    };
    // the greedy prompts, left padding dropped
    const gp = toInt32(ref.get('greedy_prompt_ids')!);
    const gm = toInt32(ref.get('greedy_prompt_mask')!);
    const P = ref.get('greedy_prompt_ids')!.shape[1]!;
    const prompts = Array.from({ length: gm.length / P }, (_, b) =>
      Array.from(gp.subarray(b * P, (b + 1) * P)).filter((_, t) => gm[b * P + t]),
    );
    const N = ref.get('greedy_ids')!.shape[1]!;
    const greedy = (b: Backend) => {
      const prev = setDefaultBackend(b);
      const model = CausalLM.load(join(FIXTURES, kind));
      try {
        return generate(model, prompts, { maxNewTokens: N, eosTokenIds: [], greedy: true, blockSize: 4 });
      } finally {
        model.dispose();
        if (prev) setDefaultBackend(prev);
      }
    };
    const wantGen = greedy(cpu);
    // 64 KiB: only the embedding (and its gradient) exceed it, for the first two rows; 4 KiB: all six
    // rows, and nearly every tensor is split (weights in gemm blocks, activations, attention per
    // sequence, logits in rows, the KV pools gathered per decode step)
    for (const [limit, B] of [
      [64 * 1024, 2],
      [4096, 6],
    ] as const) {
      const want = step(cpu, B);
      const lim = be.setBindingLimit(limit);
      let got: ReturnType<typeof step>;
      let gen: ReturnType<typeof greedy> | null = null;
      try {
        got = step(be, B);
        if (limit === 4096) gen = greedy(be);
      } finally {
        be.setBindingLimit(lim);
      }
      close(got.lp, want.lp, 1e-5, `token log-probs (limit ${limit})`);
      for (const [n, g] of want.grads) {
        const e = relErr(got.grads.get(n)!, g);
        assert.ok(e <= 1e-3, `${n} (limit ${limit}): relative L2 ${e}`);
      }
      if (gen) {
        assert.deepEqual(gen.tokens, wantGen.tokens, 'greedy tokens');
        for (let i = 0; i < prompts.length; i++)
          close(Float32Array.from(gen.logps[i]!), Float32Array.from(wantGen.logps[i]!), 1e-4, `greedy log-probs ${i}`);
      }
    }
  });
});

test('sampling more rows than one dispatch has workgroups (65535) equals the CPU', { skip: gpu ? false : why }, () => {
  const B = 70_000,
    V = 4;
  const u = Float32Array.from({ length: B }, (_, i) => ((i * 0.618034) % 1) * 0.999);
  const r = sampleBoth(B, V, 95, u, { temperature: 1, topK: 0, topP: 1, greedy: false });
  close(r.gpu[0]!, r.cpu[0]!, 0, 'ids');
  close(r.gpu[1]!, r.cpu[1]!, 1e-5, 'log-probs');
});

test(
  'GPG_RL_WEBGPU_MAX_BINDING_MB lowers the binding limit (never above the device limit)',
  { skip: gpu ? false : why },
  () => {
    const code = `import('./src/backend/index.ts').then((m) => m.loadBackend('webgpu')).then((b) => console.log('LIMIT ' + b.bindingLimit + ' ' + b.adapter.limits.maxStorageBufferBindingSize))`;
    const r = spawnSync(process.execPath, ['--conditions=gpg-rl-source', '--import', 'tsx', '-e', code], {
      cwd: new URL('../..', import.meta.url).pathname,
      encoding: 'utf8',
      env: { ...process.env, GPG_RL_WEBGPU_MAX_BINDING_MB: '0.0625' },
      timeout: 120_000,
    });
    const m = /^LIMIT (\d+) (\d+)$/m.exec(r.stdout);
    assert.ok(m, r.stdout + r.stderr);
    assert.equal(Number(m[1]), 65536);
    assert.equal(Number(m[2]), gpu!.adapter.limits.maxStorageBufferBindingSize);
  },
);
