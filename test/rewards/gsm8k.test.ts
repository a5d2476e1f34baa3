import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gsm8kGold, gsm8kPrediction, gsm8kReward } from '../../src/rewards/gsm8k.ts';
import { input } from './helpers.ts';

test('gsm8kPrediction: the last of #### / \\boxed{}, its number; none → null', () => {
  assert.equal(gsm8kPrediction('48/2 = 24\n#### 72'), 72);
  assert.equal(gsm8kPrediction('#### 5 then \\boxed{1,234}'), 1234);
  assert.equal(gsm8kPrediction('\\boxed{5} then\n#### $18 dollars'), 18);
  assert.equal(gsm8kPrediction('\\boxed{\\frac{1}{2}}'), 0.5);
  assert.equal(gsm8kPrediction('the answer is 72'), null);
  assert.equal(gsm8kPrediction('#### none'), null);
});

test('gsm8kGold: raw solution or extracted number', () => {
  assert.equal(gsm8kGold('She has 2.\n#### 1,000'), 1000);
  assert.equal(gsm8kGold('72'), 72);
  assert.equal(gsm8kGold('seventy'), null);
});

test('gsm8k reward: exact numeric match, null without (parsable) gold', async () => {
  const fn = gsm8kReward();
  const out = await fn(
    input(['#### 72', 'so \\boxed{72.0}', '#### 71', 'I think 72', '#### 1000', 'x', 'x'], {
      answer: ['Natalia...\n#### 72', '72', '72', '72', '1,000', null, 'not a number'],
    }),
  );
  assert.deepEqual(out, [1, 1, 0, 0, 1, null, null]);
  const other = gsm8kReward({ answerField: 'gold' });
  assert.deepEqual(await other(input(['#### 3'], { gold: [3] })), [1]);
});
