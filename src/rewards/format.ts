/**
 * @module rewards/format
 * `format`: 1 when the completion has the reasoning format, else 0.
 *
 * Default (`format_pattern: null`): open-rs's `format_reward`, the format reward of the GPG paper's
 * distilled-1.5B recipe (open-rs's `src/open_r1/rewards.py`, kept unchanged in the GPG release's
 * `open-rs/src/open_r1/rewards.py`; reward_funcs [format, cosine] in its `open-rs/recipes/gpg.yaml`):
 *
 *     # We only count </think> tag, because <think> tag is available in system prompt
 *     1.0 if text.count("\n</think>\n") == 1 else 0.0
 *
 * So the completion scores 1 when it holds exactly one "\n</think>\n" anywhere, counted as Python's
 * `str.count` counts (non-overlapping, left to right: "a\n</think>\n</think>\n" counts 1). Nothing
 * else is looked at: no `<think>` (R1-distill's chat template ends the prompt with "<think>\n", so a
 * completion starts inside the reasoning), no `<answer>` tags, no anchoring, nothing about what
 * follows the tag. open-rs's `tag_count_reward` (0.5 each for one "<think>\n" and one "\n</think>\n")
 * is a different reward and is not built in.
 *
 * This is not huggingface/open-r1's `format_reward` (an earlier version of this file said open-rs
 * used it): `re.match(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", text, re.DOTALL |
 * re.MULTILINE)`. That pattern is {@link OPEN_R1_FORMAT_PATTERN}; a recipe gets open-r1's check with
 * `format_pattern` set to it.
 *
 * With `format_pattern` set, the reward is 1 when the pattern matches at the start of the completion,
 * with Python's `re.match(pattern, text, re.DOTALL | re.MULTILINE)` semantics: flags `s` and `m`, and
 * the match must start at index 0, which the sticky flag `y` enforces (with `m` alone, JS `^` could
 * match at any line start). As in Python, `$` under MULTILINE also matches before any newline, so
 * open-r1's pattern accepts text after "</answer>\n".
 */
import { ConfigError } from '../errors.ts';
import type { RewardFn } from './index.ts';

/** huggingface/open-r1's `format_reward` pattern (used with re.match, DOTALL | MULTILINE). */
export const OPEN_R1_FORMAT_PATTERN = '^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$';

/** The string open-rs's `format_reward` counts. */
export const OPEN_RS_THINK_CLOSE = '\n</think>\n';

/** Python's `str.count`: non-overlapping occurrences of `needle` (non-empty), scanning left to right. */
export function countNonOverlapping(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** open-rs's format check: exactly one "\n</think>\n" in the completion. */
export function openRsFormat(text: string): number {
  return countNonOverlapping(text, OPEN_RS_THINK_CLOSE) === 1 ? 1 : 0;
}

/** Compiles a recipe's format pattern (JS regex syntax, which covers open-r1's patterns). */
export function compileFormatPattern(pattern: string): RegExp {
  try {
    return new RegExp(pattern, 'smy');
  } catch (e) {
    throw new ConfigError(
      `format_pattern: not a valid regular expression ${JSON.stringify(pattern)} (${(e as Error).message})`,
    );
  }
}

export function formatReward(opts: { pattern?: string } = {}): RewardFn {
  if (opts.pattern === undefined) return (input) => input.completions.map(openRsFormat);
  const re = compileFormatPattern(opts.pattern);
  return (input) =>
    input.completions.map((c) => {
      re.lastIndex = 0;
      return re.test(c) ? 1 : 0;
    });
}
