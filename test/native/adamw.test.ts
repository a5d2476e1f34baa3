/**
 * Fused AdamW (native/cpu/adamw.cc via src/tensor/optim.ts) against a float64 re-implementation
 * of torch.optim.AdamW over several steps, closed-form step-1 values, per-parameter weight decay,
 * skipped parameters, state()/loadState() round trips, the bf16 weight-cache epoch, bad input.
 * (AdamW has no backward: it consumes gradients.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { AdamW } from '../../src/tensor/optim.ts';
import { linear, setAutocast } from '../../src/tensor/ops/matmul.ts';
import { defaultBackend } from '../../src/backend/index.ts';
import { checkTensor, matmulRef, randn, rng, transpose, describeEachBackend } from '../helpers.ts';
import { NativeOpError, TensorOpError } from '../../src/errors.ts';

describeEachBackend('adamw', ['adamwStep'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);

  /** torch.optim.AdamW (amsgrad=False) in float64. */
  function refStep(
    p: Float64Array,
    g: ArrayLike<number>,
    m: Float64Array,
    v: Float64Array,
    t: number,
    o: { lr: number; b1: number; b2: number; eps: number; wd: number },
  ): void {
    const bc1 = 1 - o.b1 ** t,
      bc2 = 1 - o.b2 ** t;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! * (1 - o.lr * o.wd);
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! * g[i]!;
      p[i] = p[i]! - ((o.lr / bc1) * m[i]!) / (Math.sqrt(v[i]! / bc2) + o.eps);
    }
  }

  function setGrad(p: Tensor, g: Float64Array): void {
    p.grad?.dispose();
    p.grad = Tensor.fromArray(f32(g), p.shape).keep();
  }

  describe('AdamW', () => {
    test('step 1 matches the closed form: p(1 - lr wd) - lr g / (|g| + eps)', () => {
      const r = rng(1);
      const n = 3 * 4096 + 37; // AVX-512 blocks plus a scalar tail
      const P = randn(n, r),
        G = randn(n, r, 1e-3);
      const lr = 1e-3,
        wd = 0.1,
        eps = 1e-8;
      const p = Tensor.fromArray(f32(P), [n]);
      const opt = new AdamW([{ param: p }], { lr, weightDecay: wd });
      setGrad(p, G);
      opt.step();
      assert.equal(opt.stepCount, 1);
      const want = Float64Array.from(P, (x, i) => x * (1 - lr * wd) - (lr * G[i]!) / (Math.abs(G[i]!) + eps));
      checkTensor('adamw', 'param after step 1', p.toArray(), want, 1e-6);
      const st = opt.state();
      checkTensor(
        'adamw',
        'exp_avg after step 1',
        st.m[0]!,
        Float64Array.from(G, (g) => 0.1 * g),
        1e-6,
      );
      checkTensor(
        'adamw',
        'exp_avg_sq after step 1',
        st.v[0]!,
        Float64Array.from(G, (g) => 0.001 * g * g),
        1e-6,
      );
      opt.zeroGrad();
      assert.equal(p.grad, null);
      opt.dispose();
      p.dispose();
    });

    test('six steps with per-parameter weight decay and a skipped parameter vs float64 torch semantics (global step count)', () => {
      const r = rng(2);
      const sizes = [5000, 512, 33];
      const o = { lr: 3e-3, b1: 0.85, b2: 0.99, eps: 1e-6 };
      const wds = [0.05, 0.0, 0.05];
      const P = sizes.map((n) => randn(n, r));
      const params = P.map((x, i) => Tensor.fromArray(f32(x), [sizes[i]!]));
      const opt = new AdamW(
        params.map((param, i) => (i === 1 ? { param, weightDecay: 0 } : { param })),
        { lr: o.lr, beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: 0.05 },
      );
      const refP = P.map((x) => Float64Array.from(x));
      const refM = sizes.map((n) => new Float64Array(n));
      const refV = sizes.map((n) => new Float64Array(n));
      for (let t = 1; t <= 6; t++) {
        const lr = o.lr * (1 - t / 10); // a schedule passed through step(lr)
        for (let i = 0; i < sizes.length; i++) {
          if (i === 2 && t % 2 === 0) {
            params[i]!.grad?.dispose();
            params[i]!.grad = null; // skipped this step: param and moments untouched
            continue;
          }
          const G = randn(sizes[i]!, r, 0.1);
          setGrad(params[i]!, G);
          refStep(refP[i]!, f32(G), refM[i]!, refV[i]!, t, { ...o, lr, wd: wds[i]! });
        }
        opt.step(lr);
      }
      assert.equal(opt.stepCount, 6);
      const st = opt.state();
      for (let i = 0; i < sizes.length; i++) {
        checkTensor('adamw', `param ${i}`, params[i]!.toArray(), refP[i]!, 1e-5);
        checkTensor('adamw', `exp_avg ${i}`, st.m[i]!, refM[i]!, 1e-5);
        checkTensor('adamw', `exp_avg_sq ${i}`, st.v[i]!, refV[i]!, 1e-5);
      }
      opt.zeroGrad();
      opt.dispose();
      for (const p of params) p.dispose();
    });

    test('state() / loadState() round trip continues bit-identically', () => {
      const r = rng(3);
      const n = 700;
      const P = randn(n, r),
        G1 = randn(n, r),
        G2 = randn(n, r);
      const mk = () => {
        const p = Tensor.fromArray(f32(P), [n]);
        return { p, opt: new AdamW([{ param: p }], { lr: 0.01, weightDecay: 0.01 }) };
      };
      const a = mk();
      setGrad(a.p, G1);
      a.opt.step();
      const saved = a.opt.state();
      const savedP = a.p.toArray();
      setGrad(a.p, G2);
      a.opt.step();
      const b = mk();
      b.p.write(savedP as Float32Array);
      b.opt.loadState(saved);
      assert.equal(b.opt.stepCount, 1);
      setGrad(b.p, G2);
      b.opt.step();
      assert.deepEqual(b.p.toArray(), a.p.toArray());
      assert.deepEqual(b.opt.state(), a.opt.state());
      for (const x of [a, b]) {
        x.opt.zeroGrad();
        x.opt.dispose();
        x.p.dispose();
      }
    });

    test('a step invalidates cached bf16 weights (mixed precision sees the new values)', () => {
      const r = rng(4);
      const M = 4,
        K = 32,
        N = 16;
      const X = randn(M * K, r),
        W = randn(N * K, r);
      const prev = setAutocast(true);
      try {
        const w = Tensor.fromArray(f32(W), [N, K]);
        const opt = new AdamW([{ param: w }], { lr: 0.5 });
        tidy(() => linear(Tensor.fromArray(f32(X), [M, K]), w)); // fills the bf16 cache
        setGrad(w, randn(N * K, r));
        opt.step();
        const y = tidy(() => linear(Tensor.fromArray(f32(X), [M, K]), w).toArray());
        const Wnew = Float64Array.from(w.toArray());
        checkTensor('adamw', 'bf16 linear after step', y, matmulRef(X, transpose(Wnew, N, K), M, K, N), 1e-2);
        opt.zeroGrad();
        opt.dispose();
        w.dispose();
      } finally {
        setAutocast(prev);
      }
    });

    test('bad input is a clear error', () => {
      const isErr = (cls: typeof TensorOpError | typeof NativeOpError, re: RegExp) => (e: unknown) =>
        e instanceof cls && re.test((e as Error).message);
      tidy(() => {
        const p = Tensor.zeros([10]);
        p.name = 'model.norm.weight';
        assert.throws(
          () => new AdamW([{ param: p }], { lr: -1 }),
          isErr(TensorOpError, /^AdamW: lr must be a finite number ≥ 0, got -1/),
        );
        assert.throws(
          () => new AdamW([{ param: p }], { lr: 1e-3, beta2: 1 }),
          isErr(TensorOpError, /^AdamW: beta2 must be in \[0, 1\), got 1/),
        );
        assert.throws(
          () => new AdamW([{ param: Tensor.zeros([3], 'bfloat16') }], { lr: 1e-3 }),
          isErr(TensorOpError, /^AdamW: param 0 must be float32 \(master weights\), got bfloat16/),
        );
        assert.throws(
          () => new AdamW([{ param: p }, { param: p }], { lr: 1e-3 }),
          isErr(TensorOpError, /^AdamW: param 1 \(model\.norm\.weight\) is listed twice/),
        );
        const opt = new AdamW([{ param: p }], { lr: 1e-3 });
        p.grad = Tensor.zeros([11]).keep();
        assert.throws(
          () => opt.step(),
          isErr(
            TensorOpError,
            /^AdamW\.step: gradient \[11\] float32 of param 0 \(model\.norm\.weight\) \[10\]: expected float32 of the same size/,
          ),
        );
        assert.equal(opt.stepCount, 0);
        p.grad.dispose();
        assert.throws(
          () => opt.step(),
          isErr(TensorOpError, /^AdamW\.step: gradient of param 0 \(model\.norm\.weight\) was disposed/),
        );
        opt.zeroGrad();
        const st = opt.state();
        assert.throws(
          () => opt.loadState({ ...st, m: [] }),
          isErr(
            TensorOpError,
            /^AdamW\.loadState: state has 0 exp_avg and 1 exp_avg_sq tensors, the optimizer has 1 parameters/,
          ),
        );
        assert.throws(
          () => opt.loadState({ ...st, v: [new Float32Array(9)] }),
          isErr(
            TensorOpError,
            /^AdamW\.loadState: exp_avg_sq\[0\] has 9 values, param 0 \(model\.norm\.weight\) \[10\] has 10/,
          ),
        );
        opt.dispose();
        assert.throws(() => opt.step(), isErr(TensorOpError, /^AdamW\.step: the optimizer was disposed/));
        // the native kernel re-checks its arguments
        const s = Tensor.zeros([4]).deviceBuffer;
        assert.throws(
          () => defaultBackend().adamwStep(s, s, s, Tensor.zeros([3]).deviceBuffer, 4, 1e-3, 0.9, 0.999, 1e-8, 0, 1),
          isErr(NativeOpError, /^adamw_step: exp_avg_sq holds 3 elements, needs 4/),
        );
        assert.throws(
          () => defaultBackend().adamwStep(s, s, s, s, 4, 1e-3, 0.9, 0.999, 1e-8, 0, 0),
          isErr(NativeOpError, /^adamw_step: step must be >= 1, got 0/),
        );
      });
    });
  });
});
