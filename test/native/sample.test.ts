/**
 * Token sampling (native/cpu/sample.cc via src/tensor/ops/sample.ts) against a float64 reference of
 * Hugging Face's warpers (temperature, then top-k, then top-p over the top-k distribution, inverse
 * CDF with the caller's uniform, in index order when nothing truncates): ids equal, log-probs = log_softmax(logits / T) over the full
 * vocabulary. Peaked rows with flat tails, flat rows (the candidate prefilter must widen to the
 * whole vocabulary) and ties; greedy; bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { sampleTokens } from '../../src/tensor/ops/sample.ts';
import { randn, rng, describeEachBackend } from '../helpers.ts';
import { NativeOpError } from '../../src/errors.ts';

function reference(z: Float32Array, u: number, T: number, topK: number, topP: number): { id: number; lp: number } {
  const V = z.length;
  const mx = Math.max(...z);
  const e = Array.from(z, (x) => Math.exp((x - mx) / T));
  const sum = e.reduce((a, x) => a + x, 0);
  const lse = mx / T + Math.log(sum);
  if ((topK <= 0 || topK >= V) && topP >= 1) {
    // no warper truncates: inverse CDF over the whole vocabulary in index order (no sort)
    let acc = 0;
    for (let j = 0; j < V; j++) {
      acc += e[j]!;
      if (acc > u * sum) return { id: j, lp: z[j]! / T - lse };
    }
    return { id: V - 1, lp: z[V - 1]! / T - lse };
  }
  const idx = Array.from({ length: V }, (_, j) => j).sort((a, b) => z[b]! - z[a]! || a - b);
  const k = topK > 0 && topK < V ? topK : V;
  const head = idx.slice(0, k);
  const s = k < V ? head.reduce((a, j) => a + e[j]!, 0) : sum;
  let keep = k;
  if (topP < 1) {
    let acc = 0;
    for (let j = 0; j < k; j++) {
      acc += e[head[j]!]! / s;
      if (acc >= topP) {
        keep = j + 1;
        break;
      }
    }
  }
  const kept = head.slice(0, keep);
  const s2 = kept.reduce((a, j) => a + e[j]!, 0);
  let acc = 0;
  let id = kept[keep - 1]!;
  for (const j of kept) {
    acc += e[j]!;
    if (acc > u * s2) {
      id = j;
      break;
    }
  }
  return { id, lp: z[id]! / T - lse };
}

/** Samples every row with its uniform; ids equal the reference's, log-probs within 1e-4. */
function expectReference(zs: Float32Array[], us: number[], T: number, topK: number, topP: number): void {
  const V = zs[0]!.length;
  tidy(() => {
    const logits = new Float32Array(zs.length * V);
    zs.forEach((z, b) => logits.set(z, b * V));
    const res = sampleTokens(
      Tensor.fromArray(logits, [zs.length, V]),
      Tensor.fromArray(Float32Array.from(us), [zs.length]),
      { temperature: T, topK, topP, greedy: false },
    );
    const ids = res.ids.toArray();
    const lps = res.logps.toArray();
    zs.forEach((z, b) => {
      const want = reference(z, Math.fround(us[b]!), T, topK, topP);
      assert.equal(ids[b], want.id, `V ${V} T ${T} top_k ${topK} top_p ${topP} row ${b}`);
      assert.ok(Math.abs(lps[b]! - want.lp) < 1e-4, `row ${b}: log-prob ${lps[b]} vs ${want.lp}`);
    });
  });
}

describeEachBackend('sampleTokens', ['sampleTokens'], () => {
  const V = 3000;
  function rows(r: () => number): Float32Array[] {
    const peaked = Float32Array.from(randn(V, r), (x) => x * 0.5);
    for (let j = 0; j < 12; j++) peaked[Math.floor(r() * V)] = 25 + 3 * r();
    const flat = Float32Array.from(randn(V, r), (x) => x * 1e-3);
    const ties = new Float32Array(V).fill(1);
    ties[17] = 2;
    ties[2999] = 2;
    return [peaked, flat, ties, Float32Array.from(randn(V, r), (x) => x * 3)];
  }

  for (const [T, topK, topP] of [
    [1, 0, 1],
    [0.7, 50, 1],
    [1, 0, 0.95],
    [0.6, 0, 0.5],
    [1.3, 20, 0.9],
    [1, 1, 1],
  ] as const)
    test(`T ${T}, top_k ${topK}, top_p ${topP}: ids and full-vocabulary log-probs equal the float64 reference`, () => {
      const r = rng(Math.round(T * 100) + topK + Math.round(topP * 1000));
      const zs = rows(r);
      const us = zs.map(() => Math.min(r(), 0.99999994));
      expectReference(zs, us, T, topK, topP);
    });

  test('a large vocabulary (several partial-sum blocks, every bucket kind): ids and log-probs equal the reference', () => {
    // rows that put the cuts in busy buckets (flat), in the overflow bucket (a far tail), on ties
    // spread over blocks, and past -inf logits; many uniforms per row
    const W = 20_011;
    const r = rng(77);
    const flat = Float32Array.from(randn(W, r), (x) => x * 0.3);
    const far = Float32Array.from(randn(W, r), (x) => x - 60);
    for (let j = 0; j < 40; j++) far[Math.floor(r() * W)] = 5 + r();
    const ties = new Float32Array(W).fill(-1);
    for (const j of [3, 2047, 2048, 9000, 20_010]) ties[j] = 2;
    const masked = Float32Array.from(randn(W, r), (x) => (x > 0.5 ? -Infinity : x));
    const zs = [flat, far, ties, masked];
    for (const [T, topK, topP] of [
      [1, 0, 1],
      [1, 0, 0.9],
      [0.8, 3000, 1],
      [1.2, 3000, 0.7],
      [1, 4, 0.99],
      [0.5, 0, 0.999],
    ] as const) {
      const rows = zs.flatMap((z) => Array.from({ length: 4 }, () => z));
      expectReference(
        rows,
        rows.map(() => Math.min(r(), 0.99999994)),
        T,
        topK,
        topP,
      );
    }
  });

  test('greedy takes the first maximum; a row without a finite maximum is one clear error', () => {
    tidy(() => {
      const z = new Float32Array(2 * 8).fill(0);
      z[3] = 5;
      z[5] = 5;
      z[8 + 6] = 1;
      const res = sampleTokens(Tensor.fromArray(z, [2, 8]), Tensor.zeros([2]), {
        temperature: 1,
        topK: 0,
        topP: 1,
        greedy: true,
      });
      assert.deepEqual(Array.from(res.ids.toArray()), [3, 6]);
      const bad = new Float32Array(8).fill(NaN);
      assert.throws(
        () =>
          sampleTokens(Tensor.fromArray(bad, [1, 8]), Tensor.zeros([1]), {
            temperature: 1,
            topK: 0,
            topP: 1,
            greedy: false,
          }),
        (e: unknown) => e instanceof NativeOpError && /no finite maximum/.test(e.message),
      );
    });
  });
});
