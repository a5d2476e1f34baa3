import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PromptSampler } from '../../src/data/sampler.ts';
import { CheckpointError, DataError } from '../../src/errors.ts';

const rows = Array.from({ length: 10 }, (_, i) => ({ prompt: `p${i}`, answer: String(i), fields: {} }));

test('each epoch visits every row once; epochs are reshuffled; same seed same order', () => {
  const s = new PromptSampler(rows, 3);
  const e0 = s.next(10).map((r) => r.prompt);
  assert.equal(s.epoch, 0);
  const e1 = s.next(10).map((r) => r.prompt);
  assert.equal(s.epoch, 1);
  assert.deepEqual([...e0].sort(), rows.map((r) => r.prompt).sort());
  assert.deepEqual([...e1].sort(), rows.map((r) => r.prompt).sort());
  assert.notDeepEqual(e0, e1);
  const again = new PromptSampler(rows, 3).next(20).map((r) => r.prompt);
  assert.deepEqual(again, [...e0, ...e1]);
  assert.notDeepEqual(
    new PromptSampler(rows, 4).next(10).map((r) => r.prompt),
    e0,
  );
});

test('state/restore continues the exact order, across an epoch boundary', () => {
  const a = new PromptSampler(rows, 11);
  a.next(7);
  const st = JSON.parse(JSON.stringify(a.state()));
  const expected = a.next(25).map((r) => r.prompt);
  const b = PromptSampler.restore(rows, st);
  assert.deepEqual(
    b.next(25).map((r) => r.prompt),
    expected,
  );
});

test('restore refuses a different dataset; empty dataset is a DataError', () => {
  const st = new PromptSampler(rows, 1).state();
  assert.throws(() => PromptSampler.restore(rows.slice(1), st), CheckpointError);
  const changed = rows.map((r, i) => (i === 3 ? { ...r, prompt: 'other' } : r));
  assert.throws(() => PromptSampler.restore(changed, st), /dataset changed/);
  assert.throws(() => PromptSampler.restore(rows, { ...st, position: 99 }), /out of range/);
  assert.throws(() => new PromptSampler([], 1), DataError);
});
