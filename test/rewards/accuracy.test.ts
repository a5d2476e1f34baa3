import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracyReward, NumericVerifier, type AnswerVerifier } from '../../src/rewards/accuracy.ts';
import { RewardError } from '../../src/errors.ts';
import { input } from './helpers.ts';

test('NumericVerifier: last \\boxed{} else last number, numeric compare, string fallback', async () => {
  const v = new NumericVerifier();
  const eq = async (gold: string, pred: string) => (await v.verify(gold, pred)).equal;
  assert.equal(await eq('0.5', 'so the answer is \\boxed{\\frac{1}{2}}'), true);
  assert.equal(await eq('\\boxed{12}', 'we get 3 then 12.'), true);
  assert.equal(await eq('12', 'we get 12 then 3'), false);
  assert.equal(await eq('1,000', '\\boxed{1000}'), true);
  assert.equal(await eq('x^2+1', '\\boxed{x^2 + 1}'), true);
  assert.equal(await eq('x^2+1', '\\boxed{x^2+2}'), false);
  assert.equal(await eq('5', 'no answer at all'), false);
  await v.close();
});

test('accuracy reward: 1/0 per completion, null for missing gold, numbers as gold', async () => {
  const fn = accuracyReward({ verifier: new NumericVerifier() });
  const out = await fn(
    input(['\\boxed{4}', '\\boxed{5}', 'it is 27', '\\boxed{1}', '\\boxed{1}'], { answer: ['4', '4', 27, null, ''] }),
  );
  assert.deepEqual(out, [1, 0, 1, null, null]);
});

test('accuracy reward uses the injected verifier; a verifier error scores 0', async () => {
  const calls: [string, string][] = [];
  const fake: AnswerVerifier = {
    async verify(gold, pred) {
      calls.push([gold, pred]);
      return pred === 'timeout' ? { equal: true, error: 'verifier timed out' } : { equal: pred.includes(gold) };
    },
  };
  const fn = accuracyReward({ verifier: fake, answerField: 'solution' });
  assert.deepEqual(await fn(input(['has abc', 'nope', 'timeout'], { solution: ['abc', 'abc', 'abc'] })), [1, 0, 0]);
  assert.deepEqual(calls, [
    ['abc', 'has abc'],
    ['abc', 'nope'],
    ['abc', 'timeout'],
  ]);
});

test('accuracy reward: missing or misaligned answer column is a RewardError', async () => {
  const fn = accuracyReward({ verifier: new NumericVerifier() });
  await assert.rejects(async () => fn(input(['a'])), RewardError);
  await assert.rejects(
    async () => fn(input(['a', 'b'], { answer: ['1'] })),
    /'answer' has 1 entries for 2 completions/,
  );
});
