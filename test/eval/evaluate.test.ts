import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCHMARKS, defaultDataDir, loadBenchmark } from '../../src/eval/benchmarks.ts';
import { lastBoxed } from '../../src/eval/answers.ts';
import { DEFAULT_SYSTEM_PROMPT, evaluate, writeEvalOutputs } from '../../src/eval/evaluate.ts';
import type { CompletionLine } from '../../src/eval/completions.ts';
import { VerifierPool } from '../../src/rewards/math-verify/pool.ts';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { DataError, GpgRlError } from '../../src/errors.ts';

const TINY = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 512,
  tie_word_embeddings: true,
};

/**
 * Each set's own gold solution as a completion: the `solution` text when it carries a \boxed{}
 * answer (MATH-500, Minerva, 29 of 30 AIME24 rows), else the gold answer wrapped in \boxed{}
 * (AMC23 has no solutions; OlympiadBench's solutions never box the answer).
 */
function goldCompletions(): CompletionLine[] {
  const out: CompletionLine[] = [];
  for (const b of BENCHMARKS) {
    const rows = readFileSync(join(defaultDataDir(), b.folder, b.file), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const problems = loadBenchmark(b.id);
    rows.forEach((r, i) => {
      const sol = r['solution'];
      const completion =
        typeof sol === 'string' && lastBoxed(sol) !== null
          ? sol
          : `The final answer is $\\boxed{${problems[i]!.gold}}$.`;
      out.push({ benchmark: b.id, index: i, completion });
    });
  }
  return out;
}

describe('evaluate', () => {
  const pool = new VerifierPool({ timeoutMs: 10_000 });
  test.after(() => pool.close());

  test('gold solutions of ALL rows of all five benchmarks score 100%; shifted answers score 0%', async () => {
    const gold = goldCompletions();
    assert.equal(gold.length, 30 + 500 + 40 + 272 + 675);
    const r = await evaluate(null, null, { completions: gold, pool, modelName: 'gold' });
    for (const b of BENCHMARKS) {
      const s = r.summary.benchmarks[b.id]!;
      const wrong = r.records
        .filter((x) => x.benchmark === b.id && !x.correct)
        .map((x) => `${x.index}: gold ${x.gold} got ${x.extracted}${x.error ? ` (${x.error})` : ''}`);
      assert.deepEqual(wrong, [], b.id);
      assert.equal(s.pass1, 1, b.id);
      assert.equal(s.correct, s.completions);
    }
    assert.equal(r.summary.average.pass1, 1);
    assert.equal(r.summary.mode, 'completions');
    assert.match(
      r.table,
      /^\| Model \| Average \| AIME24 \| MATH-500 \| AMC23 \| Minerva \| OlympiadBench \|\n.*\n\| gold \(pass@1\) \| 100\.0 \| 100\.0 \| 100\.0 \| 100\.0 \| 100\.0 \| 100\.0 \|$/,
    );
    // The AMC23 answers given as 27.0 are extracted and graded as numbers.
    assert.equal(r.records.find((x) => x.benchmark === 'amc23' && x.index === 0)!.extracted, '27');

    // Each problem answered with the next problem's gold answer: the verifier must reject nearly all
    // (a few neighbours share an answer).
    const shifted: CompletionLine[] = [];
    for (const b of ['amc23', 'aime24'] as const) {
      const ps = loadBenchmark(b);
      ps.forEach((p, i) =>
        shifted.push({ benchmark: b, index: i, completion: `\\boxed{${ps[(i + 1) % ps.length]!.gold}}` }),
      );
    }
    const w = await evaluate(null, null, { completions: shifted, pool });
    for (const b of ['amc23', 'aime24'] as const) {
      const ps = loadBenchmark(b);
      const same = ps.filter((p, i) => p.gold === ps[(i + 1) % ps.length]!.gold).length;
      assert.equal(w.summary.benchmarks[b]!.correct, same, b);
    }
  });

  test('several samples per problem: pass@1 averages them, pass@k is unbiased; prompt uses the system message', async () => {
    const ok = '\\boxed{27}';
    const r = await evaluate(null, null, {
      pool,
      completions: [
        { benchmark: 'amc23', index: 0, completion: ok },
        { benchmark: 'amc23', index: 0, completion: 'no idea' },
        { benchmark: 'amc23', index: 1, completion: 'wrong: \\boxed{-1}', sample: 1 },
        { benchmark: 'amc23', index: 1, completion: 'also \\boxed{-2}' },
        { benchmark: 'amc23', index: 2, completion: 'still wrong', sample: 0 },
        { benchmark: 'amc23', index: 2, completion: 'still wrong', sample: 5 },
        { benchmark: 'math500', index: 0, completion: 'x' }, // not selected: skipped
      ],
      benchmarks: ['amc23'],
      allowPartial: true,
    });
    const s = r.summary.benchmarks.amc23!;
    assert.equal(r.summary.k, 2);
    assert.equal(s.problems, 3);
    assert.equal(s.completions, 6);
    assert.ok(Math.abs(s.pass1 - 0.5 / 3) < 1e-12);
    assert.ok(Math.abs(s.passK - 1 / 3) < 1e-12);
    assert.deepEqual(
      r.records.map((x) => [x.index, x.sample, x.correct]),
      [
        [0, 0, true],
        [0, 1, false],
        [1, 0, false],
        [1, 1, false],
        [2, 0, false],
        [2, 5, false],
      ],
    );
    assert.equal(r.summary.benchmarks.math500, undefined);
    assert.equal(
      r.records[0]!.prompt,
      `Cities $A$ and $B$ are $45$ miles apart. Alicia lives in $A$ and Beth lives in $B$. Alicia bikes towards $B$ at 18 miles per hour. Leaving at the same time, Beth bikes toward $A$ at 12 miles per hour. How many miles from City $A$ will they be when they meet?\n${DEFAULT_SYSTEM_PROMPT}\n`,
    );
    assert.equal(r.records[0]!.extracted, '27');
    assert.equal(r.records[1]!.extracted, null);
    assert.match(
      r.table,
      /\| completions \(pass@2\) \| 33\.3 \| 33\.3 \|\n\| completions \(graded\/total\) \| 3\/40 \| 3\/40 \|$/,
    );
    assert.deepEqual(s.coverage, { graded: 3, total: 40 });
    assert.deepEqual(r.summary.coverage, { graded: 3, total: 40 });
  });

  test('bad completions: index out of range, duplicate sample, too few samples for k, benchmark without completions', async () => {
    await assert.rejects(
      evaluate(null, null, {
        pool,
        completions: [{ benchmark: 'aime24', index: 30, completion: '', source: 'f.jsonl:7' }],
      }),
      (e: unknown) =>
        e instanceof DataError && e.message === 'f.jsonl:7: index 30 is out of range for aime24 (30 rows, 0..29)',
    );
    await assert.rejects(
      evaluate(null, null, {
        pool,
        completions: [
          { benchmark: 'aime24', index: 1, completion: '', sample: 0 },
          { benchmark: 'aime24', index: 1, completion: '', sample: 0, source: 'f.jsonl:2' },
        ],
      }),
      /f\.jsonl:2: aime24 index 1 sample 0 is given twice/,
    );
    await assert.rejects(
      evaluate(null, null, {
        pool,
        samples: 2,
        allowPartial: true,
        completions: [{ benchmark: 'aime24', index: 1, completion: '' }],
      }),
      /pass@2 needs 2 samples of every problem/,
    );
    await assert.rejects(
      evaluate(null, null, {
        pool,
        benchmarks: ['aime24', 'minerva'],
        completions: [{ benchmark: 'aime24', index: 1, completion: '' }],
      }),
      /completions: none for benchmark minerva/,
    );
    await assert.rejects(
      evaluate(null, null, { pool, limit: 1, completions: [{ benchmark: 'aime24', index: 1, completion: '' }] }),
      /none for benchmark aime24 within the first 1 rows/,
    );
    await assert.rejects(
      evaluate(null, null, { pool, benchmarks: ['aime24'] }),
      (e: unknown) => e instanceof GpgRlError && /generating needs a model and its tokenizer/.test(e.message),
    );
  });

  test('generation on a tiny init-model: a slice of every benchmark, greedy samples repeat, sampling is seeded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-eval-'));
    const model = (writeInitModel(join(dir, 'm'), TINY, { seed: 3, charVocab: true }), CausalLM.load(join(dir, 'm')));
    const tok = TextTokenizer.fromDir(join(dir, 'm'));
    try {
      const progressLines: string[] = [];
      const g = await evaluate(model, tok, {
        pool,
        limit: 2,
        maxNewTokens: 6,
        samples: 2,
        modelName: 'tiny',
        onProgress: (m) => void progressLines.push(m),
      });
      assert.equal(g.records.length, 5 * 2 * 2);
      // progress per benchmark with elapsed time and ETA; the last update of each always prints
      // (greedy: one completion per problem)
      for (const b of BENCHMARKS)
        assert.ok(
          progressLines.some((l) => new RegExp(`^eval: ${b.id}: completions 2/2, elapsed \\d+s, eta 0s$`).test(l)),
          `${b.id}: ${progressLines.join(' | ')}`,
        );
      for (const b of BENCHMARKS) assert.equal(g.summary.benchmarks[b.id]!.problems, 2);
      const first = g.records[0]!;
      assert.ok(
        first.prompt.startsWith(
          `<|im_start|>system\n${DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nEvery morning Aya`,
        ),
        first.prompt.slice(0, 120),
      );
      assert.ok(first.prompt.endsWith('<|im_start|>assistant\n'));
      for (let i = 0; i < g.records.length; i += 2) {
        assert.equal(g.records[i]!.completion, g.records[i + 1]!.completion); // greedy: both samples equal
        assert.ok(g.records[i]!.completion.length <= 6);
        assert.equal(typeof g.records[i]!.finished, 'boolean');
      }
      assert.equal(g.summary.temperature, 0);
      assert.equal(g.summary.seed, null);

      const opts = {
        pool,
        limit: 1,
        maxNewTokens: 6,
        samples: 3,
        temperature: 1.5,
        seed: 7,
        benchmarks: ['math500' as const, 'minerva' as const],
      };
      const s1 = await evaluate(model, tok, opts);
      const s2 = await evaluate(model, tok, opts);
      assert.deepEqual(
        s1.records.map((x) => x.completion),
        s2.records.map((x) => x.completion),
      );
      assert.equal(new Set(s1.records.map((x) => x.completion)).size > 1, true);

      const out = join(dir, 'out', 'nested');
      const files = writeEvalOutputs(out, g);
      assert.deepEqual(readdirSync(out).sort(), ['results.jsonl', 'summary.json']);
      const lines = readFileSync(files.results, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(lines.length, 20);
      assert.deepEqual(Object.keys(lines[0]!), [
        'benchmark',
        'index',
        'sample',
        'prompt',
        'completion',
        'extracted',
        'gold',
        'correct',
        'finished',
      ]);
      const summary = JSON.parse(readFileSync(files.summary, 'utf8')) as Record<string, unknown>;
      assert.equal(summary['k'], 2);
      assert.equal(summary['table'], g.table);
      assert.equal(existsSync(`${files.summary}.${process.pid}.tmp`), false);
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
