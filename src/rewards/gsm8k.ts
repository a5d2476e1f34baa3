/**
 * @module rewards/gsm8k
 * `gsm8k`: 1 when the completion's final number equals the gold number, else 0; null without a
 * gold answer. The completion's final answer is whichever comes LAST of a `####` marker (GSM8K's
 * own format; the first number after it) and a `\boxed{…}` (its number); a completion with
 * neither scores 0 (no "last number anywhere" guessing). The gold may be the raw GSM8K solution
 * (with `#### 72`) or an already-extracted "72"; commas are stripped from both.
 */
import { extractHashAnswer, firstNumber, lastBoxed, numbersEqual, parseNumber } from '../data/answers.ts';
import { goldColumn } from './accuracy.ts';
import type { RewardFn } from './index.ts';

/** The number a completion commits to, or null. */
export function gsm8kPrediction(text: string): number | null {
  const hashAt = text.lastIndexOf('####');
  const boxAt = Math.max(text.lastIndexOf('\\boxed'), text.lastIndexOf('\\fbox'));
  if (hashAt < 0 && boxAt < 0) return null;
  const segment = hashAt > boxAt ? extractHashAnswer(text) : lastBoxed(text);
  if (segment === null) return null;
  const direct = parseNumber(segment);
  if (direct !== null) return direct;
  const first = firstNumber(segment); // "$18 dollars", "72 eggs"
  return first === null ? null : Number(first);
}

/** The gold number, or null when it has none. */
export function gsm8kGold(gold: string): number | null {
  const s = gold.includes('####') ? extractHashAnswer(gold) : gold;
  return s === null ? null : parseNumber(s);
}

export function gsm8kReward(opts: { answerField?: string } = {}): RewardFn {
  const field = opts.answerField ?? 'answer';
  return (input) => {
    const golds = goldColumn(input, field, 'gsm8k');
    return input.completions.map((c, i) => {
      const g = golds[i];
      if (g === null || g === undefined) return null;
      const gold = gsm8kGold(String(g));
      if (gold === null) return null;
      const pred = gsm8kPrediction(c);
      return pred !== null && numbersEqual(pred, gold) ? 1 : 0;
    });
  };
}
