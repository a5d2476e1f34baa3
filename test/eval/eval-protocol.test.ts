import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate } from '../../src/eval/evaluate.ts';
import { loadBenchmark } from '../../src/eval/benchmarks.ts';
import { LIGHTEVAL_MATH_QUERY_TEMPLATE, QWEN_COT_SYSTEM_PROMPT } from '../../src/eval/protocols.ts';
import type { CompletionLine } from '../../src/eval/completions.ts';
import { VerifierPool } from '../../src/rewards/math-verify/pool.ts';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { ConfigError, DataError } from '../../src/errors.ts';

const TINY = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 512,
  tie_word_embeddings: true,
};

const amc = loadBenchmark('amc23', { limit: 2 });
const lighteval = (problem: string): string => LIGHTEVAL_MATH_QUERY_TEMPLATE.replace('{prompt}', problem);
/** Every AMC23 problem of the first two rows answered, the first one right. */
const twoAmc: CompletionLine[] = [
  { benchmark: 'amc23', index: 0, completion: 'Therefore, the final answer is: $\\boxed{27}$. I hope it is correct' },
  { benchmark: 'amc23', index: 1, completion: '\\boxed{-1}' },
];

describe('evaluate by protocol', () => {
  const pool = new VerifierPool({ timeoutMs: 10_000 });
  test.after(() => pool.close());

  test('lighteval on given completions: its user template, no system prompt, protocol recorded', async () => {
    const r = await evaluate(null, null, { protocol: 'lighteval', completions: twoAmc, limit: 2, pool });
    // No tokenizer: lighteval's text without chat template is the query alone.
    assert.equal(r.records[0]!.prompt, lighteval(amc[0]!.problem));
    assert.ok(r.records[0]!.prompt.startsWith('Solve the following math problem efficiently and clearly.  The last'));
    assert.equal(r.summary.protocol, 'lighteval');
    assert.deepEqual(r.summary.protocol_overrides, []);
    const ps = r.summary.protocol_settings;
    assert.deepEqual(
      [ps.systemPrompt, ps.promptTemplate, ps.useChatTemplate, ps.grader],
      ['', LIGHTEVAL_MATH_QUERY_TEMPLATE, true, 'math-verify'],
    );
    // Given completions were not generated here: the generation settings are not claimed.
    assert.deepEqual(
      [ps.temperature, ps.topP, ps.topK, ps.samples, ps.maxNewTokens, ps.seed, ps.stopTokens],
      [null, null, null, null, null, null, null],
    );
    assert.equal(r.summary.systemPrompt, '');
    assert.deepEqual(r.summary.coverage, { graded: 2, total: 2 });
    assert.deepEqual(r.summary.benchmarks.amc23!.coverage, { graded: 2, total: 2 });
    assert.equal(r.summary.benchmarks.amc23!.pass1, 0.5);
    // Full coverage: the paper's table, no coverage row.
    assert.deepEqual(r.table.split('\n'), [
      '| Model | Average | AMC23 |',
      '| :--- | ---: | ---: |',
      '| completions (pass@1) | 50.0 | 50.0 |',
    ]);
  });

  test("qwen-math: the qwen25-math-cot text and Qwen2.5-Math's grader; a pool's grader is an override", async () => {
    const r = await evaluate(null, null, { protocol: 'qwen-math', completions: twoAmc, limit: 2 });
    assert.equal(
      r.records[1]!.prompt,
      `<|im_start|>system\n${QWEN_COT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${amc[1]!.problem}<|im_end|>\n<|im_start|>assistant\n`,
    );
    assert.equal(r.summary.grader, 'qwen');
    assert.equal(r.summary.protocol_settings.grader, 'qwen');
    assert.deepEqual(r.summary.protocol_overrides, []);
    const withPool = await evaluate(null, null, { protocol: 'qwen-math', completions: twoAmc, limit: 2, pool });
    assert.equal(withPool.summary.grader, 'math-verify');
    assert.deepEqual(withPool.summary.protocol_overrides, ['grader']);
  });

  test('user template and system prompt options (a dataset prompt_template / system_prompt)', async () => {
    const r = await evaluate(null, null, {
      protocol: 'lighteval',
      completions: twoAmc,
      limit: 2,
      pool,
      promptTemplate: 'Q: {prompt}\nPut the answer in \\boxed{}.',
      systemPrompt: 'Be brief. ',
    });
    assert.equal(r.records[0]!.prompt, `Be brief. Q: ${amc[0]!.problem}\nPut the answer in \\boxed{}.`);
    assert.deepEqual(r.summary.protocol_overrides, ['systemPrompt', 'promptTemplate']);
    const raw = await evaluate(null, null, {
      completions: twoAmc,
      limit: 1,
      pool,
      systemPrompt: '',
      rawTemplate: '### Problem: {prompt}\n### Solution:',
    });
    assert.equal(raw.records[0]!.prompt, `### Problem: ${amc[0]!.problem}\n### Solution:`);
    assert.equal(raw.summary.protocol, 'default');
    assert.deepEqual(raw.summary.protocol_overrides, ['systemPrompt', 'rawTemplate']);
  });

  test('coverage: a problem without a completion is an error, or with allowPartial a visible gap', async () => {
    const some: CompletionLine[] = [
      { benchmark: 'amc23', index: 0, completion: '\\boxed{27}', source: 'c.jsonl:1' },
      { benchmark: 'aime24', index: 2, completion: '\\boxed{1}', source: 'c.jsonl:2' },
    ];
    await assert.rejects(
      evaluate(null, null, { completions: some, limit: 5, pool }),
      (e: unknown) =>
        e instanceof DataError &&
        e.message ===
          'c.jsonl: not every problem has a completion: aime24 1/5 (missing index 0, 1, 3, …); amc23 1/5 (missing index 1, 2, 3, …); add the missing ones, narrow --benchmarks/--limit, or pass --allow-partial to score only the graded problems',
    );
    // Without a limit the whole set counts.
    await assert.rejects(
      evaluate(null, null, { completions: some.slice(0, 1), pool }),
      /amc23 1\/40 \(missing index 1, 2, 3, …\)/,
    );
    const r = await evaluate(null, null, { completions: some, limit: 5, pool, allowPartial: true, modelName: 'part' });
    assert.deepEqual(r.summary.benchmarks.aime24!.coverage, { graded: 1, total: 5 });
    assert.deepEqual(r.summary.benchmarks.amc23!.coverage, { graded: 1, total: 5 });
    assert.deepEqual(r.summary.coverage, { graded: 2, total: 10 });
    assert.equal(r.summary.benchmarks.amc23!.pass1, 1); // over the graded problems
    assert.deepEqual(r.table.split('\n'), [
      '| Model | Average | AIME24 | AMC23 |',
      '| :--- | ---: | ---: | ---: |',
      '| part (pass@1) | 50.0 | 0.0 | 100.0 |',
      '| part (graded/total) | 2/10 | 1/5 | 1/5 |',
    ]);
    // A selected benchmark with no completion at all stays an error even with allowPartial.
    await assert.rejects(
      evaluate(null, null, { completions: some, benchmarks: ['amc23', 'minerva'], pool, allowPartial: true }),
      /completions: none for benchmark minerva/,
    );
  });

  test('resolved settings are checked: templates need {prompt}, ranges', async () => {
    const bad: Array<[object, RegExp]> = [
      [{ promptTemplate: 'no place' }, /^evaluate: promptTemplate must contain \{prompt\} where the problem goes/],
      [{ rawTemplate: '{system}' }, /^evaluate: rawTemplate must contain \{prompt\}/],
      [{ topP: 0 }, /^evaluate: topP must be in \(0, 1\] \(got 0\)$/],
      [{ temperature: -1 }, /^evaluate: temperature must be ≥ 0/],
      [{ topK: 1.5 }, /^evaluate: topK must be an integer ≥ 0/],
      [{ grader: 'sympy' }, /^evaluate: grader must be math-verify or qwen \(got "sympy"\)$/],
    ];
    for (const [o, re] of bad)
      await assert.rejects(
        evaluate(null, null, { completions: twoAmc, limit: 2, ...o }),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
        JSON.stringify(o),
      );
    await assert.rejects(
      evaluate(null, null, { completions: twoAmc, limit: 2, protocol: 'helm' as never }),
      /unknown protocol "helm"; known: default, lighteval, qwen-math/,
    );
  });

  test('generation on a tiny model: each protocol prompt, sampling and overrides; the trainer call keeps working', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-eval-proto-'));
    const model = (writeInitModel(join(dir, 'm'), TINY, { seed: 5, charVocab: true }), CausalLM.load(join(dir, 'm')));
    const tok = TextTokenizer.fromDir(join(dir, 'm'));
    const math = loadBenchmark('math500', { limit: 1 })[0]!;
    try {
      const l = await evaluate(model, tok, {
        protocol: 'lighteval',
        benchmarks: ['math500'],
        limit: 1,
        maxNewTokens: 4,
        pool,
      });
      assert.equal(l.records.length, 1); // one sample per problem
      // Chat template, user turn = MATH_QUERY_TEMPLATE, no system message.
      assert.equal(
        l.records[0]!.prompt,
        `<|im_start|>user\n${lighteval(math.problem)}<|im_end|>\n<|im_start|>assistant\n`,
      );
      assert.ok(l.records[0]!.completion.length <= 4);
      assert.equal(l.summary.protocol, 'lighteval');
      assert.deepEqual(l.summary.protocol_overrides, ['maxNewTokens']);
      const ps = l.summary.protocol_settings;
      assert.deepEqual(
        [ps.temperature, ps.topP, ps.topK, ps.samples, ps.maxNewTokens, ps.seed],
        [0.6, 0.95, 0, 1, 4, 1234],
      );
      assert.deepEqual([l.summary.temperature, l.summary.seed, l.summary.maxNewTokens], [0.6, 1234, 4]);

      const q = await evaluate(model, tok, {
        protocol: 'qwen-math',
        benchmarks: ['math500'],
        limit: 1,
        maxNewTokens: 4,
      });
      const frame = `<|im_start|>system\n${QWEN_COT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${math.problem}<|im_end|>\n<|im_start|>assistant\n`;
      assert.equal(q.records[0]!.prompt, frame);
      assert.deepEqual([q.summary.temperature, q.summary.seed, q.summary.grader], [0, null, 'qwen']);
      assert.deepEqual(q.summary.protocol_settings.stopTokens, ['<|im_end|>', '<|endoftext|>', '</s>']);
      // For a ChatML tokenizer the harness's fixed text is what the chat template renders.
      const qc = await evaluate(model, tok, {
        protocol: 'qwen-math',
        benchmarks: ['math500'],
        limit: 1,
        maxNewTokens: 4,
        useChatTemplate: true,
        pool,
      });
      assert.equal(qc.records[0]!.prompt, frame);
      assert.equal(qc.records[0]!.completion, q.records[0]!.completion); // greedy, same tokens
      assert.deepEqual(qc.summary.protocol_overrides, ['useChatTemplate', 'maxNewTokens', 'grader']);

      // The trainer's call (src/rl/trainer.ts), unchanged: the default protocol.
      const t = await evaluate(model, tok, {
        benchmarks: ['amc23'],
        limit: 1,
        maxNewTokens: 4,
        eosTokenIds: [tok.eosTokenId!],
        pool,
      });
      assert.equal(t.summary.protocol, 'default');
      assert.deepEqual(t.summary.protocol_overrides, ['maxNewTokens']);
      assert.ok(t.records[0]!.prompt.startsWith(`<|im_start|>system\n${QWEN_COT_SYSTEM_PROMPT}<|im_end|>\n`));
      // ... and with the dataset's template and system prompt passed through.
      const d = await evaluate(model, tok, {
        benchmarks: ['amc23'],
        limit: 1,
        maxNewTokens: 4,
        pool,
        systemPrompt: '',
        promptTemplate: '{prompt}\nPut your final answer in \\boxed{}.',
      });
      assert.equal(
        d.records[0]!.prompt,
        `<|im_start|>user\n${amc[0]!.problem}\nPut your final answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n`,
      );
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
