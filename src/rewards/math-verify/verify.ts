/**
 * @module rewards/math-verify/verify
 * `verify(gold, prediction)`: extraction → normalisation → structure → equivalence, with
 * Math-Verify's semantics (huggingface/Math-Verify `verify(parse(gold), parse(pred))`). This
 * runs in-process and synchronously: use it only on trusted input. Model output goes through
 * `VerifierPool` (pool.ts), which runs this same function in worker threads with a time limit.
 *
 *   verify('\\frac12', 'so the answer is \\boxed{0.5}')                    // true
 *   verify('7', 'First, 3+4 = 7. Next we…')                                // true: unanchored fallbacks (default)
 *   verify('7', 'First, 3+4 = 7. Next we…', { extractWithoutAnchor: false }) // false: training rewards
 */
import {
  ANCHORED_PRIORITY,
  DEFAULT_PRIORITY,
  extractAnswerDetail,
  extractGoldDetail,
  stripMathDelims,
} from './extract.ts';
import type { ExtractionKind } from './extract.ts';
import { compactKey, normalizeAnswer } from './normalize.ts';
import { parse, MAX_ANSWER_CHARS } from './structure.ts';
import { nodesEqual } from './compare.ts';
import { DEFAULT_COMPARE } from './leaf.ts';
import type { CompareOptions } from './leaf.ts';

export interface VerifyOptions {
  /** Extraction order for the prediction; overrides `extractWithoutAnchor`. */
  priority?: readonly ExtractionKind[];
  /**
   * Math-Verify's `try_extract_without_anchor`: true (default) also takes the whole text when it
   * is an answer, the last LaTeX group and the last number; false takes only anchored answers
   * (`\boxed{}`, `<answer>`, "final answer is"), as the GPG/TRL accuracy reward does.
   */
  extractWithoutAnchor?: boolean;
  /** Treat the prediction as an already extracted answer (no extraction step). */
  predIsAnswer?: boolean;
  /** Math-Verify's `float_rounding`: decimal places a written decimal is compared to (default 6; significant digits below 1). */
  floatRounding?: number;
  /** Math-Verify's `allow_set_relation_comp`: accept a relation prediction for a set/interval gold (default false). */
  allowSetRelationComp?: boolean;
}

/** Hard cap on the raw input size: a megabyte of model output is rejected, not scanned by every regex. */
export const MAX_INPUT_CHARS = 200_000;

/** What `verify` decided and why (the extracted, normalised answers help debugging rewards). */
export interface VerifyDetail {
  equal: boolean;
  goldAnswer: string | null;
  predAnswer: string | null;
}

function compareOptions(opts: VerifyOptions): CompareOptions {
  const r = opts.floatRounding ?? DEFAULT_COMPARE.floatRounding;
  if (!Number.isInteger(r) || r < 0 || r > 20)
    throw new RangeError(`floatRounding must be an integer from 0 to 20 (got ${r})`);
  return { floatRounding: r, allowSetRelationComp: opts.allowSetRelationComp ?? DEFAULT_COMPARE.allowSetRelationComp };
}

/** Like `verify`, also returning the normalised answers that were compared. Throws on hostile input. */
export function verifyDetail(gold: string, prediction: string, opts: VerifyOptions = {}): VerifyDetail {
  if (gold.length > MAX_INPUT_CHARS || prediction.length > MAX_INPUT_CHARS) {
    throw new RangeError(
      `input longer than ${MAX_INPUT_CHARS} characters (gold ${gold.length}, prediction ${prediction.length})`,
    );
  }
  const o = compareOptions(opts);
  const gx = extractGoldDetail(gold);
  const g = normalizeAnswer(gx.answer);
  const priority = opts.priority ?? (opts.extractWithoutAnchor === false ? ANCHORED_PRIORITY : DEFAULT_PRIORITY);
  const px = opts.predIsAnswer
    ? { answer: stripMathDelims(prediction), plain: !/\$|\\\(|\\\[/.test(prediction) }
    : extractAnswerDetail(prediction, priority);
  if (px === null || g === '') return { equal: false, goldAnswer: g, predAnswer: null };
  const p = normalizeAnswer(px.answer);
  if (p === '' || p.length > MAX_ANSWER_CHARS) return { equal: false, goldAnswer: g, predAnswer: p };
  // The gold read whole (`$221,$8$`, prose golds) may be the very string the prediction boxed.
  const whole = normalizeAnswer(stripMathDelims(gold));
  if (compactKey(whole) === compactKey(p)) return { equal: true, goldAnswer: g, predAnswer: p };
  const goldNode = parse(g, { plain: gx.plain });
  if (compactKey(g) === compactKey(p) || nodesEqual(goldNode, parse(p, { plain: px.plain }), o))
    return { equal: true, goldAnswer: g, predAnswer: p };
  // Several boxed answers were read as one list; the last one alone is the dataset convention's
  // reading (MATH solutions box "30° or 150°" for the gold 150°). Not for anchored training
  // rewards, where it would pay a hedge like `\boxed{5} or \boxed{6}`.
  const lenient = opts.extractWithoutAnchor !== false;
  const alt = lenient && 'lastBoxed' in px && px.lastBoxed !== undefined ? normalizeAnswer(px.lastBoxed) : '';
  if (
    alt !== '' &&
    alt.length <= MAX_ANSWER_CHARS &&
    (compactKey(g) === compactKey(alt) || nodesEqual(goldNode, parse(alt), o))
  )
    return { equal: true, goldAnswer: g, predAnswer: alt };
  return { equal: false, goldAnswer: g, predAnswer: p };
}

/**
 * Whether `prediction` (a whole model answer or a bare answer) states the same mathematical
 * answer as `gold`. Synchronous and in-process: only for trusted input (it may throw on hostile
 * input, and has no time limit).
 */
export function verify(gold: string, prediction: string, opts: VerifyOptions = {}): boolean {
  return verifyDetail(gold, prediction, opts).equal;
}
