/**
 * The WebGPU backend as a whole (its kernels are checked one by one by the suites of test/native,
 * which run on every backend): the adapter it reports, the one-line error without an adapter, the
 * buffer pool, command batching (kernels queue; only reads block), the op without a kernel, the
 * three HF fixture models' logits and token log-probs (≤ 1e-4, as on CPU), and one GPG policy
 * gradient step whose loss and gradients equal the CPU backend's (loss within max(1e-3·|loss|,
 * 1e-5), each gradient within 1e-3 relative L2). Skips with one line when no adapter loads.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBackend, setDefaultBackend, type Backend } from '../../src/backend/index.ts';
import { WebGpuOpError, requestedFeatures } from '../../src/backend/webgpu/device.ts';
import { kernelFeatures, withEnables } from '../../src/backend/webgpu/wgsl.ts';
import { rmsnormBackwardDx, rmsnormForward } from '../../src/backend/webgpu/kernels/rmsnorm.ts';
import { webgpuOrWhy } from '../helpers.ts';
import { CausalLM, expandRows } from '../../src/model/decoder.ts';
import { readSafetensorsFile, toFloat32, toInt32 } from '../../src/model/safetensors.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward, noGrad } from '../../src/tensor/tape.ts';
import { runWebGpuBench } from '../../src/perf/webgpu.ts';

const FIXTURES = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const KINDS = ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny'] as const;
const root = new URL('../..', import.meta.url).pathname;

const { gpu, why } = await webgpuOrWhy();
const cpu = await loadBackend('cpu');

/** Runs `f` with `be` as the default backend (tensors it creates live there). */
function on<T>(be: Backend, f: () => T): T {
  const prev = setDefaultBackend(be);
  try {
    return f();
  } finally {
    if (prev) setDefaultBackend(prev);
  }
}

function reference(kind: string) {
  const ref = readSafetensorsFile(join(FIXTURES, kind, 'reference.safetensors')).tensors;
  return {
    f32: (n: string) => toFloat32(ref.get(n)!),
    i32: (n: string) => toInt32(ref.get(n)!),
    shape: (n: string) => ref.get(n)!.shape as number[],
  };
}

describe('webgpu backend', { skip: gpu ? false : why }, () => {
  const be = gpu!;

  test('reports its adapter: vendor, device, features, limits', () => {
    const a = be.adapter;
    assert.equal(typeof a.vendor, 'string');
    assert.equal(typeof a.description, 'string');
    assert.ok(Array.isArray(a.features));
    assert.ok(a.limits.maxStorageBufferBindingSize! >= 128 * 2 ** 20, JSON.stringify(a.limits));
    console.log(`webgpu adapter: ${a.vendor} ${a.device} (${a.description}); features ${a.features.join(', ')}`);
  });

  test('a freed buffer is reused for the next allocation of its size class (no per-op churn)', () => {
    const s0 = be.allocatorStats();
    const a = be.allocate('float32', 1000);
    be.free(a);
    const b = be.allocate('float32', 990);
    const s1 = be.allocatorStats();
    assert.equal(s1.hits - s0.hits, 1, 'the second allocation came from the pool');
    be.upload(
      b,
      Float32Array.from({ length: 990 }, (_, i) => i),
    );
    assert.equal((be.download(b, 989, 1) as Float32Array)[0], 989);
    be.free(b);
    const z = be.allocate('float32', 990, true);
    assert.deepEqual(
      [...(be.download(z, 985) as Float32Array)],
      [0, 0, 0, 0, 0],
      'zeroed when asked, whatever it held',
    );
    be.free(z);
  });

  test('bf16 and int32 buffers round-trip at odd offsets; bytes round-trip', () => {
    const h = be.allocate('bfloat16', 7);
    be.upload(h, Float32Array.from([1, 2, 3, 4, 5, 6, 7]));
    be.upload(h, Float32Array.from([1.00390625, -9]), 3); // 1 + 2^-8 rounds to 1 (ties to even)
    assert.deepEqual([...(be.download(h) as Float32Array)], [1, 2, 3, 1, -9, 6, 7]);
    assert.deepEqual([...(be.download(h, 1, 3) as Float32Array)], [2, 3, 1]);
    const bytes = be.downloadBytes(h);
    assert.equal(bytes.length, 14);
    const h2 = be.allocate('bfloat16', 7);
    be.uploadBytes(h2, bytes);
    assert.deepEqual([...(be.download(h2) as Float32Array)], [1, 2, 3, 1, -9, 6, 7]);
    const n = be.allocate('int32', 3);
    be.upload(n, Int32Array.from([-5, 2 ** 31 - 1, 7]));
    assert.deepEqual([...(be.download(n) as Int32Array)], [-5, 2 ** 31 - 1, 7]);
    for (const x of [h, h2, n]) be.free(x);
  });

  test('kernels queue in batches: a forward pass of many kernels blocks only when read', () => {
    const model = on(be, () => CausalLM.load(join(FIXTURES, 'qwen2-tiny')));
    const R = reference('qwen2-tiny');
    const [B, T] = R.shape('input_ids') as [number, number];
    const before = { ...be.device.stats };
    on(be, () =>
      noGrad(() =>
        tidy(() => {
          const y = model.logits(
            Tensor.fromArray(R.i32('input_ids'), [B, T], 'int32'),
            Tensor.fromArray(R.i32('attention_mask'), [B, T], 'int32'),
          );
          const queued = be.device.stats.syncs - before.syncs;
          y.toFloat32();
          const d = be.device.stats;
          assert.ok(d.dispatches - before.dispatches >= 20, `${d.dispatches - before.dispatches} kernels`);
          assert.ok(queued <= 2, `${queued} blocking round trips before the read`);
        }),
      ),
    );
    on(be, () => model.dispose());
  });

  test('a kernel that fails on the device is one WebGpuOpError at the next read, naming it; the device goes on', () => {
    be.device.dispatch('not-wgsl', () => 'this is not WGSL', 'brokenKernel', [], new Uint32Array(4), [1, 1, 1]);
    assert.throws(
      () => be.sync(),
      (e: unknown) =>
        e instanceof WebGpuOpError && /^webgpu: .*\(kernels since the last sync: brokenKernel\)$/.test(e.message),
    );
    const x = be.allocate('float32', 4);
    be.upload(x, Float32Array.from([1, 2, 3, 4]));
    be.scale(x, 0.5, 4);
    assert.deepEqual([...(be.download(x) as Float32Array)], [0.5, 1, 1.5, 2]);
    be.free(x);
  });

  test('every op of the seam has a kernel; a buffer over maxBufferSize is one clear error', () => {
    for (const op of ['gemm', 'attentionBackward', 'sampleTokens', 'pagedAttentionForward', 'adamwStep'] as const)
      assert.equal(be.supports(op), true, op);
    // the device has the adapter's own limits, not WebGPU's defaults
    assert.ok(be.bindingLimit <= be.adapter.limits.maxStorageBufferBindingSize!);
    const limit = be.adapter.limits.maxBufferSize!;
    assert.throws(
      () => be.allocate('float32', Math.floor(limit / 4) + 1),
      (e: unknown) =>
        e instanceof WebGpuOpError &&
        /^webgpu: allocate float32\[\d+\] \(.* [MK]iB\) exceeds this adapter's maxBufferSize \(.* MiB\)$/.test(
          e.message,
        ),
    );
  });

  for (const kind of KINDS)
    test(`${kind}: logits and token log-probs equal the transformers fixtures (max abs ≤ 1e-4)`, () => {
      const R = reference(kind);
      const [B, T] = R.shape('input_ids') as [number, number];
      const ids = R.i32('input_ids');
      const mask = R.i32('attention_mask');
      const model = on(be, () => CausalLM.load(join(FIXTURES, kind)));
      try {
        const { logits, lp, index } = on(be, () =>
          noGrad(() =>
            tidy(() => {
              const logits = model
                .logits(Tensor.fromArray(ids, [B, T], 'int32'), Tensor.fromArray(mask, [B, T], 'int32'))
                .toFloat32();
              const r = model.tokenLogps({ ids: Int32Array.from(ids), mask: Int32Array.from(mask), B, T });
              return { logits, lp: r.logps.toFloat32(), index: r.index };
            }),
          ),
        );
        const refLogits = R.f32('logits');
        const V = model.cfg.vocabSize;
        let worst = 0;
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++)
            if (mask[b * T + t])
              for (let v = 0; v < V; v++)
                worst = Math.max(worst, Math.abs(logits[(b * T + t) * V + v]! - refLogits[(b * T + t) * V + v]!));
        assert.ok(worst <= 1e-4, `${kind}: max abs logits error ${worst}`);
        const dense = expandRows(lp, index, B * (T - 1));
        const refLp = R.f32('token_logps');
        worst = 0;
        for (let b = 0; b < B; b++)
          for (let t = 1; t < T; t++)
            if (mask[b * T + t] && mask[b * T + t - 1])
              worst = Math.max(worst, Math.abs(dense[b * (T - 1) + t - 1]! - refLp[b * (T - 1) + t - 1]!));
        assert.ok(worst <= 1e-4, `${kind}: max abs token_logps error ${worst}`);
      } finally {
        on(be, () => model.dispose());
      }
    });

  test('one GPG policy-gradient step: loss and every gradient equal the CPU backend', () => {
    // the fixture's rows as 2 groups of B/2 completions, rewards per row; GPG (gpg_no_age):
    // A = r − mean_group, loss = −Σ lp·A·m / Σ m over completion tokens (here: every real target)
    const kind = 'qwen2-tiny';
    const R = reference(kind);
    const [B, T] = R.shape('input_ids') as [number, number];
    const ids = Int32Array.from(R.i32('input_ids'));
    const mask = Int32Array.from(R.i32('attention_mask'));
    const G = B / 2;
    const rewards = Array.from({ length: B }, (_, b) => (b * 7) % 3);
    const adv = rewards.map((r, b) => {
      const g0 = Math.floor(b / G) * G;
      let mean = 0;
      for (let j = g0; j < g0 + G; j++) mean += rewards[j]! / G;
      return r - mean;
    });
    const step = (be: Backend) =>
      on(be, () => {
        const model = CausalLM.load(join(FIXTURES, kind));
        try {
          model.setRequiresGrad(true);
          return tidy(() => {
            const { logps, index } = model.tokenLogps({ ids, mask, B, T });
            const w = new Float32Array(index.length);
            for (let i = 0; i < index.length; i++) w[i] = -adv[Math.floor(index[i]! / (T - 1))]! / index.length;
            const lp = logps.toFloat32();
            let loss = 0;
            for (let i = 0; i < lp.length; i++) loss += w[i]! * lp[i]!;
            backward(logps, Tensor.fromArray(w, [w.length]));
            const grads = new Map<string, Float32Array>();
            for (const [n, p] of model.trainableParameters()) grads.set(n, p.grad!.toFloat32());
            return { loss, grads };
          });
        } finally {
          model.dispose();
        }
      });
    const want = step(cpu);
    const got = step(be);
    assert.ok(
      Math.abs(got.loss - want.loss) <= Math.max(1e-3 * Math.abs(want.loss), 1e-5),
      `loss ${got.loss} vs cpu ${want.loss}`,
    );
    assert.equal(got.grads.size, want.grads.size);
    assert.ok(Math.abs(want.loss) > 1e-6, `a loss that tests something (${want.loss})`);
    let nonzero = 0;
    for (const [n, g] of want.grads) {
      const o = got.grads.get(n)!;
      let num = 0,
        den = 0;
      for (let i = 0; i < g.length; i++) {
        num += (o[i]! - g[i]!) ** 2;
        den += g[i]! ** 2;
      }
      const rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
      if (den > 0) nonzero++;
      assert.ok(rel <= 1e-3 || Math.sqrt(den) < 1e-12, `${n}: gradient relative L2 error ${rel.toExponential(3)}`);
    }
    assert.equal(nonzero, want.grads.size, 'every parameter has a non-zero gradient');
  });
});

test('without an adapter, loading the webgpu backend is one line naming what to install', () => {
  const code = `import('./src/backend/index.ts').then((m) => m.loadBackend('webgpu')).then(() => console.log('LOADED'), (e) => console.log(e.name + ': ' + e.message))`;
  const r = spawnSync(process.execPath, ['--conditions=gpg-rl-source', '--import', 'tsx', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' },
    timeout: 60_000,
  });
  const line = r.stdout.trim().split('\n').pop()!;
  assert.match(
    line,
    /^WebGpuUnavailableError: webgpu backend: (no WebGPU adapter \(.*\); on Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers|the `webgpu` npm package)/,
  );
});

test('GPG_RL_WEBGPU_FEATURES: all (default), none, or a list of the optional features; an unknown name is one line', () => {
  assert.deepEqual(requestedFeatures(''), ['shader-f16', 'subgroups', 'timestamp-query'], 'unset');
  assert.deepEqual(requestedFeatures('all'), ['shader-f16', 'subgroups', 'timestamp-query']);
  assert.deepEqual(requestedFeatures('none'), []);
  assert.deepEqual(requestedFeatures(' shader-f16, timestamp-query '), ['shader-f16', 'timestamp-query']);
  assert.throws(
    () => requestedFeatures('subgroups,f16'),
    /GPG_RL_WEBGPU_FEATURES: unknown feature "f16" \(give all, none, or a comma-separated list of shader-f16, subgroups, timestamp-query\)/,
  );
});

test(
  'subgroups: the row reductions use subgroupAdd / subgroupMax exactly when the device has the feature',
  { skip: gpu ? false : why },
  () => {
    const has = gpu!.adapter.features.includes('subgroups');
    assert.equal(kernelFeatures().subgroups, has);
    for (const wgsl of [rmsnormForward(), rmsnormBackwardDx()]) {
      assert.equal(wgsl.includes('subgroupAdd'), has);
      assert.equal(withEnables(wgsl).startsWith('enable subgroups;'), has);
    }
    assert.equal(withEnables('fn main() {}'), 'fn main() {}');
  },
);

test(
  'GPG_RL_WEBGPU_FEATURES=none: no optional feature on the device, and the kernel suites of every row reduction (RMSNorm, log-softmax + entropy, KL) pass on the shared-memory fallback',
  { skip: gpu ? false : why },
  () => {
    // NODE_TEST_CONTEXT would make the child's runner report to this one instead of printing TAP
    const env: NodeJS.ProcessEnv = { ...process.env, GPG_RL_WEBGPU_FEATURES: 'none' };
    delete env['NODE_TEST_CONTEXT'];
    const code = `import('./src/backend/index.ts').then((m) => m.loadBackend('webgpu')).then(async (b) => { const w = await import('./src/backend/webgpu/wgsl.ts'); console.log(JSON.stringify({ features: b.adapter.features, kernels: w.kernelFeatures() })); process.exit(0); })`;
    const r = spawnSync(process.execPath, ['--conditions=gpg-rl-source', '--import', 'tsx', '-e', code], {
      cwd: root,
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      features: string[];
      kernels: { subgroups: boolean };
    };
    for (const f of ['shader-f16', 'subgroups', 'timestamp-query']) assert.ok(!got.features.includes(f), f);
    assert.equal(got.kernels.subgroups, false);
    const suites = ['rmsnorm', 'logprobs', 'kl'].map((n) => join(root, 'test', 'native', `${n}.test.ts`));
    const t = spawnSync(
      process.execPath,
      ['--conditions=gpg-rl-source', '--import', 'tsx', '--test', '--test-reporter=tap', ...suites],
      {
        cwd: root,
        encoding: 'utf8',
        env,
        timeout: 300_000,
      },
    );
    assert.equal(t.status, 0, t.stdout.slice(-4000));
    for (const n of ['rmsnorm', 'logprobs', 'kl'])
      assert.match(t.stdout, new RegExp(`^ok \\d+ - ${n} \\[webgpu\\]$`, 'm'));
  },
);

test(
  'bench --device webgpu: the adapter, GEMM GFLOP/s, train and decode tokens/s on WebGPU and their ratios to the CPU backend',
  { skip: gpu ? false : why },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-webgpu-bench-'));
    const shape = join(dir, 'tiny.json');
    writeFileSync(
      shape,
      JSON.stringify({
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        vocab_size: 96,
      }),
    );
    const prev = setDefaultBackend(gpu!);
    let res: Awaited<ReturnType<typeof runWebGpuBench>>;
    try {
      res = await runWebGpuBench(() => {}, {
        gemm: [
          { M: 64, K: 48, N: 80, transB: true, reps: 2 },
          { M: 8, K: 64, N: 128, transB: false, reps: 2 },
        ],
        shape,
        batches: [8, 16],
        decode: { prompt: 8, new: 4, group: 8 },
        timing: { maxReps: 1, budgetS: 5 },
      });
    } finally {
      if (prev) setDefaultBackend(prev);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(res.backend, 'webgpu');
    assert.equal(res.adapter.vendor, gpu!.adapter.vendor);
    assert.deepEqual(Object.keys(res.gemm_gflops), ['64x48x80nt', '8x64x128nn']);
    for (const v of Object.values(res.gemm_gflops)) assert.ok(v >= 0 && Number.isFinite(v));
    // the CPU bench's key names, finite and positive, here measured on WebGPU and on the CPU
    const positive = (v: unknown, what: string) =>
      assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} = ${String(v)}`);
    positive(res.train_tokens_per_s, 'train_tokens_per_s');
    positive(res.cpu_train_tokens_per_s, 'cpu_train_tokens_per_s');
    positive(res.train_ratio_vs_cpu, 'train_ratio_vs_cpu');
    assert.deepEqual(res.train_batch, { B: 4, T: 256 });
    for (const key of ['decode_tokens_per_s', 'cpu_decode_tokens_per_s', 'decode_ratio_vs_cpu'] as const) {
      assert.deepEqual(Object.keys(res[key]!), ['8', '16'], key);
      for (const [b, v] of Object.entries(res[key]!)) positive(v, `${key}.${b}`);
    }
    assert.match(res.notes.not_measured!, /cpu backend only/);
  },
);

test(
  'bench --device webgpu --no-cpu: the WebGPU figures only, the ratios null with a note',
  { skip: gpu ? false : why },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-webgpu-bench-'));
    const shape = join(dir, 'tiny.json');
    writeFileSync(
      shape,
      JSON.stringify({
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        vocab_size: 96,
      }),
    );
    const prev = setDefaultBackend(gpu!);
    try {
      const res = await runWebGpuBench(() => {}, {
        gemm: [],
        shape,
        batches: [8],
        decode: { prompt: 4, new: 2, group: 8 },
        timing: { maxReps: 1, budgetS: 5 },
        cpu: false,
      });
      assert.ok(res.train_tokens_per_s > 0 && res.decode_tokens_per_s['8']! > 0);
      assert.equal(res.cpu_train_tokens_per_s, null);
      assert.equal(res.decode_ratio_vs_cpu, null);
      assert.match(res.notes.cpu!, /--no-cpu/);
    } finally {
      if (prev) setDefaultBackend(prev);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
