/**
 * Softmax KL and the softmax Fisher-vector product (native/cpu/kl.cc via src/tensor/ops/kl.ts)
 * against float64 references: KL(p ‖ q) per row (temperature ≠ 1, large logits, p = q → 0),
 * (diag(p) − p pᵀ) u per row (against the explicit matrix, and as the second derivative of the KL
 * by finite differences), thread-count determinism, bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { klDivergence, klHvp } from '../../src/tensor/ops/kl.ts';
import { assertSameAcrossThreads, checkTensor, describeEachBackend, randn, rng } from '../helpers.ts';
import { TensorOpError } from '../../src/errors.ts';

describeEachBackend('kl', ['klForward', 'klHvp'], () => {
  const f32 = (a: Float64Array) => Float32Array.from(a);
  /** float32-rounded values as float64, so the reference sees exactly the kernel's inputs */
  const asF32 = (a: Float64Array) => Float64Array.from(f32(a));

  function softmaxRef(z: Float64Array, N: number, V: number, temp: number): Float64Array {
    const p = new Float64Array(N * V);
    for (let n = 0; n < N; n++) {
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, z[n * V + v]! / temp);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(z[n * V + v]! / temp - m);
      for (let v = 0; v < V; v++) p[n * V + v] = Math.exp(z[n * V + v]! / temp - m) / s;
    }
    return p;
  }
  function klRef(a: Float64Array, b: Float64Array, N: number, V: number, temp: number): Float64Array {
    const p = softmaxRef(a, N, V, temp),
      q = softmaxRef(b, N, V, temp);
    const out = new Float64Array(N);
    for (let n = 0; n < N; n++)
      for (let v = 0; v < V; v++) {
        const i = n * V + v;
        if (p[i]! > 0) out[n]! += p[i]! * (Math.log(p[i]!) - Math.log(q[i]!));
      }
    return out;
  }
  /** the explicit matrix (diag(p) − p pᵀ) of each row times u */
  function hvpRef(z: Float64Array, u: Float64Array, N: number, V: number, temp: number): Float64Array {
    const p = softmaxRef(z, N, V, temp);
    const out = new Float64Array(N * V);
    for (let n = 0; n < N; n++)
      for (let i = 0; i < V; i++) {
        let s = 0;
        for (let j = 0; j < V; j++)
          s += ((i === j ? p[n * V + i]! : 0) - p[n * V + i]! * p[n * V + j]!) * u[n * V + j]!;
        out[n * V + i] = s;
      }
    return out;
  }

  describe('klDivergence', () => {
    for (const [N, V, temp, scale] of [
      [7, 13, 1, 1],
      [33, 200, 0.7, 3],
      [5, 1000, 1.3, 20],
    ] as const) {
      test(`matches float64 (N ${N}, V ${V}, temperature ${temp}, logit scale ${scale})`, () => {
        tidy(() => {
          const r = rng(N * V);
          const a = asF32(randn(N * V, r, scale)),
            b = asF32(randn(N * V, r, scale));
          const got = klDivergence(Tensor.fromArray(f32(a), [N, V]), Tensor.fromArray(f32(b), [N, V]), temp);
          checkTensor('klDivergence', 'out', got.toArray(), klRef(a, b, N, V, temp), 1e-5);
        });
      });
    }
    test('KL(p ‖ p) is 0 and KL ≥ 0', () => {
      tidy(() => {
        const a = f32(randn(4 * 50, rng(3), 5));
        const t = Tensor.fromArray(a, [4, 50]);
        assert.deepEqual([...klDivergence(t, t).toArray()], [0, 0, 0, 0]);
      });
    });
  });

  describe('klHvp', () => {
    for (const [N, V, temp] of [
      [6, 11, 1],
      [40, 300, 0.6],
    ] as const) {
      test(`equals the explicit (diag(p) − p pᵀ) u (N ${N}, V ${V}, temperature ${temp})`, () => {
        tidy(() => {
          const r = rng(N + V);
          const z = asF32(randn(N * V, r, 2)),
            u = asF32(randn(N * V, r));
          const got = klHvp(Tensor.fromArray(f32(z), [N, V]), Tensor.fromArray(f32(u), [N, V]), temp);
          checkTensor('klHvp', 'out', got.toArray(), hvpRef(z, u, N, V, temp), 1e-5);
        });
      });
    }
    test('is the second derivative of KL(p_old ‖ softmax(z/τ)) along u at z_old (finite differences)', () => {
      tidy(() => {
        const [N, V, temp] = [3, 9, 0.8];
        const r = rng(11);
        const z = asF32(randn(N * V, r, 1.5)),
          u = asF32(randn(N * V, r));
        const got = klHvp(Tensor.fromArray(f32(z), [N, V]), Tensor.fromArray(f32(u), [N, V]), temp).toArray();
        // uᵀ H u / τ² = d²/dε² KL(p_old ‖ softmax((z + εu)/τ)) per row (H is the Hessian in z/τ)
        const eps = 1e-3;
        for (let n = 0; n < N; n++) {
          const row = (e: number) =>
            klRef(
              z.slice(n * V, (n + 1) * V),
              z.slice(n * V, (n + 1) * V).map((x, i) => x + e * u[n * V + i]!),
              1,
              V,
              temp,
            )[0]!;
          const fd = (row(eps) - 2 * row(0) + row(-eps)) / (eps * eps);
          let uHu = 0;
          for (let i = 0; i < V; i++) uHu += u[n * V + i]! * got[n * V + i]!;
          uHu /= temp * temp;
          assert.ok(Math.abs(fd - uHu) <= 1e-4 * Math.abs(uHu) + 1e-9, `row ${n}: finite differences ${fd} vs ${uHu}`);
        }
      });
    });
    test('is bit-identical for 1 and 2 threads', () => {
      const r = rng(5);
      const z = f32(randn(64 * 1024, r, 2)),
        u = f32(randn(64 * 1024, r));
      assertSameAcrossThreads(() =>
        tidy(() => [
          ...klHvp(Tensor.fromArray(z, [64, 1024]), Tensor.fromArray(u, [64, 1024])).toArray(),
          ...klDivergence(Tensor.fromArray(z, [64, 1024]), Tensor.fromArray(u, [64, 1024])).toArray(),
        ]),
      );
    });
  });

  describe('kl bad input', () => {
    test('shape mismatch, wrong rank, bad temperature → errors naming the op', () => {
      tidy(() => {
        const isErr = (re: RegExp) => (e: unknown) => e instanceof TensorOpError && re.test((e as Error).message);
        assert.throws(() => klDivergence(Tensor.zeros([4, 8]), Tensor.zeros([4, 9])), isErr(/^klDivergence: /));
        assert.throws(() => klHvp(Tensor.zeros([32]), Tensor.zeros([32])), isErr(/^klHvp: /));
        assert.throws(() => klHvp(Tensor.zeros([2, 3]), Tensor.zeros([2, 3]), 0), isErr(/temperature must be/));
      });
    });
  });
});
