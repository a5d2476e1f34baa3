/**
 * @module rewards/format
 * `format`: 1 when the completion has the reasoning format, else 0. The default pattern is
 * open-r1's `format_reward` (used by open-rs, the GPG paper's 1.5B recipe):
 * `^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$`, applied with Python's
 * `re.match(pattern, text, re.DOTALL | re.MULTILINE)`. We reproduce those semantics: flags `s`
 * and `m`, and the match must start at index 0 (re.match), which the sticky flag `y` enforces
 * (with `m` alone, JS `^` could match at any line start).
 */
import { ConfigError } from '../errors.ts';
import type { RewardFn } from './index.ts';

export const DEFAULT_FORMAT_PATTERN = '^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$';

/** Compiles a recipe's format pattern (JS regex syntax, which covers open-r1's patterns). */
export function compileFormatPattern(pattern: string = DEFAULT_FORMAT_PATTERN): RegExp {
  try {
    return new RegExp(pattern, 'smy');
  } catch (e) {
    throw new ConfigError(
      `format_pattern: not a valid regular expression ${JSON.stringify(pattern)} (${(e as Error).message})`,
    );
  }
}

export function formatReward(opts: { pattern?: string } = {}): RewardFn {
  const re = compileFormatPattern(opts.pattern);
  return (input) =>
    input.completions.map((c) => {
      re.lastIndex = 0;
      return re.test(c) ? 1 : 0;
    });
}
