/**
 * @module rewards/math-verify
 * The maths answer verifier: `verify` (in-process, trusted input), `VerifierPool` (worker
 * threads with time and memory limits, for model output), `accuracyRewards` for the trainer,
 * and the Qwen2.5-Math-style second grader.
 */
export { verify, verifyDetail, MAX_INPUT_CHARS } from './verify.ts';
export type { VerifyOptions, VerifyDetail } from './verify.ts';
export { VerifierPool, VerifierPoolError, accuracyRewards } from './pool.ts';
export type { Grader, PoolOptions, PoolStats, VerifyResult } from './pool.ts';
export { extractAnswer, extractGold, lastBoxed, DEFAULT_PRIORITY } from './extract.ts';
export type { ExtractionKind } from './extract.ts';
export { normalizeAnswer } from './normalize.ts';
export { qwenVerify, qwenExtractAnswer, qwenStripString, qwenMathEqual } from './qwen.ts';
