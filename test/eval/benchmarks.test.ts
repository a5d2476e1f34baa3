import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCHMARK_IDS, defaultDataDir, loadBenchmark, parseBenchmarkList } from '../../src/eval/benchmarks.ts';
import { DataError, UsageError } from '../../src/errors.ts';

describe('benchmarks', () => {
  test('parseBenchmarkList keeps the paper order and rejects unknown ids', () => {
    assert.deepEqual(parseBenchmarkList('olympiadbench, aime24,aime24'), ['aime24', 'olympiadbench']);
    assert.deepEqual(parseBenchmarkList(BENCHMARK_IDS.join(',')), [
      'aime24',
      'math500',
      'amc23',
      'minerva',
      'olympiadbench',
    ]);
    assert.throws(
      () => parseBenchmarkList('math500,gsm8k'),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message === '--benchmarks: unknown benchmark "gsm8k"; known: aime24, math500, amc23, minerva, olympiadbench',
    );
    assert.throws(() => parseBenchmarkList(' , '), /empty list/);
  });
  test('every set loads whole, from its own fields, with the paper sizes', () => {
    const sizes = { aime24: 30, math500: 500, amc23: 40, minerva: 272, olympiadbench: 675 };
    for (const id of BENCHMARK_IDS) {
      const rows = loadBenchmark(id);
      assert.equal(rows.length, sizes[id], id);
      rows.forEach((r, i) => assert.equal(r.index, i));
      assert.ok(
        rows.every((r) => r.problem.length > 10 && r.gold.length > 0),
        id,
      );
    }
    assert.equal(loadBenchmark('amc23')[0]!.gold, '27'); // 27.0, a JSON number
    const ob = loadBenchmark('olympiadbench', { limit: 1 });
    assert.equal(ob.length, 1);
    assert.match(ob[0]!.problem, /^Xenia and Sergey play the following game/); // field "question"
    assert.equal(ob[0]!.gold, '2'); // final_answer ["2"]
    assert.equal(loadBenchmark('minerva', { limit: 1 })[0]!.gold, '1.6'); // last \boxed{} of solution
    assert.equal(loadBenchmark('aime24', { limit: 1 })[0]!.gold, '204');
  });
  test('GPG_RL_DATA_DIR overrides the folder; a missing file or bad row names file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpg-data-'));
    const saved = process.env['GPG_RL_DATA_DIR'];
    try {
      process.env['GPG_RL_DATA_DIR'] = dir;
      assert.equal(defaultDataDir(), dir);
      assert.throws(
        () => loadBenchmark('aime24'),
        (e: unknown) =>
          e instanceof DataError &&
          e.message.startsWith(`${join(dir, 'aime24', 'test.jsonl')}: cannot read benchmark aime24 (ENOENT)`),
      );
      mkdirSync(join(dir, 'minerva_math'));
      writeFileSync(
        join(dir, 'minerva_math', 'test.jsonl'),
        '{"problem":"p","solution":"so \\\\boxed{3}"}\n{"problem":"q","solution":"no box"}\n',
      );
      assert.deepEqual(loadBenchmark('minerva', { limit: 1 }), [
        { benchmark: 'minerva', index: 0, problem: 'p', gold: '3' },
      ]);
      assert.throws(() => loadBenchmark('minerva'), /minerva_math[/\\]test\.jsonl:2: no gold answer/);
      mkdirSync(join(dir, 'olympiadbench'));
      writeFileSync(join(dir, 'olympiadbench', 'test.jsonl'), '{"problem":"wrong field","final_answer":["1"]}\n');
      assert.throws(() => loadBenchmark('olympiadbench'), /test\.jsonl:1: field "question" must be a non-empty string/);
    } finally {
      if (saved === undefined) delete process.env['GPG_RL_DATA_DIR'];
      else process.env['GPG_RL_DATA_DIR'] = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
