import { test } from 'node:test';
import assert from 'node:assert/strict';
import { charLength, COSINE_DEFAULTS, cosineReward, cosineScaled } from '../../src/rewards/cosine.ts';
import { NumericVerifier } from '../../src/rewards/accuracy.ts';
import { ConfigError } from '../../src/errors.ts';
import { assertClose, input } from './helpers.ts';

const verifier = new NumericVerifier();
const pad = (answer: string, len: number): string => answer + ' '.repeat(len - answer.length);

test('cosineScaled: open-r1 formula and defaults (correct 1.0→0.5, wrong 0.0→−0.5)', () => {
  assertClose(
    [0, 250, 500, 1000].map((l) => cosineScaled(l, true)),
    [1.0, 0.5 + 0.25 * (1 + Math.SQRT1_2), 0.75, 0.5],
  );
  assertClose(
    [0, 500, 1000].map((l) => cosineScaled(l, false)),
    [0.0, -0.25, -0.5],
  );
  // Past max_len: clamped by default; open-r1's unclamped cosine swings back (issue #312).
  assertClose(
    [cosineScaled(2000, true), cosineScaled(2000, true, { ...COSINE_DEFAULTS, clampLength: false })],
    [0.5, 1.0],
  );
  assertClose([cosineScaled(1500, false, { ...COSINE_DEFAULTS, clampLength: false })], [-0.25]);
});

test('cosine reward: character length (code points), correctness from the verifier, null without gold', async () => {
  const fn = cosineReward({ verifier });
  const out = await fn(
    input(
      [pad('\\boxed{7}', 500), pad('\\boxed{8}', 500), '\\boxed{7}' + '😀'.repeat(491), pad('7', 1000), 'anything'],
      { answer: ['7', '7', '7', '7', null] },
    ),
  );
  assert.equal(charLength('😀'), 1);
  assertClose(out, [0.75, -0.25, 0.75, 0.5, null]);
});

test('cosine reward: token length and custom parameters', async () => {
  const fn = cosineReward({
    verifier,
    lengthUnit: 'tokens',
    maxLen: 10,
    minValueCorrect: 0,
    maxValueCorrect: 2,
    minValueWrong: -1,
    maxValueWrong: -2,
  });
  const out = await fn(
    input(['\\boxed{1}', '\\boxed{1}', '\\boxed{2}'], { answer: ['1', '1', '1'] }, [
      [1, 2, 3, 4, 5],
      [],
      Array(10).fill(0),
    ]),
  );
  assertClose(out, [1.0, 2.0, -2.0]);
  assert.throws(() => cosineReward({ verifier, maxLen: 0 }), ConfigError);
  assert.throws(() => cosineReward({ verifier, lengthUnit: 'words' as never }), /cosine_length_unit/);
});

test('cosine reward needs the answer column', async () => {
  await assert.rejects(async () => cosineReward({ verifier })(input(['x'])), /dataset rows have no 'answer' field/);
});
