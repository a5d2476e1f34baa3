import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractGold, loadDataset, MAX_LINE_BYTES } from '../../src/data/dataset.ts';
import { DataError } from '../../src/errors.ts';
import { writeTinyParquet } from './tiny-parquet.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpg-data-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string | Buffer): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('shared datasets', () => {
  test('GSM8K train: 7,473 rows, every #### answer parses', async () => {
    const d = await loadDataset(
      { path: 'gsm8k/train.jsonl', promptField: 'question', answerField: 'answer', answerExtraction: 'gsm8k' },
      { baseDir: DATA },
    );
    assert.equal(d.rows.length, 7473);
    assert.deepEqual(d.dropped, { unparsableAnswer: 0, missingPrompt: 0 });
    assert.equal(d.source, join(DATA, 'gsm8k/train.jsonl'));
    const first = d.rows[0]!;
    assert.match(first.prompt, /^Natalia sold clips/);
    assert.equal(first.answer, '72');
    assert.match(String(first.fields['answer']), /#### 72$/); // the raw row stays available
  });

  test('MATH deepscaler: JSON array with an answer field; limit', async () => {
    const d = await loadDataset(
      { path: 'math_train_deepscaler/math.json', promptField: 'problem', answerField: 'answer' },
      { baseDir: DATA },
    );
    assert.equal(d.rows.length + d.dropped.unparsableAnswer + d.dropped.missingPrompt, 7474);
    assert.equal(d.rows[0]!.answer, '0');
    assert.equal(d.rows[0]!.fields['type'], 'Algebra');
    const l = await loadDataset(
      { path: 'math_train_deepscaler/math.json', promptField: 'problem', answerField: 'answer', limit: 5 },
      { baseDir: DATA },
    );
    assert.equal(l.rows.length, 5);
    assert.deepEqual(
      l.rows.map((r) => r.prompt),
      d.rows.slice(0, 5).map((r) => r.prompt),
    );
  });

  test('MATH train directory layout: one object per file, gold = last \\boxed{} of the solution', async () => {
    const d = await loadDataset(
      { path: 'math_train/train', promptField: 'problem', answerField: 'solution', answerExtraction: 'boxed' },
      { baseDir: DATA },
    );
    assert.equal(d.rows.length + d.dropped.unparsableAnswer, 7500);
    assert.ok(d.dropped.unparsableAnswer < 10, `dropped ${d.dropped.unparsableAnswer}`);
    for (const r of d.rows.slice(0, 50)) assert.ok(r.answer && !r.answer.includes('\\boxed'));
  });

  test('answerCheck hook drops golds the verifier cannot parse', async () => {
    const d = await loadDataset(
      { path: 'math_train_deepscaler/math.json', promptField: 'problem', answerField: 'answer', limit: 200 },
      { baseDir: DATA, answerCheck: (a) => /^-?\d+$/.test(a) },
    );
    assert.equal(d.rows.length, 200);
    assert.ok(d.dropped.unparsableAnswer > 0);
    assert.ok(d.rows.every((r) => /^-?\d+$/.test(r.answer!)));
  });
});

describe('formats', () => {
  test('JSONL: blank lines skipped, empty prompt dropped, unparsable gold dropped and counted', async () => {
    const p = write(
      'a.jsonl',
      [
        '{"q": "1+1?", "a": "#### 2"}',
        '',
        '{"q": "", "a": "#### 3"}',
        '{"q": "x?", "a": "no marker"}',
        '{"q": null, "a": "#### 4"}',
        '{"q": "2+2?", "a": "#### 4", "extra": [1]}',
      ].join('\n'),
    );
    const d = await loadDataset({ path: p, promptField: 'q', answerField: 'a', answerExtraction: 'gsm8k' });
    assert.deepEqual(
      d.rows.map((r) => [r.prompt, r.answer]),
      [
        ['1+1?', '2'],
        ['2+2?', '4'],
      ],
    );
    assert.deepEqual(d.dropped, { unparsableAnswer: 1, missingPrompt: 2 });
    assert.deepEqual(d.rows[1]!.fields['extra'], [1]);
  });

  test('no answer field → answer null, nothing dropped; .json holding JSON Lines is read as JSONL', async () => {
    const p = write('lines.json', '{"q": "a"}\n{"q": "b"}\n');
    const d = await loadDataset({ path: p, promptField: 'q' });
    assert.deepEqual(
      d.rows.map((r) => r.answer),
      [null, null],
    );
  });

  test('Parquet (hand-assembled file): strings, int64 → number, double', async () => {
    const p = write(
      't.parquet',
      writeTinyParquet([
        { name: 'problem', type: 'string', values: ['What is 2+3?', 'Größe?', ''] },
        { name: 'answer', type: 'int64', values: [5n, 7n, 1n] },
        { name: 'difficulty', type: 'double', values: [1.5, 2, 3] },
      ]),
    );
    const d = await loadDataset({ path: p, promptField: 'problem', answerField: 'answer' });
    assert.deepEqual(
      d.rows.map((r) => [r.prompt, r.answer, r.fields['answer'], r.fields['difficulty']]),
      [
        ['What is 2+3?', '5', 5, 1.5],
        ['Größe?', '7', 7, 2],
      ],
    );
    assert.equal(d.dropped.missingPrompt, 1);
  });

  test('extractGold: numbers, lists, boxed, gsm8k', () => {
    assert.equal(extractGold(27.0, 'none'), '27');
    assert.equal(extractGold(['$3$'], 'none'), '$3$');
    assert.equal(extractGold(['1', '2'], 'none'), '1, 2');
    assert.equal(extractGold('so \\boxed{\\frac{1}{2}}.', 'boxed'), '\\frac{1}{2}');
    assert.equal(extractGold('no box', 'boxed'), null);
    assert.equal(extractGold('#### 1,000', 'gsm8k'), '1000');
    assert.equal(extractGold('#### many', 'gsm8k'), null);
    assert.equal(extractGold({}, 'none'), null);
    assert.equal(extractGold('  ', 'none'), null);
  });
});

describe('errors: one line, naming file, line and field', () => {
  test('a JSONL line over MAX_LINE_BYTES is refused with file and line, read streaming (issue 18 §4)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'gpg-longline-'));
    try {
      const f = join(d, 'big.jsonl');
      const huge = JSON.stringify({ prompt: 'x'.repeat(MAX_LINE_BYTES + 10), answer: '1' });
      writeFileSync(f, `{"prompt": "1+1", "answer": "2"}\n${huge}\n`);
      await assert.rejects(
        loadDataset({ path: f, promptField: 'prompt', answerField: 'answer' }),
        (e: unknown) =>
          e instanceof DataError &&
          e.message.startsWith(`${f}:2: line longer than 16 MiB`) &&
          !e.message.includes('\n'),
      );
      // limit stops reading before the long line; CRLF, a BOM and a last line without newline are fine
      const ok = await loadDataset({ path: f, promptField: 'prompt', answerField: 'answer', limit: 1 });
      assert.deepEqual(
        ok.rows.map((r) => r.prompt),
        ['1+1'],
      );
      const g = join(d, 'crlf.jsonl');
      writeFileSync(g, '\uFEFF{"prompt": "a", "answer": "1"}\r\n\r\n{"prompt": "b", "answer": "2"}');
      const r = await loadDataset({ path: g, promptField: 'prompt', answerField: 'answer' });
      assert.deepEqual(
        r.rows.map((x) => x.prompt),
        ['a', 'b'],
      );
      await assert.rejects(
        loadDataset({ path: g, promptField: 'prompt' }, { maxLineBytes: 8 }),
        (e: unknown) => e instanceof DataError && e.message.startsWith(`${g}:1: line longer than`),
      );
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  const oneLine =
    (re: RegExp) =>
    (e: unknown): boolean => {
      assert.ok(e instanceof DataError, String(e));
      assert.ok(!e.message.includes('\n'), e.message);
      assert.match(e.message, re);
      return true;
    };

  test('missing file', async () => {
    await assert.rejects(
      loadDataset({ path: 'nope.jsonl', promptField: 'q' }, { baseDir: dir }),
      oneLine(/nope\.jsonl: not found \(resolved to .*nope\.jsonl\)/),
    );
  });
  test('bad JSON line names file:line', async () => {
    const p = write('bad.jsonl', '{"q": "a"}\n{"q": oops}\n');
    await assert.rejects(loadDataset({ path: p, promptField: 'q' }), oneLine(/bad\.jsonl:2: invalid JSON/));
  });
  test('missing prompt field names file:line, field and the fields present', async () => {
    const p = write('mf.jsonl', '{"q": "a"}\n\n{"question": "b"}\n');
    await assert.rejects(
      loadDataset({ path: p, promptField: 'q' }),
      oneLine(/mf\.jsonl:3: missing prompt field 'q' \(row has: question\)/),
    );
  });
  test('missing answer field in a JSON array names the row index', async () => {
    const p = write('arr.json', '[{"q": "a", "ans": "1"}, {"q": "b"}]');
    await assert.rejects(
      loadDataset({ path: p, promptField: 'q', answerField: 'ans' }),
      oneLine(/arr\.json: row 1: missing answer field 'ans'/),
    );
  });
  test('non-string prompt, non-object row, non-array JSON, unknown extension, wrong format, bad parquet, bad limit', async () => {
    const p1 = write('np.jsonl', '{"q": 5}\n');
    await assert.rejects(
      loadDataset({ path: p1, promptField: 'q' }),
      oneLine(/np\.jsonl:1: prompt field 'q' must be a string \(got a number\)/),
    );
    const p2 = write('arr.jsonl', '[1, 2]\n');
    await assert.rejects(
      loadDataset({ path: p2, promptField: 'q' }),
      oneLine(/arr\.jsonl:1: expected a JSON object per row \(got an array\)/),
    );
    const p3 = write('obj.json', '{"rows": []}');
    await assert.rejects(
      loadDataset({ path: p3, promptField: 'q', format: 'json' }),
      oneLine(/obj\.json: expected a JSON array/),
    );
    const p4 = write('x.txt', 'hi');
    await assert.rejects(
      loadDataset({ path: p4, promptField: 'q' }),
      oneLine(/x\.txt: cannot tell the format from extension '\.txt'/),
    );
    await assert.rejects(
      loadDataset({ path: dir, promptField: 'q', format: 'jsonl' }),
      oneLine(/format 'jsonl' but the path is a directory/),
    );
    const p5 = write('junk.parquet', 'PAR1 this is not parquet');
    await assert.rejects(
      loadDataset({ path: p5, promptField: 'q' }),
      oneLine(/junk\.parquet: not a readable Parquet file/),
    );
    await assert.rejects(
      loadDataset({ path: p1, promptField: 'q', limit: 0 }),
      oneLine(/limit must be a positive integer/),
    );
  });
  test('directory: bad JSON file and empty directory', async () => {
    const d = join(dir, 'tree');
    mkdirSync(join(d, 'algebra'), { recursive: true });
    await assert.rejects(loadDataset({ path: d, promptField: 'q' }), oneLine(/holds no \.json files/));
    writeFileSync(join(d, 'algebra', '2.json'), '{"q": "two"}');
    writeFileSync(join(d, 'algebra', '10.json'), '{"q": "ten"}');
    const ok = await loadDataset({ path: d, promptField: 'q' });
    assert.deepEqual(
      ok.rows.map((r) => r.prompt),
      ['two', 'ten'],
    );
    writeFileSync(join(d, 'algebra', '3.json'), '{"q": ');
    await assert.rejects(loadDataset({ path: d, promptField: 'q' }), oneLine(/3\.json: invalid JSON/));
  });
});
