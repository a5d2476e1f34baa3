/**
 * Batch-invariant numerics (issue 16, part 1): data-parallel ranks see other batches than one
 * process, so a row's numbers must not depend on which rows share its batch. On one process:
 *  - a sequence alone vs beside sequences of its padded shape (other GEMM row counts: 23 rows,
 *    under the old 32-row switch to the decode kernel, vs 184): token log-probs bit-equal;
 *  - beside sequences of other lengths (other left padding: the attention's key tiles start at a
 *    row's first real key, so its keys sit in the same SIMD lanes): log-probs bit-equal;
 *  - its gradient contribution (seed 1 on its tokens, 0 on the others'): bit-equal here, asserted
 *    within 1e-6 of the largest entry (the weight gradients sum over every row of the batch, so
 *    other rows' exact zeros enter the sums; only the summed gradient is defined);
 *  - 1 vs 2 compute threads: log-probs and gradients bit-equal;
 *  - sampling (the rollout engine, per-sequence seeds): tokens and log-probs bit-equal alone, in a
 *    batch of 8 and at batch size 3.
 * The trainer's data-parallel runs pack the same micro-batches as one process, so only the
 * rollout engine needs the invariance there (test/parallel/mpi-train.test.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { packBatch } from '../../src/train/batch.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { generate } from '../../src/generate/generate.ts';
import { getNumThreads, setNumThreads } from '../../src/backend/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpg-batchinv-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(
  join(dir, 'model'),
  {
    hidden_size: 64,
    intermediate_size: 160,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    tie_word_embeddings: true,
    max_position_embeddings: 128,
  },
  { seed: 3, charVocab: true },
);
const model = CausalLM.load(join(dir, 'model'));
const V = model.cfg.vocabSize;
const seq = (n: number, s: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7 + s * 13) % (V - 3)));
// the row under test, and batch-mates of other prompt and completion lengths
const row = { p: seq(9, 1), c: seq(14, 2) };
const mates = Array.from({ length: 7 }, (_, k) => ({ p: seq(4 + 3 * k, 10 + k), c: seq(20 - 2 * k, 30 + k) }));
const PAD = 0;

/** The row's completion-token log-probs and its gradient (seed 1 on its tokens, 0 on the mates'), with `others` in the batch. */
function rowNumbers(others: typeof mates): { lp: number[]; grad: Float32Array[] } {
  const rows = [...others.slice(0, 3), row, ...others.slice(3)];
  const at = Math.min(3, others.length);
  const packed = packBatch(
    rows.map((r) => r.p),
    rows.map((r) => r.c),
    PAD,
  );
  const { T, P } = packed;
  const params = model.parameters();
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
  model.setRequiresGrad(true);
  const lp = tidy(() => {
    const { logps, index } = model.tokenLogps(packed, { select: packed.m });
    const v = logps.toFloat32();
    const seed = new Float32Array(index.length);
    const out: number[] = [];
    for (let i = 0; i < index.length; i++) {
      const j = index[i]!;
      if (Math.floor(j / (T - 1)) === at) {
        seed[i] = 1;
        out.push(v[i]!);
      }
    }
    backward(logps, Tensor.fromArray(seed, [index.length]));
    return out;
  });
  assert.equal(lp.length, row.c.length, `P ${P}`);
  const grad = params.map((p) => p.grad!.toFloat32());
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
  return { lp, grad };
}

function maxRel(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  let m = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) {
      d = Math.max(d, Math.abs(x[j]! - b[i]![j]!));
      m = Math.max(m, Math.abs(x[j]!));
    }
  });
  return d / m;
}

test('a sequence alone vs beside sequences of its shape: token log-probs bit-equal', () => {
  const alone = rowNumbers([]);
  const same = Array.from({ length: 7 }, (_, k) => ({ p: seq(row.p.length, 50 + k), c: seq(row.c.length, 60 + k) }));
  assert.deepEqual(rowNumbers(same).lp, alone.lp);
});

test('a sequence alone vs inside a batch of other lengths: log-probs bit-equal, gradient contribution within 1e-6', () => {
  const alone = rowNumbers([]);
  const inBatch = rowNumbers(mates);
  const lpRel = Math.max(...alone.lp.map((x, i) => Math.abs(x - inBatch.lp[i]!) / Math.abs(x)));
  process.stdout.write(
    `# log-probs, alone vs in a batch of 8 (other padding): max relative difference ${lpRel.toExponential(2)}\n`,
  );
  assert.equal(lpRel, 0, `max relative log-prob difference ${lpRel}`);
  assert.deepEqual(inBatch.lp, alone.lp);
  const rel = maxRel(inBatch.grad, alone.grad);
  process.stdout.write(
    `# gradient contribution, alone vs in a batch of 8: max |Δg| / max |g| = ${rel.toExponential(2)}\n`,
  );
  assert.ok(rel <= 1e-6, `max |Δg| / max |g| = ${rel}`);
});

test('1 vs 2 compute threads: log-probs and gradients bit-equal', () => {
  const prev = getNumThreads();
  try {
    setNumThreads(1);
    const one = rowNumbers(mates);
    setNumThreads(2);
    const two = rowNumbers(mates);
    assert.deepEqual(two.lp, one.lp);
    assert.deepEqual(two.grad, one.grad);
  } finally {
    setNumThreads(prev);
  }
});

test('sampling: a sequence seeded alike gives the same tokens and log-probs alone, in a batch of 8, and at batch size 3', () => {
  model.setRequiresGrad(false);
  const seeds = Array.from({ length: 8 }, (_, i) => BigInt(1000 + i));
  const prompts = [row.p, ...mates.map((m) => m.p)];
  const o = { maxNewTokens: 24, temperature: 1, topP: 1, topK: 0, eosTokenIds: [1] };
  const all = generate(model, prompts, { ...o, seeds, batchSize: 8 });
  const alone = generate(model, [row.p], { ...o, seeds: [seeds[0]!], batchSize: 1 });
  const small = generate(model, prompts, { ...o, seeds, batchSize: 3 });
  assert.deepEqual(alone.tokens[0], all.tokens[0]);
  assert.deepEqual(alone.logps[0], all.logps[0]);
  assert.deepEqual(small.tokens, all.tokens);
  assert.deepEqual(small.logps, all.logps);
});
