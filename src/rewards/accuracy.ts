/**
 * @module rewards/accuracy
 * `accuracy`: 1 when the completion's final answer equals the gold answer, else 0; null for a
 * row without a gold answer (not applicable). Equality is decided by an injected
 * {@link AnswerVerifier}: the maths verifier pool (src/rewards/math-verify, worker threads with
 * timeouts) in training, or {@link NumericVerifier}, a numeric exact-match stand-in with the same
 * interface (last `\boxed{}` or else last number of the completion vs the gold, compared as numbers).
 */
import { RewardError } from '../errors.ts';
import { lastBoxed, lastNumber, numbersEqual, parseNumber } from '../data/answers.ts';
import type { RewardCallContext, RewardFn, RewardInput } from './index.ts';

/**
 * The verifier contract (that of math-verify's `VerifierPool`): `gold` is the dataset's gold answer,
 * `pred` the whole completion (the verifier extracts the answer, as math_verify.parse does).
 * `error` (e.g. a timeout) means "could not decide"; the reward then scores 0.
 */
export interface AnswerVerifier {
  verify(gold: string, pred: string): Promise<{ equal: boolean; error?: string; timedOut?: boolean }>;
  close?(): Promise<void>;
}

/** Strip the notation that does not change a simple answer: spaces, `$`, `\left`/`\right`, a trailing period. */
function normalizeAnswer(s: string): string {
  return s.replace(/\\left|\\right|\\!|\\,|\$|\s+/g, '').replace(/\.$/, '');
}

/**
 * Numeric exact-match stand-in for the maths verifier. Prediction: the last `\boxed{}` of the
 * completion, else its last number. Gold: its last `\boxed{}` if it has one, else the whole text.
 * Both numeric (see parseNumber) → equal within 1e-9 relative; otherwise equal as normalized strings.
 */
export class NumericVerifier implements AnswerVerifier {
  async verify(gold: string, pred: string): Promise<{ equal: boolean; error?: string }> {
    return { equal: NumericVerifier.equalSync(gold, pred) };
  }

  static equalSync(gold: string, pred: string): boolean {
    const g = lastBoxed(gold) ?? gold.trim();
    const p = lastBoxed(pred) ?? lastNumber(pred);
    if (p === null || g === '') return false;
    const gn = parseNumber(g);
    const pn = parseNumber(p);
    if (gn !== null && pn !== null) return numbersEqual(gn, pn);
    const gs = normalizeAnswer(g);
    return gs !== '' && gs === normalizeAnswer(p);
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}

/** The gold answers column of a reward input, checked: one entry per completion. */
export function goldColumn(input: RewardInput, answerField: string, reward: string): unknown[] {
  const col = input[answerField];
  if (!Array.isArray(col)) {
    throw new RewardError(
      `${reward}: the dataset rows have no '${answerField}' field; set dataset.answer_field (this reward needs gold answers)`,
    );
  }
  if (col.length !== input.completions.length) {
    throw new RewardError(
      `${reward}: '${answerField}' has ${col.length} entries for ${input.completions.length} completions`,
    );
  }
  return col;
}

/**
 * Per completion: true/false from the verifier, null where the gold answer is missing (null,
 * undefined or empty). A verifier error counts as not equal. All comparisons run concurrently
 * (the pool bounds the parallelism).
 */
export async function verifyCompletions(
  verifier: AnswerVerifier,
  golds: unknown[],
  completions: string[],
  ctx: RewardCallContext = {},
): Promise<(boolean | null)[]> {
  // At the call's time limit (ctx.signal) the comparisons still running count as not equal, one
  // completion each: a hostile completion never zeroes the others of its call.
  const { signal } = ctx;
  const unfinished = { equal: false, error: 'unfinished at the reward time limit', timedOut: true };
  const aborted = signal
    ? new Promise<typeof unfinished>((res) => {
        if (signal.aborted) res(unfinished);
        else signal.addEventListener('abort', () => res(unfinished), { once: true });
      })
    : null;
  let timedOut = 0;
  let cut = 0;
  const out = await Promise.all(
    completions.map(async (c, i) => {
      const g = golds[i];
      if (g === null || g === undefined) return null;
      const gold = typeof g === 'string' ? g : String(g);
      if (gold.trim() === '') return null;
      const r: { equal: boolean; error?: string; timedOut?: boolean } = await (aborted
        ? Promise.race([verifier.verify(gold, c), aborted])
        : verifier.verify(gold, c));
      if (r === unfinished) cut++;
      else if (r.timedOut) timedOut++;
      return r.error === undefined && r.equal;
    }),
  );
  if (timedOut) ctx.note?.(`${timedOut} of ${completions.length} comparisons timed out and scored 0`);
  if (cut) ctx.note?.(`${cut} of ${completions.length} comparisons unfinished at the time limit scored 0`);
  return out;
}

export interface AccuracyOptions {
  verifier: AnswerVerifier;
  /** row field holding the gold answer; default 'answer' */
  answerField?: string;
}

/** The `accuracy` reward: 1 correct, 0 wrong, null without a gold answer. */
export function accuracyReward(opts: AccuracyOptions): RewardFn {
  const field = opts.answerField ?? 'answer';
  return async (input, ctx) => {
    const ok = await verifyCompletions(opts.verifier, goldColumn(input, field, 'accuracy'), input.completions, ctx);
    return ok.map((v) => (v === null ? null : v ? 1 : 0));
  };
}
