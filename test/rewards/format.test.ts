import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFormatPattern, formatReward } from '../../src/rewards/format.ts';
import { ConfigError } from '../../src/errors.ts';
import { input } from './helpers.ts';

test('default pattern = open-r1 format_reward (re.match with DOTALL | MULTILINE)', async () => {
  const fn = formatReward();
  const good = '<think>\nstep 1\nstep 2\n</think>\n<answer>\n42\n</answer>';
  const cases = [
    good,
    '<think>\nx\n</think>\n<answer>\ny\n</answer>\n', // MULTILINE: $ before a trailing newline
    'Sure.\n<think>\nx\n</think>\n<answer>\ny\n</answer>', // re.match: must start at index 0
    '<think>x</think><answer>y</answer>', // newlines are required
    '<think>\nx\n</think>\n42', // no answer tags
    '',
  ];
  assert.deepEqual(await fn(input(cases)), [1, 1, 0, 0, 0, 0]);
  // The same RegExp object is reused across calls: lastIndex must not leak between completions.
  assert.deepEqual(await fn(input([good, good, good])), [1, 1, 1]);
});

test('configurable pattern; invalid pattern is a ConfigError', async () => {
  const fn = formatReward({ pattern: '^<think>.*?</think>\\s*\\\\boxed\\{.+\\}\\s*$' });
  assert.deepEqual(await fn(input(['<think>hm\nok</think> \\boxed{3}', '\\boxed{3}'])), [1, 0]);
  assert.throws(() => compileFormatPattern('(unclosed'), ConfigError);
  assert.throws(() => compileFormatPattern('(unclosed'), /format_pattern: not a valid regular expression/);
});
