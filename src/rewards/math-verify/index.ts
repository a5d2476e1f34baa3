/**
 * @module rewards/math-verify
 * The maths answer verifier: `verify` (in-process, trusted input), `VerifierPool` (worker
 * threads with time and memory limits, for model output), `accuracyRewards` /
 * `anchoredVerifier` for the trainer (anchored extraction by default), and the
 * Qwen2.5-Math-style second grader. Usable on its own from JavaScript; no other dependency
 * than `@cortex-js/compute-engine`.
 */
export { verify, verifyDetail, MAX_INPUT_CHARS } from './verify.ts';
export type { VerifyOptions, VerifyDetail } from './verify.ts';
export { VerifierPool, VerifierPoolError, accuracyRewards, anchoredVerifier } from './pool.ts';
export type { AccuracyRewardOptions, Grader, PoolOptions, PoolStats, PoolVerifyOptions, VerifyResult } from './pool.ts';
export {
  extractAnswer,
  extractAnswerDetail,
  extractGold,
  extractGoldDetail,
  lastBoxed,
  boxedAnswer,
  DEFAULT_PRIORITY,
  ANCHORED_PRIORITY,
} from './extract.ts';
export type { ExtractionKind, Extracted } from './extract.ts';
export { nodesEqual, leafEqual, DEFAULT_COMPARE } from './compare.ts';
export type { CompareOptions } from './compare.ts';
export { normalizeAnswer } from './normalize.ts';
export { qwenVerify, qwenExtractAnswer, qwenStripString, qwenMathEqual } from './qwen.ts';
