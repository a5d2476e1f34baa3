/**
 * @module rewards/math-verify/verify
 * `verify(gold, prediction)`: extraction → normalisation → structure → equivalence, with
 * Math-Verify's semantics (huggingface/Math-Verify `verify(parse(gold), parse(pred))`). This
 * runs in-process and synchronously: use it only on trusted input. Model output goes through
 * `VerifierPool` (pool.ts), which runs this same function in worker threads with a time limit.
 */
import { DEFAULT_PRIORITY, extractAnswer, extractGold } from './extract.ts';
import type { ExtractionKind } from './extract.ts';
import { normalizeAnswer } from './normalize.ts';
import { parse, MAX_ANSWER_CHARS } from './structure.ts';
import { nodesEqual } from './compare.ts';

export interface VerifyOptions {
  /** Extraction order for the prediction (default: boxed, <answer>, "final answer is", whole, last LaTeX, last number). */
  priority?: readonly ExtractionKind[];
  /** Treat the prediction as an already extracted answer (no extraction step). */
  predIsAnswer?: boolean;
}

/** Hard cap on the raw input size: a megabyte of model output is rejected, not scanned by every regex. */
export const MAX_INPUT_CHARS = 200_000;

/** What `verify` decided and why (the extracted, normalised answers help debugging rewards). */
export interface VerifyDetail {
  equal: boolean;
  goldAnswer: string | null;
  predAnswer: string | null;
}

/** Like `verify`, also returning the normalised answers that were compared. Throws on hostile input. */
export function verifyDetail(gold: string, prediction: string, opts: VerifyOptions = {}): VerifyDetail {
  if (gold.length > MAX_INPUT_CHARS || prediction.length > MAX_INPUT_CHARS) {
    throw new RangeError(`input longer than ${MAX_INPUT_CHARS} characters (gold ${gold.length}, prediction ${prediction.length})`);
  }
  const g = normalizeAnswer(extractGold(gold));
  const raw = opts.predIsAnswer ? prediction : extractAnswer(prediction, opts.priority ?? DEFAULT_PRIORITY);
  if (raw === null || g === '') return { equal: false, goldAnswer: g, predAnswer: null };
  const p = normalizeAnswer(raw);
  if (p === '' || p.length > MAX_ANSWER_CHARS) return { equal: false, goldAnswer: g, predAnswer: p };
  return { equal: nodesEqual(parse(g), parse(p)), goldAnswer: g, predAnswer: p };
}

/**
 * Whether `prediction` (a whole model answer or a bare answer) states the same mathematical
 * answer as `gold`. Synchronous and in-process: only for trusted input (it may throw on hostile
 * input, and has no time limit).
 */
export function verify(gold: string, prediction: string, opts: VerifyOptions = {}): boolean {
  return verifyDetail(gold, prediction, opts).equal;
}
