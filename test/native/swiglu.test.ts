/**
 * SwiGLU (silu(gate) * up, HF Qwen2MLP) forward and backward (native/cpu/swiglu.cc via
 * src/tensor/ops/swiglu.ts) against float64, finite differences, extreme gate values (the kernel's
 * own vectorised exp saturates there), NaN propagation, and bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { swiglu } from '../../src/tensor/ops/swiglu.ts';
import { checkFiniteDiff, checkTensor, maxDiff, randn, rng, describeEachBackend } from '../helpers.ts';
import { TensorOpError } from '../../src/errors.ts';

describeEachBackend('swiglu', ['swigluForward', 'swigluBackward'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);
  const sig = (g: number) => 1 / (1 + Math.exp(-g));

  function ref(G: Float64Array, U: Float64Array, R: Float64Array) {
    const n = G.length;
    const y = new Float64Array(n),
      dg = new Float64Array(n),
      du = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const g = G[i]!,
        s = sig(g);
      y[i] = g * s * U[i]!;
      du[i] = R[i]! * g * s;
      dg[i] = R[i]! * U[i]! * s * (1 + g * (1 - s));
    }
    return { y, dg, du };
  }

  function loss(G: Float64Array, U: Float64Array, R: Float64Array): number {
    let s = 0;
    for (let i = 0; i < G.length; i++) s += G[i]! * sig(G[i]!) * U[i]! * R[i]!;
    return s;
  }

  describe('swiglu', () => {
    for (const [label, shape, scale] of [
      ['[2,33,1408] (vectorised body + parallel), N(0, 2²)', [2, 33, 1408], 2],
      ['[5,7] small, N(0, 8²) (saturated sigmoid)', [5, 7], 8],
    ] as const) {
      test(`forward + backward ${label}`, () => {
        const r = rng(scale * 10 + shape.length);
        const n = shape.reduce((a, b) => a * b, 1);
        const G = randn(n, r, scale),
          U = randn(n, r),
          R = randn(n, r);
        tidy(() => {
          const g = Tensor.fromArray(f32(G), shape);
          const u = Tensor.fromArray(f32(U), shape);
          g.requiresGrad = u.requiresGrad = true;
          const y = swiglu(g, u);
          const want = ref(G, U, R);
          checkTensor('swiglu', 'out', y.toArray(), want.y, 1e-6);
          backward(y, Tensor.fromArray(f32(R), shape));
          checkTensor('swiglu', 'dgate', g.grad!.toArray(), want.dg, 1e-5);
          checkTensor('swiglu', 'dup', u.grad!.toArray(), want.du, 1e-5);
          checkFiniteDiff('swiglu', 'dgate', g.grad!.toArray(), (v) => loss(v, U, R), Float64Array.from(G), r, {
            count: 24,
            tol: 1e-4,
          });
          checkFiniteDiff('swiglu', 'dup', u.grad!.toArray(), (v) => loss(G, v, R), Float64Array.from(U), r, {
            count: 24,
            tol: 1e-4,
          });
          g.grad!.dispose();
          u.grad!.dispose();
        });
      });
    }

    test('extreme gates saturate correctly; only one input may need grad', () => {
      const G = Float64Array.from([
        -1000, -120, -88.5, -87, -30, -1e-30, 0, 1e-30, 20, 88.5, 120, 1000, 1e30, -1e30, 0.5, -0.5,
      ]);
      const U = Float64Array.from(G, (_, i) => (i % 3) - 1.25);
      const R = Float64Array.from(G, (_, i) => 0.5 + i / 16);
      tidy(() => {
        const g = Tensor.fromArray(f32(G), [16]);
        const u = Tensor.fromArray(f32(U), [16]);
        u.requiresGrad = true;
        const y = swiglu(g, u);
        const want = ref(G, U, R);
        const got = y.toArray();
        for (let i = 0; i < 16; i++) assert.ok(Number.isFinite(got[i]!), `out[${i}] = ${got[i]} for gate ${G[i]}`);
        assert.ok(
          maxDiff(got, want.y) <= 1e-6 * Math.max(...Array.from(want.y, Math.abs)),
          `maxdiff ${maxDiff(got, want.y)}`,
        );
        backward(y, Tensor.fromArray(f32(R), [16]));
        assert.equal(g.grad, null);
        checkTensor('swiglu', 'dup (extreme gates)', u.grad!.toArray(), want.du, 1e-6);
        u.grad!.dispose();
      });
    });

    test('NaN in gate propagates to out and dgate', () => {
      tidy(() => {
        const g = Tensor.fromArray(Float32Array.from([NaN, 1]), [2]);
        const u = Tensor.fromArray(Float32Array.from([1, 1]), [2]);
        g.requiresGrad = true;
        const y = swiglu(g, u);
        assert.ok(Number.isNaN(y.toArray()[0]!));
        backward(y);
        assert.ok(Number.isNaN(g.grad!.toArray()[0]!));
        assert.ok(Number.isFinite(g.grad!.toArray()[1]!));
        g.grad!.dispose();
      });
    });

    test('bad input is a clear error', () => {
      tidy(() => {
        const isErr = (re: RegExp) => (e: unknown) => e instanceof TensorOpError && re.test((e as Error).message);
        assert.throws(
          () => swiglu(Tensor.zeros([4, 1408]), Tensor.zeros([4, 1407])),
          isErr(/^swiglu: gate \[4,1408\] vs up \[4,1407\]: shapes differ/),
        );
        assert.throws(
          () => swiglu(Tensor.zeros([4]), Tensor.zeros([4], 'bfloat16')),
          isErr(/^swiglu: up must be float32, got bfloat16 \[4\]/),
        );
        const d = Tensor.zeros([4]);
        d.dispose();
        assert.throws(() => swiglu(d, Tensor.zeros([4])), isErr(/^swiglu: gate was disposed \(shape \[4\]\)/));
      });
    });
  });
});
