/**
 * @module eval
 * Benchmark evaluation (pass@k tables on AIME24, MATH-500, AMC23, Minerva, OlympiadBench):
 * `evaluate` for the CLI and the trainer's `eval_steps`, the benchmark loader, gold answers,
 * the pass@k estimator and the paper-layout table.
 */
export { evaluate, writeEvalOutputs, DEFAULT_SYSTEM_PROMPT, DEFAULT_MAX_NEW_TOKENS } from './evaluate.ts';
export type { EvalOptions, EvalResult, EvalSummary, BenchmarkScore, SampleRecord } from './evaluate.ts';
export {
  BENCHMARKS,
  BENCHMARK_IDS,
  benchmarkSpec,
  parseBenchmarkList,
  defaultDataDir,
  loadBenchmark,
} from './benchmarks.ts';
export type { BenchmarkId, BenchmarkSpec, Problem } from './benchmarks.ts';
export { parseCompletions, readCompletionsFile } from './completions.ts';
export type { CompletionLine } from './completions.ts';
export { passAtK, meanPassAtK } from './passk.ts';
export { formatTable } from './table.ts';
export type { TableInput, TableScore } from './table.ts';
export { goldAnswer, lastBoxed } from './answers.ts';
