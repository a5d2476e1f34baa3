/**
 * Fused log-softmax + gather token log-probs and token entropy (native/cpu/logprobs.cc via
 * src/tensor/ops/logprobs.ts) against a float64 reference: chunked tokenLogprobs (forward,
 * entropy, dh, dW; chunking = unchunked; temperature ≠ 1; ignored targets; bf16 autocast),
 * standalone logSoftmaxGather / tokenEntropy with backward, finite differences, bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { setAutocast } from '../../src/tensor/ops/matmul.ts';
import { logSoftmaxGather, tokenEntropy, tokenLogprobs } from '../../src/tensor/ops/logprobs.ts';
import { checkFiniteDiff, checkTensor, matmulRef, randn, rng, transpose, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';
import { defaultBackend } from '../../src/backend/index.ts';

describeEachBackend('logprobs', ['logprobsForward', 'logprobsBackward', 'logprobsEntropyBackward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  /** Float64 log-softmax pieces of logits z [N, V] / temp: lp (0 where target < 0), entropy, probs. */
  function refRows(z: Float64Array, targets: Int32Array, N: number, V: number, temp: number) {
    const lp = new Float64Array(N),
      ent = new Float64Array(N),
      p = new Float64Array(N * V);
    for (let n = 0; n < N; n++) {
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, z[n * V + v]! / temp);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(z[n * V + v]! / temp - m);
      const lse = m + Math.log(s);
      let h = 0;
      for (let v = 0; v < V; v++) {
        const l = z[n * V + v]! / temp - lse;
        p[n * V + v] = Math.exp(l);
        h -= p[n * V + v]! * l;
      }
      ent[n] = h;
      lp[n] = targets[n]! < 0 ? 0 : z[n * V + targets[n]!]! / temp - lse;
    }
    return { lp, ent, p };
  }

  /** dL/dz for L = Σ R lp: R (onehot - p) / temp (0 for ignored rows). */
  function refDlogits(
    p: Float64Array,
    targets: Int32Array,
    R: Float64Array,
    N: number,
    V: number,
    temp: number,
  ): Float64Array {
    const dz = new Float64Array(N * V);
    for (let n = 0; n < N; n++) {
      if (targets[n]! < 0) continue;
      for (let v = 0; v < V; v++) dz[n * V + v] = (-R[n]! * p[n * V + v]!) / temp;
      dz[n * V + targets[n]!] += R[n]! / temp;
    }
    return dz;
  }

  function randTargets(N: number, V: number, r: () => number, ignoreEvery = 5): Int32Array {
    return Int32Array.from({ length: N }, (_, i) => (i % ignoreEvery === 2 ? -1 : Math.floor(r() * V)));
  }

  describe('tokenLogprobs (chunked GEMM + fused log-softmax gather)', () => {
    const N = 37,
      C = 24,
      V = 101,
      temp = 0.7;
    const r = rng(1);
    const Hh = randn(N * C, r),
      W = randn(V * C, r, 0.6),
      R = randn(N, r);
    const tg = randTargets(N, V, r);
    const z = matmulRef(Hh, transpose(W, V, C), N, C, V);
    const ref = refRows(z, tg, N, V, temp);
    const dz = refDlogits(ref.p, tg, R, N, V, temp);
    const loss = (h: Float64Array, w: Float64Array) => {
      const lp = refRows(matmulRef(h, transpose(w, V, C), N, C, V), tg, N, V, temp).lp;
      let s = 0;
      for (let n = 0; n < N; n++) s += R[n]! * lp[n]!;
      return s;
    };

    test('forward, entropy, dh and dW vs float64 (temperature 0.7, ignored targets, N not a multiple of chunkRows)', () => {
      tidy(() => {
        const h = Tensor.fromArray(f32(Hh), [N, C]);
        const w = Tensor.fromArray(f32(W), [V, C]);
        h.requiresGrad = w.requiresGrad = true;
        const { logps, entropy } = tokenLogprobs(h, w, Tensor.fromArray(tg, [N], 'int32'), {
          temperature: temp,
          chunkRows: 8,
          entropy: true,
        });
        checkTensor('tokenLogprobs', 'logps', logps.toArray(), ref.lp, 1e-5);
        checkTensor('tokenLogprobs', 'entropy', entropy!.toArray(), ref.ent, 1e-5);
        for (let n = 0; n < N; n++) if (tg[n]! < 0) assert.equal(logps.toArray()[n], 0);
        backward(logps, Tensor.fromArray(f32(R), [N]));
        checkTensor('tokenLogprobs', 'dh', h.grad!.toArray(), matmulRef(dz, W, N, V, C), 1e-5);
        checkTensor('tokenLogprobs', 'dW', w.grad!.toArray(), matmulRef(transpose(dz, N, V), Hh, V, N, C), 1e-5);
        checkFiniteDiff('tokenLogprobs', 'dh', h.grad!.toArray(), (x) => loss(x, W), Float64Array.from(Hh), r);
        checkFiniteDiff('tokenLogprobs', 'dW', w.grad!.toArray(), (x) => loss(Hh, x), Float64Array.from(W), r);
        h.grad!.dispose();
        w.grad!.dispose();
      });
    });

    test('chunked equals unchunked (forward and gradients)', () => {
      tidy(() => {
        const h = Tensor.fromArray(f32(Hh), [N, C]);
        const w = Tensor.fromArray(f32(W), [V, C]);
        const t = Tensor.fromArray(tg, [N], 'int32');
        const run = (chunkRows: number) => {
          h.requiresGrad = w.requiresGrad = true;
          const { logps, entropy } = tokenLogprobs(h, w, t, { temperature: temp, chunkRows, entropy: true });
          const lp = logps.toArray(),
            en = entropy!.toArray();
          backward(logps, Tensor.fromArray(f32(R), [N]));
          const out = { lp, en, dh: h.grad!.toArray(), dW: w.grad!.toArray() };
          h.grad!.dispose();
          w.grad!.dispose();
          h.grad = w.grad = null;
          return out;
        };
        const a = run(5),
          b = run(1000);
        for (const k of ['lp', 'en', 'dh', 'dW'] as const)
          checkTensor('tokenLogprobs', `${k} chunkRows 5 vs unchunked`, a[k], b[k], 1e-6);
      });
    });

    test('bf16 autocast stays within 1e-2', () => {
      const prev = setAutocast(true);
      try {
        tidy(() => {
          const h = Tensor.fromArray(f32(Hh), [N, C]);
          const w = Tensor.fromArray(f32(W), [V, C]);
          h.requiresGrad = w.requiresGrad = true;
          const { logps } = tokenLogprobs(h, w, Tensor.fromArray(tg, [N], 'int32'), {
            temperature: temp,
            chunkRows: 16,
          });
          checkTensor('tokenLogprobs bf16', 'logps', logps.toArray(), ref.lp, 1e-2);
          backward(logps, Tensor.fromArray(f32(R), [N]));
          checkTensor('tokenLogprobs bf16', 'dh', h.grad!.toArray(), matmulRef(dz, W, N, V, C), 1e-2);
          checkTensor('tokenLogprobs bf16', 'dW', w.grad!.toArray(), matmulRef(transpose(dz, N, V), Hh, V, N, C), 1e-2);
          h.grad!.dispose();
          w.grad!.dispose();
        });
      } finally {
        setAutocast(prev);
      }
    });
  });

  describe('logSoftmaxGather / tokenEntropy on explicit logits', () => {
    // Finite differences only where every coordinate has a visible gradient (small V): with V = 5003
    // most random coordinates have |dz| ~ 1e-10, below the float64 finite-difference noise.
    const cases: Array<[string, number, number, number, number, boolean]> = [
      ['large vocabulary and logit scale 8, temperature 1.3: forward and backward vs float64', 2, 6, 5003, 8, false],
      ['small vocabulary, temperature 1.3: backward vs finite differences of the float64 reference', 3, 5, 37, 2, true],
    ];
    for (const [label, seed, N, V, scale, fd] of cases)
      test(label, () => {
        const r = rng(seed);
        const temp = 1.3;
        const Z = randn(N * V, r, scale);
        const tg = randTargets(N, V, r, 4);
        const R = randn(N, r),
          S = randn(N, r);
        const ref = refRows(Z, tg, N, V, temp);
        // dH/dz = -p (log p + H) / temp
        const dEnt = new Float64Array(N * V);
        for (let n = 0; n < N; n++)
          for (let v = 0; v < V; v++) {
            const p = ref.p[n * V + v]!;
            dEnt[n * V + v] = p === 0 ? 0 : (S[n]! * -p * (Math.log(p) + ref.ent[n]!)) / temp;
          }
        tidy(() => {
          const x = Tensor.fromArray(f32(Z), [N, V]);
          const t = Tensor.fromArray(tg, [N], 'int32');
          x.requiresGrad = true;
          const lp = logSoftmaxGather(x, t, temp);
          checkTensor('logSoftmaxGather', 'lp', lp.toArray(), ref.lp, 1e-5);
          backward(lp, Tensor.fromArray(f32(R), [N]));
          checkTensor('logSoftmaxGather', 'dlogits', x.grad!.toArray(), refDlogits(ref.p, tg, R, N, V, temp), 1e-5);
          const lossLp = (z: Float64Array) => refRows(z, tg, N, V, temp).lp.reduce((s, v, n) => s + v * R[n]!, 0);
          if (fd)
            checkFiniteDiff('logSoftmaxGather', 'dlogits', x.grad!.toArray(), lossLp, Float64Array.from(Z), r, {
              count: 12,
            });
          x.grad!.dispose();
          x.grad = null;
          const ent = tokenEntropy(x, temp);
          checkTensor('tokenEntropy', 'entropy', ent.toArray(), ref.ent, 1e-5);
          backward(ent, Tensor.fromArray(f32(S), [N]));
          checkTensor('tokenEntropy', 'dlogits', x.grad!.toArray(), dEnt, 1e-5);
          const lossEnt = (z: Float64Array) => refRows(z, tg, N, V, temp).ent.reduce((s, v, n) => s + v * S[n]!, 0);
          if (fd)
            checkFiniteDiff('tokenEntropy', 'dlogits', x.grad!.toArray(), lossEnt, Float64Array.from(Z), r, {
              count: 12,
            });
          x.grad!.dispose();
        });
      });

    test('without gradients: no tape, entropy of uniform logits is log V', () => {
      tidy(() => {
        const V = 1000;
        const e = tokenEntropy(Tensor.zeros([3, V]));
        for (const v of e.toArray()) assert.ok(Math.abs(v - Math.log(V)) < 1e-5, `entropy ${v} vs ${Math.log(V)}`);
        const lp = logSoftmaxGather(
          Tensor.zeros([3, V]),
          Tensor.fromArray(Int32Array.from([0, -1, V - 1]), [3], 'int32'),
        );
        checkTensor('logSoftmaxGather', 'lp uniform', lp.toArray(), [-Math.log(V), 0, -Math.log(V)], 1e-6);
      });
    });
  });

  describe('logprobs bad input', () => {
    test('out-of-range target, shape mismatch, wrong dtype, disposed, bad temperature -> errors naming op and shapes', () => {
      tidy(() => {
        const isErr = (re: RegExp) => (e: unknown) => e instanceof TensorOpError && re.test((e as Error).message);
        const h = Tensor.zeros([4, 8]);
        const w = Tensor.zeros([10, 8]);
        const t = Tensor.fromArray(Int32Array.from([1, 2, 10, 3]), [4], 'int32');
        // the kernel checks target values (no host copy of the targets in the op)
        assert.throws(
          () => tokenLogprobs(h, w, t),
          (e: unknown) =>
            e instanceof NativeOpError &&
            /^logprobs_forward: target 10 at row 2 is out of range for vocabulary size 10/.test((e as Error).message),
        );
        const ok = Tensor.fromArray(Int32Array.from([1, 2, -1, 3]), [4], 'int32');
        assert.throws(
          () => tokenLogprobs(h, Tensor.zeros([10, 9]), ok),
          isErr(/^tokenLogprobs: h \[4,8\] vs W \[10,9\]: last dims differ/),
        );
        assert.throws(
          () => tokenLogprobs(h, w, Tensor.zeros([4])),
          isErr(/^tokenLogprobs: targets must be int32, got float32 \[4\]/),
        );
        assert.throws(
          () => tokenLogprobs(h, w, Tensor.zeros([5], 'int32')),
          isErr(/^tokenLogprobs: targets \[5\]: expected \[4\]/),
        );
        assert.throws(
          () => tokenLogprobs(h, w, ok, { temperature: 0 }),
          isErr(/^tokenLogprobs: temperature must be a positive finite number, got 0/),
        );
        assert.throws(
          () => tokenLogprobs(h, w, ok, { chunkRows: 0 }),
          isErr(/^tokenLogprobs: chunkRows must be a positive integer, got 0/),
        );
        assert.throws(
          () => logSoftmaxGather(Tensor.zeros([4, 10], 'bfloat16'), ok),
          isErr(/^logSoftmaxGather: logits must be float32, got bfloat16 \[4,10\]/),
        );
        assert.throws(
          () => tokenEntropy(Tensor.zeros([40])),
          isErr(/^tokenEntropy: logits must have rank 2, got \[40\]/),
        );
        const d = Tensor.zeros([4, 10]);
        d.dispose();
        assert.throws(
          () => logSoftmaxGather(d, ok),
          isErr(/^logSoftmaxGather: logits was disposed \(shape \[4,10\]\)/),
        );
        // the kernel re-checks targets itself
        const lse = Tensor.zeros([4]);
        assert.throws(
          () =>
            defaultBackend().logprobsForward(
              Tensor.zeros([4]).deviceBuffer,
              lse.deviceBuffer,
              null,
              Tensor.zeros([4, 10]).deviceBuffer,
              t.deviceBuffer,
              4,
              10,
              1,
              0,
            ),
          (e: unknown) =>
            e instanceof NativeOpError &&
            /^logprobs_forward: target 10 at row 2 is out of range for vocabulary size 10/.test((e as Error).message),
        );
        assert.throws(
          () =>
            defaultBackend().logprobsForward(
              Tensor.zeros([4]).deviceBuffer,
              lse.deviceBuffer,
              null,
              Tensor.zeros([3, 10]).deviceBuffer,
              ok.deviceBuffer,
              4,
              10,
              1,
              0,
            ),
          (e: unknown) =>
            e instanceof NativeOpError &&
            /^logprobs_forward: logits holds 30 elements, needs 40/.test((e as Error).message),
        );
      });
    });
  });
});
