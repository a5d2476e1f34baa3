/**
 * @module eval/evaluate
 * Benchmark evaluation: for each benchmark, render every problem as a prompt (chat template
 * when the tokenizer has one, with Qwen2.5-Math's CoT system message by default), generate k
 * completions (greedy when temperature is 0), grade each against the set's gold answer in the
 * sandboxed verifier pool, and score pass@1 (mean over the k samples) and pass@k (unbiased
 * estimator, eval/passk.ts). With `completions` it grades given completions instead (no model).
 * `gpg-rl eval` wraps it; the trainer calls it every `eval_steps` with a `limit` per benchmark.
 *
 *   const r = await evaluate(model, tokenizer, { benchmarks: ['math500'], limit: 50, maxNewTokens: 512 });
 *   r.summary.benchmarks.math500.pass1; console.log(r.table);
 */
import { specialTokens } from '../model/special.ts';
import { mkdirSync } from 'node:fs';
import { writeFilesAtomic } from '../io/atomic.ts';
import { join } from 'node:path';
import type { CausalLM } from '../model/decoder.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { generate } from '../generate/generate.ts';
import { Rng } from '../data/rng.ts';
import { buildMessages, renderPrompt } from '../data/prompts.ts';
import { VerifierPool, type Grader, type PoolStats } from '../rewards/math-verify/pool.ts';
import { extractAnswer } from '../rewards/math-verify/extract.ts';
import { qwenExtractAnswer } from '../rewards/math-verify/qwen.ts';
import { MAX_INPUT_CHARS } from '../rewards/math-verify/verify.ts';
import { DataError, GpgRlError } from '../errors.ts';
import { BENCHMARK_IDS, benchmarkSpec, loadBenchmark, type BenchmarkId, type Problem } from './benchmarks.ts';
import type { CompletionLine } from './completions.ts';
import { meanPassAtK } from './passk.ts';
import { formatTable } from './table.ts';

/** Qwen2.5-Math's chain-of-thought instruction (its evaluation's `qwen25-math-cot` prompt), used as the system message. */
export const DEFAULT_SYSTEM_PROMPT = 'Please reason step by step, and put your final answer within \\boxed{}.';

/**
 * Qwen2.5-Math evaluation's `--max_tokens_per_call` default (evaluation/math_eval.py); long
 * reasoning models need more, so `--max-new-tokens` sets it.
 */
export const DEFAULT_MAX_NEW_TOKENS = 2048;

export interface EvalOptions {
  /** Default: all five; with `completions`, the benchmarks the completions name. */
  benchmarks?: BenchmarkId[];
  /** Samples per problem (k); default 1. With `completions`: the k of pass@k (default: fewest samples of any problem). */
  samples?: number;
  /** 0 (default) = greedy decoding. */
  temperature?: number;
  topP?: number;
  topK?: number;
  maxNewTokens?: number;
  /** First `limit` rows of each benchmark (a subset for evaluation during training). */
  limit?: number;
  /** Grader of a fresh pool (default math-verify); ignored when `pool` is given. */
  grader?: Grader;
  /** System message; '' for none. Default DEFAULT_SYSTEM_PROMPT. */
  systemPrompt?: string;
  /** Sampling seed (default 0). */
  seed?: number;
  /** Folder holding aime24/, math500/, … (default: defaultDataDir()). */
  dataDir?: string;
  /** Grade these instead of generating (model and tokenizer may then be null). */
  completions?: CompletionLine[];
  /** Sequences per generation batch (default 16). */
  batchSize?: number;
  /** Eos ids (default: the model config's and the tokenizer's). */
  eosTokenIds?: number[];
  padTokenId?: number;
  /** A verifier pool to reuse (the trainer's); otherwise one is created and closed. */
  pool?: VerifierPool;
  /** Per-comparison time limit of a fresh pool (default 5000 ms: benchmark answers can be large expressions). */
  timeoutMs?: number;
  /** Names the model in the table and summary. */
  modelName?: string;
  onProgress?: (message: string) => void;
}

/** One line of results.jsonl: one problem, one sample. */
export interface SampleRecord {
  benchmark: BenchmarkId;
  index: number;
  sample: number;
  prompt: string;
  completion: string;
  /** The answer the grader extracts from the completion; null when none is found. */
  extracted: string | null;
  gold: string;
  correct: boolean;
  /** Verifier failure (time limit, crash); `correct` is then false. */
  error?: string;
  /** Generation ended with eos (false: cut at max_new_tokens); absent for given completions. */
  finished?: boolean;
}

export interface BenchmarkScore {
  label: string;
  /** Problems scored. */
  problems: number;
  /** Completions graded. */
  completions: number;
  correct: number;
  /** Mean over problems of correct/n (pass@1 averaged over the samples). */
  pass1: number;
  /** Unbiased pass@k with k = summary.k. */
  passK: number;
}

export interface EvalSummary {
  model: string;
  mode: 'generate' | 'completions';
  grader: Grader;
  k: number;
  temperature: number | null;
  maxNewTokens: number | null;
  limit: number | null;
  seed: number | null;
  systemPrompt: string;
  benchmarks: Partial<Record<BenchmarkId, BenchmarkScore>>;
  /** Unweighted mean over the benchmarks, as the paper's Average column. */
  average: { pass1: number; passK: number };
  verifier: PoolStats;
  time_s: number;
}

export interface EvalResult {
  summary: EvalSummary;
  records: SampleRecord[];
  /** Markdown table in the paper's layout. */
  table: string;
}

interface Job {
  problem: Problem;
  prompt: string;
}

function renderFor(tokenizer: TextTokenizer | null, problem: string, systemPrompt: string): string {
  const messages = buildMessages({ prompt: problem }, { systemPrompt });
  // A base model without a chat template gets the problem, then the instruction.
  return tokenizer?.hasChatTemplate
    ? renderPrompt(messages, tokenizer, { useChatTemplate: true })
    : renderPrompt(messages, null, {
        useChatTemplate: false,
        rawTemplate: systemPrompt ? '{prompt}\n{system}\n' : '{prompt}\n',
      });
}

function extracted(grader: Grader, completion: string): string | null {
  if (completion.length > MAX_INPUT_CHARS) return null;
  try {
    const a = grader === 'qwen' ? qwenExtractAnswer(completion) : extractAnswer(completion);
    return a === null || a === '' ? null : a;
  } catch {
    return null;
  }
}

function checkPositiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1))
    throw new GpgRlError(`evaluate: ${name} must be a positive integer (got ${v})`, 'GPG_EVAL');
}

/** Evaluates `model` on the benchmarks, or grades `opts.completions` (then model/tokenizer may be null). */
export async function evaluate(
  model: CausalLM | null,
  tokenizer: TextTokenizer | null,
  opts: EvalOptions = {},
): Promise<EvalResult> {
  const t0 = Date.now();
  checkPositiveInt('samples', opts.samples);
  checkPositiveInt('limit', opts.limit);
  checkPositiveInt('maxNewTokens', opts.maxNewTokens);
  checkPositiveInt('batchSize', opts.batchSize);
  const temperature = opts.temperature ?? 0;
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    throw new GpgRlError(`evaluate: temperature must be ≥ 0 (got ${temperature})`, 'GPG_EVAL');
  const systemPrompt = opts.systemPrompt ?? DEFAULT_SYSTEM_PROMPT;
  const progress = opts.onProgress ?? (() => {});
  const mode = opts.completions ? 'completions' : 'generate';
  const benchmarks =
    opts.benchmarks ??
    (opts.completions
      ? BENCHMARK_IDS.filter((id) => opts.completions!.some((c) => c.benchmark === id))
      : [...BENCHMARK_IDS]);
  if (benchmarks.length === 0) throw new GpgRlError('evaluate: no benchmarks selected', 'GPG_EVAL');

  // 1. Problems and prompts (all data is read and checked before any generation or grading).
  const sets = new Map<BenchmarkId, Problem[]>();
  for (const id of benchmarks) sets.set(id, loadBenchmark(id, { dataDir: opts.dataDir, limit: opts.limit }));
  const promptCache = new Map<string, string>();
  const promptOf = (p: Problem): string => {
    const key = `${p.benchmark}/${p.index}`;
    let s = promptCache.get(key);
    if (s === undefined) promptCache.set(key, (s = renderFor(tokenizer, p.problem, systemPrompt)));
    return s;
  };

  // 2. Completions: given, or generated.
  let records: Omit<SampleRecord, 'extracted' | 'correct'>[];
  let k: number;
  if (opts.completions) {
    ({ records, k } = fromCompletions(opts.completions, sets, opts, promptOf));
  } else {
    if (model === null || tokenizer === null)
      throw new GpgRlError(
        'evaluate: generating needs a model and its tokenizer (or pass completions to grade)',
        'GPG_EVAL',
      );
    k = opts.samples ?? 1;
    records = [];
    for (const id of benchmarks) {
      const jobs = sets.get(id)!.map((problem) => ({ problem, prompt: promptOf(problem) }));
      progress(
        `eval: ${id}: generating ${jobs.length} problems × ${k} sample${k > 1 ? 's' : ''}${temperature === 0 ? ' (greedy)' : ` (T=${temperature})`}`,
      );
      records.push(...generateFor(model, tokenizer, jobs, k, temperature, opts));
    }
  }

  // 3. Grading in the sandboxed pool.
  const pool =
    opts.pool ?? new VerifierPool({ grader: opts.grader ?? 'math-verify', timeoutMs: opts.timeoutMs ?? 5000 });
  const grader = pool.grader;
  let verdicts;
  try {
    progress(`eval: grading ${records.length} completions (${grader})`);
    verdicts = await pool.verifyMany(records.map((r) => ({ gold: r.gold, pred: r.completion })));
  } finally {
    if (!opts.pool) await pool.close();
  }
  const stats = pool.stats();
  const graded: SampleRecord[] = records.map((r, i) => {
    const v = verdicts[i]!;
    // Key order of results.jsonl: identity, text, verdict, then the optional fields.
    const out: SampleRecord = {
      benchmark: r.benchmark,
      index: r.index,
      sample: r.sample,
      prompt: r.prompt,
      completion: r.completion,
      extracted: extracted(grader, r.completion),
      gold: r.gold,
      correct: v.error === undefined && v.equal,
    };
    if (r.finished !== undefined) out.finished = r.finished;
    if (v.error !== undefined) out.error = v.error;
    return out;
  });

  // 4. Scores.
  const scores: Partial<Record<BenchmarkId, BenchmarkScore>> = {};
  for (const id of benchmarks) {
    const byProblem = new Map<number, { n: number; c: number }>();
    let correct = 0;
    let n = 0;
    for (const r of graded) {
      if (r.benchmark !== id) continue;
      const e = byProblem.get(r.index) ?? { n: 0, c: 0 };
      e.n++;
      if (r.correct) e.c++;
      byProblem.set(r.index, e);
      n++;
      if (r.correct) correct++;
    }
    const per = [...byProblem.values()];
    scores[id] = {
      label: benchmarkSpec(id).label,
      problems: per.length,
      completions: n,
      correct,
      pass1: meanPassAtK(per, 1),
      passK: meanPassAtK(per, k),
    };
  }
  const all = benchmarks.map((id) => scores[id]!);
  const average = {
    pass1: all.reduce((s, b) => s + b.pass1, 0) / all.length,
    passK: all.reduce((s, b) => s + b.passK, 0) / all.length,
  };
  const summary: EvalSummary = {
    model: opts.modelName ?? (model ? 'model' : 'completions'),
    mode,
    grader,
    k,
    temperature: mode === 'generate' ? temperature : null,
    maxNewTokens: mode === 'generate' ? (opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS) : null,
    limit: opts.limit ?? null,
    seed: mode === 'generate' && temperature > 0 ? (opts.seed ?? 0) : null,
    systemPrompt,
    benchmarks: scores,
    average,
    verifier: stats,
    time_s: (Date.now() - t0) / 1000,
  };
  return { summary, records: graded, table: formatTable({ model: summary.model, k, benchmarks: scores, average }) };
}

/** k samples per job; greedy decoding runs each prompt once and repeats the result k times. */
function generateFor(
  model: CausalLM,
  tokenizer: TextTokenizer,
  jobs: Job[],
  k: number,
  temperature: number,
  opts: EvalOptions,
): Omit<SampleRecord, 'extracted' | 'correct'>[] {
  const greedy = temperature === 0;
  const special = specialTokens(model.cfg, tokenizer, null, opts.modelName ?? 'model');
  const eos = opts.eosTokenIds ?? special.eosTokenIds;
  const pad = opts.padTokenId ?? special.padTokenId;
  const useChat = tokenizer.hasChatTemplate;
  const encoded = jobs.map((j) => {
    try {
      // The chat template already writes any bos/special tokens; a raw prompt gets the tokenizer's.
      return tokenizer.encode(j.prompt, { addSpecialTokens: !useChat });
    } catch (e) {
      throw new DataError(
        `${j.problem.benchmark} row ${j.problem.index}: cannot tokenize the prompt (${(e as Error).message})`,
      );
    }
  });
  const reps = greedy ? 1 : k;
  // Sequence s = job * reps + r; sorted by prompt length so batches hold similar lengths.
  const order = Array.from({ length: jobs.length * reps }, (_, s) => s).sort(
    (a, b) => encoded[Math.floor(a / reps)]!.length - encoded[Math.floor(b / reps)]!.length || a - b,
  );
  const res = generate(
    model,
    order.map((s) => encoded[Math.floor(s / reps)]!),
    {
      maxNewTokens: opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
      greedy,
      temperature: greedy ? 1 : temperature,
      topP: opts.topP ?? 1,
      topK: opts.topK ?? 0,
      eosTokenIds: eos,
      padTokenId: pad,
      rng: greedy ? undefined : new Rng(opts.seed ?? 0),
      batchSize: opts.batchSize ?? 16,
    },
  );
  const texts = new Array<string>(order.length);
  const finished = new Array<boolean>(order.length);
  order.forEach((s, i) => {
    texts[s] = tokenizer.decode(res.tokens[i]!, { skipSpecialTokens: true });
    finished[s] = res.finished[i]!;
  });
  const out: Omit<SampleRecord, 'extracted' | 'correct'>[] = [];
  jobs.forEach((j, q) => {
    for (let r = 0; r < k; r++) {
      const s = q * reps + (greedy ? 0 : r);
      out.push({
        benchmark: j.problem.benchmark,
        index: j.problem.index,
        sample: r,
        prompt: j.prompt,
        completion: texts[s]!,
        gold: j.problem.gold,
        finished: finished[s]!,
      });
    }
  });
  return out;
}

/** Groups given completions by problem, numbers samples, checks indices and k. */
function fromCompletions(
  lines: CompletionLine[],
  sets: Map<BenchmarkId, Problem[]>,
  opts: EvalOptions,
  promptOf: (p: Problem) => string,
): { records: Omit<SampleRecord, 'extracted' | 'correct'>[]; k: number } {
  const records: Omit<SampleRecord, 'extracted' | 'correct'>[] = [];
  const used = new Map<string, Set<number>>();
  for (const c of lines) {
    const set = sets.get(c.benchmark);
    if (!set) continue; // a benchmark not selected
    if (opts.limit !== undefined && c.index >= opts.limit) continue;
    const problem = set[c.index];
    if (!problem)
      throw new DataError(
        `${c.source ?? 'completions'}: index ${c.index} is out of range for ${c.benchmark} (${set.length} rows, 0..${set.length - 1})`,
      );
    const key = `${c.benchmark}/${c.index}`;
    const taken = used.get(key) ?? new Set<number>();
    used.set(key, taken);
    let sample = c.sample;
    if (sample === undefined) {
      sample = 0;
      while (taken.has(sample)) sample++;
    } else if (taken.has(sample)) {
      throw new DataError(
        `${c.source ?? 'completions'}: ${c.benchmark} index ${c.index} sample ${sample} is given twice`,
      );
    }
    taken.add(sample);
    records.push({
      benchmark: c.benchmark,
      index: c.index,
      sample,
      prompt: promptOf(problem),
      completion: c.completion,
      gold: problem.gold,
    });
  }
  for (const id of sets.keys()) {
    if (!records.some((r) => r.benchmark === id))
      throw new DataError(
        `completions: none for benchmark ${id}${opts.limit !== undefined ? ` within the first ${opts.limit} rows` : ''}; drop it from --benchmarks or add its completions`,
      );
  }
  const fewest = Math.min(...[...used.values()].filter((s) => s.size > 0).map((s) => s.size));
  const k = opts.samples ?? fewest;
  if (k > fewest)
    throw new DataError(
      `completions: pass@${k} needs ${k} samples of every problem, but some problem has only ${fewest}; lower --samples`,
    );
  records.sort(
    (a, b) =>
      BENCHMARK_IDS.indexOf(a.benchmark) - BENCHMARK_IDS.indexOf(b.benchmark) ||
      a.index - b.index ||
      a.sample - b.sample,
  );
  return { records, k };
}

/**
 * Writes `results.jsonl` (one line per problem and sample) and `summary.json` (with the table)
 * into `outDir`, each through a temp file and a rename, so a failure leaves neither half-written.
 */
export function writeEvalOutputs(outDir: string, result: EvalResult): { results: string; summary: string } {
  const files = {
    results: join(outDir, 'results.jsonl'),
    summary: join(outDir, 'summary.json'),
  };
  try {
    mkdirSync(outDir, { recursive: true });
    const body = result.records.map((r) => JSON.stringify(r)).join('\n');
    writeFilesAtomic([
      [files.results, body === '' ? '' : body + '\n'],
      [files.summary, JSON.stringify({ ...result.summary, table: result.table }, null, 2) + '\n'],
    ]);
  } catch (e) {
    throw new DataError(
      `${outDir}: cannot write evaluation results (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check that the folder is writable`,
    );
  }
  return files;
}
