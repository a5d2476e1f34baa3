import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCompletions, readCompletionsFile } from '../../src/eval/completions.ts';
import { DataError } from '../../src/errors.ts';

describe('parseCompletions', () => {
  test('reads benchmark, index, completion and optional sample; skips blank lines', () => {
    const c = parseCompletions(
      '{"benchmark":"math500","index":3,"completion":"\\\\boxed{2}"}\n\n{"benchmark":"minerva","index":0,"completion":"x","sample":2,"extra":1}\n',
      'c.jsonl',
    );
    assert.deepEqual(c, [
      { benchmark: 'math500', index: 3, completion: '\\boxed{2}', source: 'c.jsonl:1' },
      { benchmark: 'minerva', index: 0, completion: 'x', sample: 2, source: 'c.jsonl:3' },
    ]);
  });
  const bad: Array<[string, RegExp]> = [
    ['not json', /^c\.jsonl:1: not valid JSON/],
    ['[1,2]', /^c\.jsonl:1: expected a JSON object .* got an array$/],
    [
      '{"benchmark":"gsm9k","index":0,"completion":""}',
      /^c\.jsonl:1: field "benchmark" must be one of aime24, math500, amc23, minerva, olympiadbench \(got "gsm9k"\)$/,
    ],
    ['{"benchmark":"minerva_math","index":0,"completion":""}', /field "benchmark" must be one of/],
    [
      '{"benchmark":"aime24","index":-1,"completion":""}',
      /^c\.jsonl:1: field "index" must be a row number ≥ 0 \(got -1\)$/,
    ],
    ['{"benchmark":"aime24","index":"3","completion":""}', /field "index" must be a row number ≥ 0 \(got "3"\)/],
    ['{"benchmark":"aime24","index":1}', /^c\.jsonl:1: field "completion" must be a string \(got nothing\)$/],
    [
      '{"benchmark":"aime24","index":1,"completion":"a","sample":1.5}',
      /field "sample" must be an integer ≥ 0 when given \(got 1\.5\)/,
    ],
    ['\n\n', /^c\.jsonl: no completions \(the file is empty\)$/],
  ];
  for (const [text, re] of bad) {
    test(`rejects ${JSON.stringify(text).slice(0, 50)}`, () => {
      assert.throws(
        () => parseCompletions(text, 'c.jsonl'),
        (e: unknown) => e instanceof DataError && re.test(e.message) && !e.message.includes('\n'),
      );
    });
  }
  test('a missing file names it and the flag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-compl-'));
    try {
      assert.throws(
        () => readCompletionsFile(join(dir, 'none.jsonl')),
        /none\.jsonl: cannot read completions \(ENOENT\); pass an existing JSONL file to --completions/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
