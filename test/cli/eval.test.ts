import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const run = (args: string[]) =>
  spawnSync(process.execPath, [BIN, 'eval', ...args], { encoding: 'utf8', timeout: 120_000 });
const TINY = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 512,
  tie_word_embeddings: true,
};

describe('gpg-rl eval', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-eval-cli-'));
  const modelDir = join(dir, 'tiny-model');
  writeInitModel(modelDir, TINY, { seed: 1, charVocab: true });
  test.after(() => rmSync(dir, { recursive: true, force: true }));

  test('end to end on a tiny init-model over a slice of every benchmark', () => {
    const out = join(dir, 'out');
    const r = run([
      '--model',
      modelDir,
      '--benchmarks',
      'aime24,math500,amc23,minerva,olympiadbench',
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--samples',
      '2',
      '--temperature',
      '0.8',
      '--out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const table = r.stdout.trim().split('\n');
    assert.equal(table[0], '| Model | Average | AIME24 | MATH-500 | AMC23 | Minerva | OlympiadBench |');
    assert.equal(table[1], '| :--- | ---: | ---: | ---: | ---: | ---: | ---: |');
    assert.match(table[2]!, /^\| tiny-model \(pass@1, avg of 2\)( \| \d+\.\d){6} \|$/);
    assert.match(table[3]!, /^\| tiny-model \(pass@2\)( \| \d+\.\d){6} \|$/);
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 5 * 2 * 2);
    for (const l of lines) {
      assert.ok(['aime24', 'math500', 'amc23', 'minerva', 'olympiadbench'].includes(l['benchmark'] as string));
      assert.ok(l['index'] === 0 || l['index'] === 1);
      assert.ok(l['sample'] === 0 || l['sample'] === 1);
      assert.equal(typeof l['prompt'], 'string');
      assert.ok(typeof l['completion'] === 'string' && (l['completion'] as string).length <= 8);
      assert.ok(l['extracted'] === null || typeof l['extracted'] === 'string');
      assert.equal(typeof l['gold'], 'string');
      assert.equal(typeof l['correct'], 'boolean');
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      k: number;
      limit: number;
      maxNewTokens: number;
      benchmarks: Record<string, { problems: number; completions: number; pass1: number }>;
      average: { pass1: number };
      table: string;
    };
    assert.equal(summary.k, 2);
    assert.equal(summary.limit, 2);
    assert.equal(summary.maxNewTokens, 8);
    assert.deepEqual(Object.keys(summary.benchmarks), ['aime24', 'math500', 'amc23', 'minerva', 'olympiadbench']);
    for (const b of Object.values(summary.benchmarks)) assert.deepEqual([b.problems, b.completions], [2, 4]);
    assert.equal(summary.table, r.stdout.trim());
  });

  test('--completions grades given completions without a model', () => {
    const file = join(dir, 'c.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({
          benchmark: 'amc23',
          index: 0,
          completion: 'They meet after 1.5 hours, so \\boxed{27} miles.',
        }),
        JSON.stringify({ benchmark: 'minerva', index: 0, completion: 'about \\boxed{1.6}' }),
        JSON.stringify({ benchmark: 'minerva', index: 1, completion: '\\boxed{42}' }),
      ].join('\n'),
    );
    const out = join(dir, 'graded');
    const r = run(['--completions', file, '--out', out, '--grader', 'qwen']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '| Model | Average | AMC23 | Minerva |',
      '| :--- | ---: | ---: | ---: |',
      '| c.jsonl (pass@1) | 75.0 | 100.0 | 50.0 |',
    ]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { grader: string; mode: string };
    assert.deepEqual([summary.grader, summary.mode], ['qwen', 'completions']);
  });

  test('bad input: one-line error, exit 1, no output', () => {
    const out = join(dir, 'never');
    const cases: Array<[string[], RegExp]> = [
      [
        ['--model', modelDir, '--benchmarks', 'aime24,gsm8k', '--out', out],
        /^gpg-rl eval: --benchmarks: unknown benchmark "gsm8k"; known: aime24, math500, amc23, minerva, olympiadbench\n$/,
      ],
      [
        ['--model', join(dir, 'no-such-model'), '--out', out],
        /^gpg-rl eval: --model .*no-such-model: no such folder; give a Hugging Face model folder/,
      ],
      [['--out', out], /^gpg-rl eval: `gpg-rl eval` needs --model DIR \(or --completions FILE/],
      [['--model', modelDir, '--grader', 'sympy', '--out', out], /--grader must be math-verify or qwen \(got sympy\)/],
      [['--model', modelDir, '--temperature', '-1', '--out', out], /--temperature must be ≥ 0/],
    ];
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(
      bad,
      JSON.stringify({ benchmark: 'aime24', index: 0, completion: '\\boxed{204}' }) +
        '\n{"benchmark":"aime24","index":"x"}\n',
    );
    cases.push([
      ['--completions', bad, '--out', out],
      /^gpg-rl eval: .*bad\.jsonl:2: field "index" must be a row number ≥ 0 \(got "x"\)\n$/,
    ]);
    const range = join(dir, 'range.jsonl');
    writeFileSync(range, JSON.stringify({ benchmark: 'amc23', index: 40, completion: '1' }) + '\n');
    cases.push([
      ['--completions', range, '--out', out],
      /range\.jsonl:1: index 40 is out of range for amc23 \(40 rows, 0\.\.39\)/,
    ]);
    for (const [args, re] of cases) {
      const r = run(args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(existsSync(out), false, args.join(' '));
    }
  });
});
