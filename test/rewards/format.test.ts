import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileFormatPattern,
  countNonOverlapping,
  formatReward,
  OPEN_R1_FORMAT_PATTERN,
} from '../../src/rewards/format.ts';
import { ConfigError } from '../../src/errors.ts';
import { input } from './helpers.ts';

// Expected values are what the released Python gives: open-rs `format_reward` is
// `1.0 if text.count("\n</think>\n") == 1 else 0.0`; open-r1's is
// `re.match(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", text, re.DOTALL | re.MULTILINE)`.

test('default = open-rs format_reward: exactly one "\\n</think>\\n" (Python str.count)', async () => {
  const fn = formatReward();
  const cases: Array<[string, number]> = [
    // an R1-distill completion: the prompt already ends with "<think>\n", no <answer> tags needed
    ['Let me think.\n</think>\n\nThe answer is \\boxed{4}.', 1],
    ['<think>\nx\n</think>\n<answer>\ny\n</answer>', 1], // open-r1's shape passes too
    ['Sure.\n<think>\nx\n</think>\nanything at all', 1], // not anchored anywhere
    ['x\n</think>\n', 1], // nothing needed after the tag but its newline
    ['x\n</think>', 0], // the closing newline is part of the counted string
    ['x</think>\n4', 0], // so is the opening one
    ['<think>x</think><answer>y</answer>', 0],
    ['a\n</think>\nb\n</think>\nc', 0], // two occurrences
    ['a\n</think>\n</think>\nc', 1], // overlapping: str.count counts non-overlapping ones, so 1
    ['no tags, \\boxed{4}', 0],
    ['', 0],
  ];
  assert.deepEqual(
    await fn(input(cases.map((c) => c[0]))),
    cases.map((c) => c[1]),
  );
});

test('countNonOverlapping matches Python str.count', () => {
  assert.equal(countNonOverlapping('aaaa', 'aa'), 2);
  assert.equal(countNonOverlapping('aaa', 'aa'), 1);
  assert.equal(countNonOverlapping('a\n</think>\n</think>\n', '\n</think>\n'), 1);
  assert.equal(countNonOverlapping('', 'x'), 0);
});

test('format_pattern = open-r1 format_reward (re.match with DOTALL | MULTILINE)', async () => {
  const fn = formatReward({ pattern: OPEN_R1_FORMAT_PATTERN });
  const good = '<think>\nstep 1\nstep 2\n</think>\n<answer>\n42\n</answer>';
  const cases: Array<[string, number]> = [
    [good, 1],
    ['<think>\nx\n</think>\n<answer>\ny\n</answer>\n', 1], // MULTILINE: $ before a trailing newline
    ['<think>\nx\n</think>\n<answer>\ny\n</answer>\nmore text', 1], // ...and before any later newline
    ['<think>\nx\n</think>\n<answer>\ny\n</answer> more text', 0],
    ['Sure.\n<think>\nx\n</think>\n<answer>\ny\n</answer>', 0], // re.match: must start at index 0
    ['<think>x</think><answer>y</answer>', 0], // newlines are required
    ['<think>\nx\n</think>\n42', 0], // no answer tags
    ['Let me think.\n</think>\n\\boxed{4}', 0], // the open-rs default would give 1
    ['', 0],
  ];
  assert.deepEqual(
    await fn(input(cases.map((c) => c[0]))),
    cases.map((c) => c[1]),
  );
  // The same RegExp object is reused across calls: lastIndex must not leak between completions.
  assert.deepEqual(await fn(input([good, good, good])), [1, 1, 1]);
});

test('configurable pattern; invalid pattern is a ConfigError', async () => {
  const fn = formatReward({ pattern: '^<think>.*?</think>\\s*\\\\boxed\\{.+\\}\\s*$' });
  assert.deepEqual(await fn(input(['<think>hm\nok</think> \\boxed{3}', '\\boxed{3}'])), [1, 0]);
  assert.throws(() => compileFormatPattern('(unclosed'), ConfigError);
  assert.throws(() => compileFormatPattern('(unclosed'), /format_pattern: not a valid regular expression/);
});
