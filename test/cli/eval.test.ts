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
    // Not every problem has a completion: refused, nothing written.
    const refused = run(['--completions', file, '--out', out, '--grader', 'qwen']);
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /^gpg-rl eval: .*c\.jsonl: not every problem has a completion: amc23 1\/40 \(missing index 1, 2, 3, …\); minerva 2\/272 \(missing index 2, 3, 4, …\); add the missing ones, narrow --benchmarks\/--limit, or pass --allow-partial to score only the graded problems\n$/,
    );
    assert.equal(refused.stdout, '');
    assert.equal(existsSync(out), false);
    // --allow-partial: scored over the graded problems, the gap shown in the table and summary.json.
    const r = run(['--completions', file, '--out', out, '--grader', 'qwen', '--allow-partial']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '| Model | Average | AMC23 | Minerva |',
      '| :--- | ---: | ---: | ---: |',
      '| c.jsonl (pass@1) | 75.0 | 100.0 | 50.0 |',
      '| c.jsonl (graded/total) | 3/312 | 1/40 | 2/272 |',
    ]);
    assert.match(r.stderr, /coverage 3\/312/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      grader: string;
      mode: string;
      protocol: string;
      protocol_overrides: string[];
      coverage: { graded: number; total: number };
      benchmarks: Record<string, { coverage: { graded: number; total: number } }>;
    };
    assert.deepEqual([summary.grader, summary.mode, summary.protocol], ['qwen', 'completions', 'default']);
    assert.deepEqual(summary.protocol_overrides, ['grader']);
    assert.deepEqual(summary.coverage, { graded: 3, total: 312 });
    assert.deepEqual(summary.benchmarks['minerva']!.coverage, { graded: 2, total: 272 });
    // issue 18: results already in --out are not replaced silently, and an unwritable --out fails first
    const again = run(['--completions', file, '--out', out, '--grader', 'qwen', '--allow-partial']);
    assert.equal(again.status, 1);
    assert.match(
      again.stderr,
      /^gpg-rl eval: --out .*graded: already holds results\.jsonl and summary\.json; pass --overwrite/,
    );
    const over = run(['--completions', file, '--out', out, '--grader', 'qwen', '--allow-partial', '--overwrite']);
    assert.equal(over.status, 0, over.stderr);
    const ro = run(['--completions', file, '--out', '/proc/gpg-rl-eval/out', '--grader', 'qwen', '--allow-partial']);
    assert.equal(ro.status, 1);
    assert.match(
      ro.stderr,
      /^gpg-rl eval: --out \/proc\/gpg-rl-eval\/out: cannot create folder \/proc\/gpg-rl-eval: .*\n$/,
    );
    // Complete within --limit: no flag needed, the plain table.
    const first = join(dir, 'first.jsonl');
    writeFileSync(first, JSON.stringify({ benchmark: 'amc23', index: 0, completion: '\\boxed{27}' }) + '\n');
    const one = run(['--completions', first, '--limit', '1']);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.stdout.trim().split('\n').length, 3);
  });

  test('--protocol lighteval on a tiny model: the paper table, the protocol in summary.json', () => {
    const out = join(dir, 'lighteval');
    const r = run([
      '--model',
      modelDir,
      '--protocol',
      'lighteval',
      '--limit',
      '1',
      '--max-new-tokens',
      '6',
      '--out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const table = r.stdout.trim().split('\n');
    assert.deepEqual(table.slice(0, 2), [
      '| Model | Average | AIME24 | MATH-500 | AMC23 | Minerva | OlympiadBench |',
      '| :--- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]);
    assert.match(table[2]!, /^\| tiny-model \(pass@1\)( \| \d+\.\d){6} \|$/);
    assert.equal(table.length, 3);
    assert.match(r.stderr, /eval: protocol lighteval \(overridden: maxNewTokens\)/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(summary['protocol'], 'lighteval');
    assert.deepEqual(summary['protocol_overrides'], ['maxNewTokens']);
    const ps = summary['protocol_settings'] as Record<string, unknown>;
    assert.deepEqual(
      [ps['systemPrompt'], ps['useChatTemplate'], ps['temperature'], ps['topP'], ps['samples'], ps['maxNewTokens']],
      ['', true, 0.6, 0.95, 1, 6],
    );
    assert.ok((ps['promptTemplate'] as string).startsWith('Solve the following math problem efficiently and clearly.'));
    assert.equal(ps['grader'], 'math-verify');
    assert.deepEqual(summary['coverage'], { graded: 5, total: 5 });
    assert.equal(summary['table'], r.stdout.trim());
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 5);
    const first = JSON.parse(lines[0]!) as { prompt: string };
    assert.ok(first.prompt.startsWith('<|im_start|>user\nSolve the following math problem'), first.prompt.slice(0, 80));
    assert.ok(!first.prompt.includes('<|im_start|>system'));
  });

  test('--protocol qwen-math with --prompt-template, --system-prompt, --temperature overrides', () => {
    const out = join(dir, 'qwen');
    const r = run([
      '--model',
      modelDir,
      '--protocol',
      'qwen-math',
      '--benchmarks',
      'amc23',
      '--limit',
      '1',
      '--max-new-tokens',
      '4',
      '--prompt-template',
      'Problem: {prompt}',
      '--system-prompt',
      'Think.',
      '--temperature',
      '0.7',
      '--out',
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(summary['protocol'], 'qwen-math');
    assert.deepEqual(summary['protocol_overrides'], ['systemPrompt', 'promptTemplate', 'temperature', 'maxNewTokens']);
    assert.equal(summary['grader'], 'qwen');
    const rec = JSON.parse(readFileSync(join(out, 'results.jsonl'), 'utf8').trim()) as { prompt: string };
    assert.ok(rec.prompt.startsWith('<|im_start|>system\nThink.<|im_end|>\n<|im_start|>user\nProblem: Cities $A$'));
    assert.ok(rec.prompt.endsWith('<|im_end|>\n<|im_start|>assistant\n'));
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
        /^gpg-rl eval: --model: model folder not found: .*no-such-model \(a Hugging Face folder with config\.json/,
      ],
      [['--out', out], /^gpg-rl eval: `gpg-rl eval` needs --model DIR \(or --completions FILE/],
      [['--model', modelDir, '--grader', 'sympy', '--out', out], /--grader must be math-verify or qwen \(got sympy\)/],
      [['--model', modelDir, '--temperature', '-1', '--out', out], /--temperature must be ≥ 0/],
      [
        ['--model', modelDir, '--protocol', 'open-r1', '--out', out],
        /^gpg-rl eval: --protocol: unknown protocol "open-r1"; known: default, lighteval, qwen-math\n$/,
      ],
      [
        ['--model', modelDir, '--prompt-template', 'Solve it.', '--out', out],
        /^gpg-rl eval: --prompt-template must contain \{prompt\} where the problem goes \(got "Solve it\."\)\n$/,
      ],
      [['--model', modelDir, '--chat-template', 'yes', '--out', out], /--chat-template must be on or off \(got yes\)/],
      [['--model', modelDir, '--allow-partial', '--out', out], /--allow-partial only applies with --completions FILE/],
      [['--model', modelDir, '--top-p', '0', '--out', out], /--top-p must be in \(0, 1\] \(got 0\)/],
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
