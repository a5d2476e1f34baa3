/**
 * @module eval
 * Benchmark evaluation (pass@k tables on AIME24, MATH-500, AMC23, Minerva, OlympiadBench):
 * `evaluate` for the CLI and the trainer's `eval_steps`, the evaluation protocols (lighteval,
 * qwen-math, default), the benchmark loader, gold answers, the pass@k estimator and the
 * paper-layout table.
 */
export { evaluate, writeEvalOutputs, DEFAULT_SYSTEM_PROMPT, DEFAULT_MAX_NEW_TOKENS } from './evaluate.ts';
export type { EvalOptions, EvalResult, EvalSummary, BenchmarkScore, SampleRecord, ProtocolRecord } from './evaluate.ts';
export {
  PROTOCOL_NAMES,
  SETTING_KEYS,
  LIGHTEVAL_MATH_QUERY_TEMPLATE,
  QWEN25_MATH_COT_FRAME,
  QWEN_COT_SYSTEM_PROMPT,
  getProtocol,
  parseProtocolName,
  resolveProtocol,
  fillRawTemplate,
} from './protocols.ts';
export type { EvalProtocol, ProtocolName, ProtocolSettings, ResolvedProtocol } from './protocols.ts';
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
export type { TableInput, TableScore, Coverage } from './table.ts';
export { goldAnswer, lastBoxed } from './answers.ts';
