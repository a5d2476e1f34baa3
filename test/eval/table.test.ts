import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable } from '../../src/eval/table.ts';

describe('formatTable', () => {
  test('paper layout: Average then the benchmarks in the paper order, percent with one decimal', () => {
    const t = formatTable({
      model: 'Qwen2.5-Math-7B-GPG',
      k: 1,
      benchmarks: {
        olympiadbench: { pass1: 0.4, passK: 0.4 },
        aime24: { pass1: 1 / 3, passK: 1 / 3 },
        math500: { pass1: 0.802, passK: 0.802 },
        amc23: { pass1: 0.625, passK: 0.625 },
        minerva: { pass1: 0.3456, passK: 0.3456 },
      },
      average: { pass1: 0.50112, passK: 0.50112 },
    });
    assert.equal(
      t,
      [
        '| Model | Average | AIME24 | MATH-500 | AMC23 | Minerva | OlympiadBench |',
        '| :--- | ---: | ---: | ---: | ---: | ---: | ---: |',
        '| Qwen2.5-Math-7B-GPG (pass@1) | 50.1 | 33.3 | 80.2 | 62.5 | 34.6 | 40.0 |',
      ].join('\n'),
    );
  });
  test('a subset of benchmarks, k > 1 adds a pass@k row; a | in the name is escaped', () => {
    const t = formatTable({
      model: 'a|b',
      k: 4,
      benchmarks: { minerva: { pass1: 0.25, passK: 0.5 }, math500: { pass1: 0.5, passK: 0.75 } },
      average: { pass1: 0.375, passK: 0.625 },
    });
    assert.deepEqual(t.split('\n'), [
      '| Model | Average | MATH-500 | Minerva |',
      '| :--- | ---: | ---: | ---: |',
      '| a\\|b (pass@1, avg of 4) | 37.5 | 50.0 | 25.0 |',
      '| a\\|b (pass@4) | 62.5 | 75.0 | 50.0 |',
    ]);
  });
  test('coverage: a (graded/total) row only when some benchmark was graded on fewer problems than it has', () => {
    const base = {
      model: 'm',
      k: 2,
      benchmarks: { aime24: { pass1: 0.5, passK: 1 }, amc23: { pass1: 0.25, passK: 0.5 } },
      average: { pass1: 0.375, passK: 0.75 },
    };
    const full = formatTable({
      ...base,
      coverage: { aime24: { graded: 30, total: 30 }, amc23: { graded: 40, total: 40 } },
    });
    assert.equal(full, formatTable(base));
    assert.equal(full.split('\n').length, 4);
    const part = formatTable({
      ...base,
      coverage: { aime24: { graded: 30, total: 30 }, amc23: { graded: 39, total: 40 } },
    });
    assert.deepEqual(part.split('\n').slice(2), [
      '| m (pass@1, avg of 2) | 37.5 | 50.0 | 25.0 |',
      '| m (pass@2) | 75.0 | 100.0 | 50.0 |',
      '| m (graded/total) | 69/70 | 30/30 | 39/40 |',
    ]);
  });
});
