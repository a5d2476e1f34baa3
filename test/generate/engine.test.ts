/**
 * The rollout engine (src/generate/generate.ts): prefix sharing and continuous batching change
 * nothing per sequence (token for token, greedy and seeded sampling), the KV budget bounds the
 * running set, bf16 generation weights stay within a stated tolerance of fp32, log-probs equal the
 * training-side teacher-forced ones, and nothing leaks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel } from '../../src/model/init.ts';
import { Engine, generate, type GenerateOptions } from '../../src/generate/generate.ts';
import { Rng } from '../../src/data/rng.ts';
import { liveBytes } from '../../src/backend/index.ts';
import { GpgRlError } from '../../src/errors.ts';

const SHAPES = {
  qwen2: {
    model_type: 'qwen2',
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 97,
    initializer_range: 0.35,
  },
  qwen3: {
    model_type: 'qwen3',
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 16,
    vocab_size: 97,
    initializer_range: 0.35,
  },
};

function model(kind: keyof typeof SHAPES, seed = 3): CausalLM {
  const r = initModel(SHAPES[kind], { seed });
  return CausalLM.fromHost(r.cfg, r.tensors);
}

/** 4 prompts of lengths that straddle block boundaries (block size 4 in the tests), each repeated G times. */
function groupPrompts(G: number): number[][] {
  const base = [[5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15, 16, 17, 18], [19]];
  return base.flatMap((p) => Array.from({ length: G }, () => p));
}

const run = (m: CausalLM, prompts: number[][], o: Partial<GenerateOptions>) =>
  generate(m, prompts, { maxNewTokens: 9, eosTokenIds: [2], blockSize: 4, ...o });

describe('rollout engine', () => {
  for (const kind of ['qwen2', 'qwen3'] as const) {
    test(`${kind}: shared prefix = unshared, token for token (greedy and seeded sampling)`, () => {
      const m = model(kind);
      try {
        const prompts = groupPrompts(4);
        for (const sampling of [{ greedy: true }, { temperature: 1.0, topK: 20, topP: 0.95 }]) {
          const mk = () => (sampling.greedy ? {} : { rng: new Rng(11) });
          const shared = run(m, prompts, { ...sampling, ...mk() });
          const alone = run(m, prompts, { ...sampling, ...mk(), sharePrefix: false });
          assert.deepEqual(shared.tokens, alone.tokens);
          assert.deepEqual(shared.logps, alone.logps);
          assert.equal(shared.stats.prefills, 4, 'one prefill per group');
          assert.equal(alone.stats.prefills, 16);
          assert.ok(shared.stats.kvBlocksPeak < alone.stats.kvBlocksPeak, 'sharing uses fewer KV blocks');
          if (!sampling.greedy) {
            // sampled members of one group differ (their own streams), so sharing was really exercised
            const g0 = shared.tokens.slice(0, 4).map((t) => t.join(','));
            assert.ok(new Set(g0).size > 1, 'members of a group sample differently');
          }
        }
      } finally {
        m.dispose();
      }
    });

    test(`${kind}: continuous batching = static batching per sequence`, () => {
      const m = model(kind, 5);
      try {
        const prompts = groupPrompts(3);
        const o = { temperature: 0.9, eosTokenIds: [2, 40, 41, 42, 43] };
        const all = run(m, prompts, { ...o, rng: new Rng(4) });
        // a budget of a few blocks and at most 4 running sequences: groups wait and join as others finish
        const perBlock = m.kvBytesPerBlock(4);
        const tight = run(m, prompts, { ...o, rng: new Rng(4), kvCacheBytes: perBlock * 14, batchSize: 4 });
        assert.deepEqual(tight.tokens, all.tokens);
        assert.deepEqual(tight.logps, all.logps);
        assert.deepEqual(tight.finished, all.finished);
        assert.ok(tight.stats.maxRunning <= 4 && all.stats.maxRunning === 12, JSON.stringify([tight.stats, all.stats]));
        assert.ok(tight.stats.kvBlocks <= 14);
        assert.ok(
          all.finished.some(Boolean) && all.tokens.some((t) => t.length === 9),
          'some stop early, some run out',
        );
      } finally {
        m.dispose();
      }
    });
  }

  test('log-probs equal the teacher-forced fp32 log-probs; bf16 generation weights within 0.1 (max) and 0.02 (mean) nats', () => {
    const m = model('qwen2', 7);
    try {
      const prompts = groupPrompts(2);
      const f32 = run(m, prompts, { rng: new Rng(9), temperature: 0.7 });
      const bf = run(m, prompts, { rng: new Rng(9), temperature: 0.7, weightsDtype: 'bfloat16' });
      let maxF32 = 0;
      let maxBf = 0;
      let sumBf = 0;
      let nBf = 0;
      for (const [i, p] of prompts.entries()) {
        const seq = [...p, ...f32.tokens[i]!];
        const T = seq.length;
        const { logps } = m.tokenLogps(
          { ids: Int32Array.from(seq), mask: new Int32Array(T).fill(1), B: 1, T },
          { temperature: 0.7 },
        );
        const tf = logps.toFloat32().subarray(p.length - 1);
        logps.dispose();
        for (let t = 0; t < f32.tokens[i]!.length; t++) maxF32 = Math.max(maxF32, Math.abs(tf[t]! - f32.logps[i]![t]!));
        // bf16: compare where both sampled the same prefix
        for (let t = 0; t < bf.tokens[i]!.length && bf.tokens[i]![t] === f32.tokens[i]![t]; t++) {
          const d = Math.abs(tf[t]! - bf.logps[i]![t]!);
          maxBf = Math.max(maxBf, d);
          sumBf += d;
          nBf++;
        }
      }
      assert.ok(maxF32 < 1e-4, `fp32 generation vs teacher forcing: ${maxF32}`);
      // bf16 weights round each product's weights to 8 mantissa bits; with this test's large init
      // (logits of several units) that moves log-probs by up to a few hundredths of a nat
      assert.ok(nBf > 20, `compared ${nBf} tokens`);
      assert.ok(
        maxBf < 0.1 && sumBf / nBf < 0.02,
        `bf16 generation vs fp32 teacher forcing: max ${maxBf}, mean ${sumBf / nBf}`,
      );
    } finally {
      m.dispose();
    }
  });

  test('a live engine admits work between steps, each add with its own sampling settings; nothing changes per sequence', () => {
    const m = model('qwen2');
    try {
      const before = liveBytes();
      const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');
      const A = {
        prompts: [
          [5, 6, 7],
          [5, 6, 7],
          [8, 9],
        ],
        N: 12,
        s: { temperature: 0.7, topK: 10, topP: 0.9 },
        seeds: [1n, 2n, 3n],
      };
      const B = { prompts: [[12, 13, 14, 15, 16]], N: 5, s: { greedy: true } };
      const C = { prompts: [[19], [19]], N: 7, s: { temperature: 1.3, stopStrings: [decode([20])] }, seeds: [4n, 5n] };
      const alone = (x: { prompts: number[][]; N: number; s: object; seeds?: bigint[] }) =>
        run(m, x.prompts, { maxNewTokens: x.N, ...x.s, seeds: x.seeds, decode });
      const engine = new Engine(m, { eosTokenIds: [2], blockSize: 4, decode });
      const a = engine.add(A.prompts, { maxNewTokens: A.N, seeds: A.seeds, sampling: A.s });
      engine.step();
      engine.step();
      assert.equal(engine.runningSequences, 3);
      const b = engine.add(B.prompts, { maxNewTokens: B.N, sampling: B.s }); // admitted into the running batch
      engine.step();
      assert.equal(engine.runningSequences, 4);
      engine.step();
      const c = engine.add(C.prompts, { maxNewTokens: C.N, seeds: C.seeds, sampling: C.s });
      while (!engine.idle) engine.step();
      for (const [x, ids] of [
        [A, a],
        [B, b],
        [C, c],
      ] as const) {
        const want = alone(x);
        ids.forEach((id, j) => {
          const got = engine.sequence(id);
          assert.deepEqual(got.tokens, want.tokens[j], `sequence ${id}`);
          assert.deepEqual(got.logps, want.logps[j], `sequence ${id} logps`);
          assert.equal(got.finished, want.finished[j]);
          assert.ok(got.done);
        });
      }
      engine.close();
      assert.equal(liveBytes(), before);
    } finally {
      m.dispose();
    }
  });

  test('no leak: KV pools and packed weights are freed; a group larger than the budget is one clear error', () => {
    const m = model('qwen2');
    try {
      const before = liveBytes();
      run(m, groupPrompts(2), { greedy: true, weightsDtype: 'bfloat16' });
      assert.equal(liveBytes(), before);
      assert.throws(
        () => run(m, groupPrompts(8), { greedy: true, kvCacheBytes: m.kvBytesPerBlock(4) * 5 }),
        (e: unknown) => e instanceof GpgRlError && /KV budget .* holds 5 blocks .* needs \d+/.test(e.message),
      );
      assert.equal(liveBytes(), before);
      assert.deepEqual(run(m, [], { greedy: true }).tokens, []);
    } finally {
      m.dispose();
    }
  });
});
