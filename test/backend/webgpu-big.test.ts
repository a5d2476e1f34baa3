/**
 * Tensors over the WebGPU binding limit (maxStorageBufferBindingSize: 128 MiB on lavapipe, where a
 * 0.5B model's embedding is 545 MB): the limit is lowered here (setBindingLimit, as
 * GPG_RL_WEBGPU_MAX_BINDING_MB does) so small shapes take the split paths — the elementwise ops and
 * AdamW in element ranges, the embedding gather / scatter-add in vocabulary row windows, gemm in
 * blocks (the three LM-head layouts, bias, autocast), copyRows in row ranges — and each equals the
 * CPU backend; an op that does not split refuses in one line naming it, the operand, its size and
 * the limit; a fixture model whose tied embedding is over the limit gives the CPU's log-probs and
 * gradients. Skips with one line when no adapter loads.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadBackend, setDefaultBackend, type Backend, type DeviceBuffer } from '../../src/backend/index.ts';
import { WebGpuOpError } from '../../src/backend/webgpu/device.ts';
import type { GemmArgs } from '../../src/backend/types.ts';
import { webgpuOrWhy } from '../helpers.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { readSafetensorsFile, toInt32 } from '../../src/model/safetensors.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';

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

/** Runs `f` on both backends with the same float32 inputs (sizes, seeds); returns each backend's outputs. */
function both(
  inputs: { n: number; seed: number; dtype?: 'float32' | 'int32' | 'bfloat16'; ints?: Int32Array }[],
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
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
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

  test('embedding gather and scatter-add in vocabulary windows equal the CPU', () => {
    const V = 300,
      C = 8,
      N = 37; // weight 2400 floats: 3 windows
    const ids = Int32Array.from({ length: N }, (_, i) => (i * 97 + 5) % V);
    ids[3] = V - 1;
    ids[4] = 0;
    ids[9] = ids[2]!; // a repeated id sums in token order
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
    close(r.gpu[0]!, r.cpu[0]!, 0, 'forward');
    close(r.gpu[1]!, r.cpu[1]!, 1e-6, 'backward');
    close(r.gpu[2]!, r.cpu[2]!, 1e-6, 'backward, accumulated');
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

  test('an op that does not split refuses in one line: the op, the operand, its size, the limit', () => {
    const x = be.allocate('float32', 2000);
    const out = be.allocate('float32', 1000);
    try {
      assert.throws(
        () => be.sumRows(out, x, 2, 1000, 0),
        (e: unknown) =>
          e instanceof WebGpuOpError &&
          /^webgpu: sumRows: x \(float32\[2000\], 7\.8 KiB\) exceeds this adapter's maxStorageBufferBindingSize \(4\.0 KiB\); sumRows does not split/.test(
            e.message,
          ) &&
          !e.message.includes('\n'),
      );
      // a chunk of logits over the limit: the log-softmax names its logits binding
      const logits = be.allocate('float32', 2000);
      const lse = be.allocate('float32', 2);
      try {
        assert.throws(
          () => be.logprobsForward(null, lse, null, logits, null, 2, 1000, 1, 0),
          (e: unknown) =>
            e instanceof WebGpuOpError && /^webgpu: logprobsForward: logits \(float32\[2000\]/.test(e.message),
        );
      } finally {
        be.free(logits);
        be.free(lse);
      }
    } finally {
      be.free(x);
      be.free(out);
    }
  });

  test('a model whose tied embedding is over the limit: log-probs and gradients equal the CPU', () => {
    const kind = 'qwen2-tiny'; // embedding 384 × 64 floats = 96 KiB
    const ref = readSafetensorsFile(join(FIXTURES, kind, 'reference.safetensors')).tensors;
    // the first two rows: their activations and logits stay under the limit, the embedding does not
    const T = ref.get('input_ids')!.shape[1]!;
    const B = 2;
    const ids = Int32Array.from(toInt32(ref.get('input_ids')!).subarray(0, B * T));
    const mask = Int32Array.from(toInt32(ref.get('attention_mask')!).subarray(0, B * T));
    const step = (b: Backend) => {
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
    const want = step(cpu);
    const lim = be.setBindingLimit(64 * 1024); // only the embedding (and its gradient) exceed it
    let got: ReturnType<typeof step>;
    try {
      got = step(be);
    } finally {
      be.setBindingLimit(lim);
    }
    close(got.lp, want.lp, 1e-5, 'token log-probs');
    for (const [n, g] of want.grads) {
      const o = got.grads.get(n)!;
      let num = 0,
        den = 0;
      for (let i = 0; i < g.length; i++) {
        num += (o[i]! - g[i]!) ** 2;
        den += g[i]! ** 2;
      }
      assert.ok(Math.sqrt(num) <= 1e-3 * Math.sqrt(den) + 1e-12, `${n}: relative L2 ${Math.sqrt(num / den)}`);
    }
  });
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
