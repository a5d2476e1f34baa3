/**
 * @module eval/evaluate
 * Benchmark evaluation by a protocol (eval/protocols.ts: `default`, `lighteval` = the GPG paper's
 * 1.5B table, `qwen-math` = its 7B table): for each benchmark, render every problem as the
 * protocol's prompt (user template, system message, chat template or raw text), generate k
 * completions with its sampling and length, grade each against the set's gold answer with its
 * grader in the sandboxed verifier pool, and score pass@1 (mean over the k samples) and pass@k
 * (unbiased estimator, eval/passk.ts). Any protocol field can be overridden by the option of the
 * same name; the protocol, the values used and the overridden fields go into the summary. With
 * `completions` it grades given completions instead (no model); every problem of the selected
 * benchmarks must then have one (coverage 100%), unless `allowPartial`.
 * With `remote` the completions are generated on OpenAI-compatible completions servers
 * (generate/remote.ts) instead: prompts tokenized here as for the local engine, token ids back,
 * decoded and graded here, so the records and summary are the same.
 * `gpg-rl eval` wraps it; the trainer calls it every `eval_steps` with a `limit` per benchmark.
 *
 *   const r = await evaluate(model, tokenizer, { protocol: 'lighteval', benchmarks: ['math500'], limit: 50, maxNewTokens: 512 });
 *   r.summary.benchmarks.math500.pass1; r.summary.protocol_settings.temperature; console.log(r.table);
 */
import { specialTokens } from '../model/special.ts';
import { writeFilesAtomic } from '../io/atomic.ts';
import { join } from 'node:path';
import type { CausalLM } from '../model/decoder.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import type { RolloutServers } from '../generate/remote.ts';
import { generate } from '../generate/generate.ts';
import { Rng } from '../data/rng.ts';
import { buildMessages } from '../data/prompts.ts';
import { VerifierPool, type Grader, type PoolStats } from '../rewards/math-verify/pool.ts';
import { extractAnswer } from '../rewards/math-verify/extract.ts';
import { qwenExtractAnswer } from '../rewards/math-verify/qwen.ts';
import { MAX_INPUT_CHARS } from '../rewards/math-verify/verify.ts';
import { ConfigError, DataError, GpgRlError } from '../errors.ts';
import { BENCHMARK_IDS, benchmarkSpec, loadBenchmark, type BenchmarkId, type Problem } from './benchmarks.ts';
import type { CompletionLine } from './completions.ts';
import { meanPassAtK } from './passk.ts';
import { formatTable, type Coverage } from './table.ts';
import {
  fillRawTemplate,
  getProtocol,
  resolveProtocol,
  type ProtocolName,
  type ProtocolSettings,
} from './protocols.ts';
import { ensureDir } from '../io/fs.ts';
import { Pace, progressText, Ticker } from '../io/progress.ts';

/** The `default` protocol's system message: Qwen2.5-Math's chain-of-thought instruction (`qwen25-math-cot`). */
export const DEFAULT_SYSTEM_PROMPT = getProtocol('default').systemPrompt;

/**
 * The `default` protocol's length: Qwen2.5-Math evaluation's `--max_tokens_per_call` default
 * (evaluation/math_eval.py); long reasoning models need more, so `--max-new-tokens` sets it.
 */
export const DEFAULT_MAX_NEW_TOKENS = getProtocol('default').maxNewTokens;

/**
 * Options. Every field marked "protocol" defaults to the protocol's value (eval/protocols.ts) and,
 * when given, overrides it; the summary lists the overridden ones.
 */
export interface EvalOptions {
  /** The harness whose rules to follow (default 'default'). */
  protocol?: ProtocolName;
  /** Default: all five; with `completions`, the benchmarks the completions name. */
  benchmarks?: BenchmarkId[];
  /** Protocol: samples per problem (k). With `completions`: the k of pass@k (default: fewest samples of any problem). */
  samples?: number;
  /** Protocol: sampling temperature; 0 = greedy decoding. */
  temperature?: number;
  /** Protocol: nucleus mass (1 = off). */
  topP?: number;
  /** Protocol: top-k (0 = off). */
  topK?: number;
  /** Protocol: tokens per completion. */
  maxNewTokens?: number;
  /** First `limit` rows of each benchmark (a subset for evaluation during training). */
  limit?: number;
  /** Protocol: grader of a fresh pool; when `pool` is given, the pool's grader is used. */
  grader?: Grader;
  /** Protocol: system message; '' for none. */
  systemPrompt?: string;
  /**
   * Protocol: the user turn, `{prompt}` = the problem (a dataset's `prompt_template`, so eval
   * during training sees the training prompt); other braces stay literal.
   */
  promptTemplate?: string;
  /** Protocol: through the tokenizer's chat template (when it has one); false = `rawTemplate`. */
  useChatTemplate?: boolean;
  /** Protocol: prompt text without chat template, with `{system}` and `{prompt}` (the filled user turn). */
  rawTemplate?: string;
  /** Protocol: token strings that also end a completion (added to the eos ids when the tokenizer has them). */
  stopTokens?: string[];
  /** Protocol: sampling seed. */
  seed?: number;
  /** With `completions`: score the graded problems even when some problems have no completion. */
  allowPartial?: boolean;
  /** Folder holding aime24/, math500/, … (default: defaultDataDir()). */
  dataDir?: string;
  /** Grade these instead of generating (model and tokenizer may then be null). */
  completions?: CompletionLine[];
  /** Most sequences decoded together by the rollout engine (default 64); with `remote`, most sequences per server request. */
  batchSize?: number;
  /**
   * Generate on these servers instead of the local engine (model may then be null; `eosTokenIds`
   * is then required). Prompts go out in rounds of at most `batchSize` sequences per live server
   * (n = k per prompt, or 1 when greedy), each completion with the seed the local engine would give
   * it (so `gpg-rl serve` samples what local generation samples); completions are cut after the
   * first eos / stop token as the local engine cuts them.
   */
  remote?: { servers: RolloutServers; vocabSize: number };
  /** Eos ids (default: the model config's and the tokenizer's). */
  eosTokenIds?: number[];
  /** A verifier pool to reuse (the trainer's); otherwise one is created and closed. */
  pool?: VerifierPool;
  /** Per-comparison time limit of a fresh pool (default 5000 ms: benchmark answers can be large expressions). */
  timeoutMs?: number;
  /** Names the model in the table and summary. */
  modelName?: string;
  /**
   * Progress lines: the protocol, then per benchmark `eval: math500: completions 12/500, elapsed
   * 1m05s, eta 8m00s` at most every `progressIntervalMs` (default 10 s) and when it is done.
   */
  onProgress?: (message: string) => void;
  progressIntervalMs?: number;
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
  /** Problems graded out of the problems selected (all rows, or the first `limit`). */
  coverage: Coverage;
  /** Completions graded. */
  completions: number;
  correct: number;
  /** Mean over problems of correct/n (pass@1 averaged over the samples). */
  pass1: number;
  /** Unbiased pass@k with k = summary.k. */
  passK: number;
}

/** The protocol values in force; the generation ones are null when given completions were graded. */
export interface ProtocolRecord {
  systemPrompt: string;
  promptTemplate: string;
  useChatTemplate: boolean;
  rawTemplate: string;
  temperature: number | null;
  topP: number | null;
  topK: number | null;
  samples: number | null;
  maxNewTokens: number | null;
  seed: number | null;
  stopTokens: string[] | null;
  grader: Grader;
}

export interface EvalSummary {
  model: string;
  mode: 'generate' | 'completions';
  /** The protocol followed (eval/protocols.ts). */
  protocol: ProtocolName;
  protocol_settings: ProtocolRecord;
  /** protocol_settings fields that differ from the protocol's preset (a run with any is not the harness's setting). */
  protocol_overrides: (keyof ProtocolSettings)[];
  grader: Grader;
  k: number;
  temperature: number | null;
  maxNewTokens: number | null;
  limit: number | null;
  seed: number | null;
  systemPrompt: string;
  benchmarks: Partial<Record<BenchmarkId, BenchmarkScore>>;
  /** Problems graded / selected over all benchmarks; below 100% only with `allowPartial`. */
  coverage: Coverage;
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

/** Whether prompts go through the tokenizer's chat template (asked for, and the tokenizer has one). */
const chatFor = (tokenizer: TextTokenizer | null, s: ProtocolSettings): boolean =>
  s.useChatTemplate && tokenizer !== null && tokenizer.hasChatTemplate;

function renderFor(tokenizer: TextTokenizer | null, problem: string, s: ProtocolSettings): string {
  const messages = buildMessages(
    { prompt: problem },
    { systemPrompt: s.systemPrompt, promptTemplate: s.promptTemplate },
  );
  if (chatFor(tokenizer, s)) return tokenizer!.applyChatTemplate(messages, { addGenerationPrompt: true });
  return fillRawTemplate(s.rawTemplate, s.systemPrompt, messages[messages.length - 1]!.content);
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
  const resolved = resolveProtocol(opts.protocol ?? 'default', {
    systemPrompt: opts.systemPrompt,
    promptTemplate: opts.promptTemplate,
    useChatTemplate: opts.useChatTemplate,
    rawTemplate: opts.rawTemplate,
    temperature: opts.temperature,
    topP: opts.topP,
    topK: opts.topK,
    samples: opts.completions ? undefined : opts.samples,
    maxNewTokens: opts.maxNewTokens,
    seed: opts.seed,
    stopTokens: opts.stopTokens,
    grader: opts.pool?.grader ?? opts.grader,
  });
  const settings = resolved.settings;
  checkSettings(settings);
  const { temperature, systemPrompt } = settings;
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
    if (s === undefined) promptCache.set(key, (s = renderFor(tokenizer, p.problem, settings)));
    return s;
  };

  // 2. Completions: given, or generated.
  let records: Omit<SampleRecord, 'extracted' | 'correct'>[];
  let k: number;
  if (opts.completions) {
    ({ records, k } = fromCompletions(opts.completions, sets, opts, promptOf));
  } else {
    progress(
      `eval: protocol ${resolved.name}${resolved.overrides.length ? ` (overridden: ${resolved.overrides.join(', ')})` : ''}`,
    );
    if ((model === null && !opts.remote) || tokenizer === null)
      throw new GpgRlError(
        'evaluate: generating needs a model and its tokenizer (or pass completions to grade)',
        'GPG_EVAL',
      );
    if (model === null && opts.eosTokenIds === undefined)
      throw new GpgRlError('evaluate: remote generation without a model needs eosTokenIds', 'GPG_EVAL');
    if (opts.remote)
      progress(
        `eval: generating on ${opts.remote.servers.live.length} rollout server(s): ${opts.remote.servers.live.join(', ')}`,
      );
    k = settings.samples;
    records = [];
    for (const id of benchmarks) {
      const jobs = sets.get(id)!.map((problem) => ({ problem, prompt: promptOf(problem) }));
      progress(
        `eval: ${id}: generating ${jobs.length} problems × ${k} sample${k > 1 ? 's' : ''}${temperature === 0 ? ' (greedy)' : ` (T=${temperature})`}`,
      );
      const pace = new Pace(jobs.length * k); // (greedy: one completion per problem; `total` says)
      const ticker = new Ticker(opts.progressIntervalMs ?? 10_000);
      const report = (done: number, total: number) => {
        if (ticker.due(done, total))
          progress(`eval: ${id}: completions ${progressText(done, total, pace.at(done, total))}`);
      };
      records.push(...(await generateFor(model, tokenizer, jobs, k, settings, opts, report)));
    }
  }

  // 3. Grading in the sandboxed pool.
  const pool = opts.pool ?? new VerifierPool({ grader: settings.grader, timeoutMs: opts.timeoutMs ?? 5000 });
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
      coverage: { graded: per.length, total: sets.get(id)!.length },
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
  const generated = mode === 'generate';
  const coverage: Coverage = {
    graded: all.reduce((s, b) => s + b.coverage.graded, 0),
    total: all.reduce((s, b) => s + b.coverage.total, 0),
  };
  const summary: EvalSummary = {
    model: opts.modelName ?? (model ? 'model' : 'completions'),
    mode,
    protocol: resolved.name,
    protocol_settings: {
      systemPrompt: settings.systemPrompt,
      promptTemplate: settings.promptTemplate,
      useChatTemplate: settings.useChatTemplate,
      rawTemplate: settings.rawTemplate,
      temperature: generated ? settings.temperature : null,
      topP: generated ? settings.topP : null,
      topK: generated ? settings.topK : null,
      samples: generated ? settings.samples : null,
      maxNewTokens: generated ? settings.maxNewTokens : null,
      seed: generated ? settings.seed : null,
      stopTokens: generated ? settings.stopTokens : null,
      grader,
    },
    protocol_overrides: resolved.overrides,
    grader,
    k,
    temperature: mode === 'generate' ? temperature : null,
    maxNewTokens: mode === 'generate' ? settings.maxNewTokens : null,
    limit: opts.limit ?? null,
    seed: mode === 'generate' && temperature > 0 ? settings.seed : null,
    systemPrompt,
    benchmarks: scores,
    coverage,
    average,
    verifier: stats,
    time_s: (Date.now() - t0) / 1000,
  };
  const perCoverage: Partial<Record<BenchmarkId, Coverage>> = {};
  for (const id of benchmarks) perCoverage[id] = scores[id]!.coverage;
  const table = formatTable({ model: summary.model, k, benchmarks: scores, average, coverage: perCoverage });
  return { summary, records: graded, table };
}

/** The resolved protocol values must be usable: ranges, and templates with a place for the problem. */
function checkSettings(s: ProtocolSettings): void {
  const bad = (field: string, got: unknown, fix: string): never => {
    throw new ConfigError(`evaluate: ${field} ${fix} (got ${JSON.stringify(got)})`);
  };
  if (!Number.isFinite(s.temperature) || s.temperature < 0)
    bad('temperature', s.temperature, 'must be ≥ 0 (0 = greedy)');
  if (!(s.topP > 0 && s.topP <= 1)) bad('topP', s.topP, 'must be in (0, 1]');
  if (!Number.isInteger(s.topK) || s.topK < 0) bad('topK', s.topK, 'must be an integer ≥ 0 (0 = off)');
  for (const k of ['samples', 'maxNewTokens'] as const)
    if (!Number.isInteger(s[k]) || s[k] < 1) bad(k, s[k], 'must be a positive integer');
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) bad('seed', s.seed, 'must be an integer ≥ 0');
  if (!s.promptTemplate.includes('{prompt}'))
    bad('promptTemplate', s.promptTemplate, 'must contain {prompt} where the problem goes');
  if (!s.rawTemplate.includes('{prompt}'))
    bad('rawTemplate', s.rawTemplate, 'must contain {prompt} where the user turn goes');
  if (s.grader !== 'math-verify' && s.grader !== 'qwen') bad('grader', s.grader, 'must be math-verify or qwen');
}

/** k samples per job; greedy decoding runs each prompt once and repeats the result k times. */
async function generateFor(
  model: CausalLM | null,
  tokenizer: TextTokenizer,
  jobs: Job[],
  k: number,
  s: ProtocolSettings,
  opts: EvalOptions,
  report: (done: number, total: number) => void = () => {},
): Promise<Omit<SampleRecord, 'extracted' | 'correct'>[]> {
  const temperature = s.temperature;
  const greedy = temperature === 0;
  const eos = [
    ...(opts.eosTokenIds ?? specialTokens(model!.cfg, tokenizer, null, opts.modelName ?? 'model').eosTokenIds),
  ];
  for (const t of s.stopTokens) {
    const id = tokenizer.tokenToId(t);
    if (id !== null && !eos.includes(id)) eos.push(id);
  }
  const useChat = chatFor(tokenizer, s);
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
  // Per sequence s: its tokens and whether it ended with eos.
  const tokens = new Array<number[]>(order.length);
  const finished = new Array<boolean>(order.length);
  if (opts.remote) {
    await generateRemote(opts.remote, encoded, reps, order, s, eos, opts.batchSize ?? 64, tokens, finished, report);
  } else {
    const res = generate(
      model!,
      order.map((s) => encoded[Math.floor(s / reps)]!),
      {
        maxNewTokens: s.maxNewTokens,
        greedy,
        temperature: greedy ? 1 : temperature,
        // Greedy decoding ignores the nucleus (Qwen2.5-Math's math_eval.py sets top_p = 1 at T = 0).
        topP: greedy ? 1 : s.topP,
        topK: s.topK,
        eosTokenIds: eos,
        rng: greedy ? undefined : new Rng(s.seed),
        batchSize: opts.batchSize ?? 64,
        onStep: (_tokens, done) => report(done, order.length),
      },
    );
    order.forEach((s, i) => {
      tokens[s] = res.tokens[i]!;
      finished[s] = res.finished[i]!;
    });
  }
  const texts = tokens.map((t) => tokenizer.decode(t, { skipSpecialTokens: true, dropUnknown: true }));
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

/**
 * The sequences of `generateFor` on rollout servers, into `tokens` / `finished` (by sequence
 * s = job * reps + r). Seeds: the local engine's, drawn from `new Rng(seed)` in `order` (the order
 * it generates in). Jobs go out shortest prompt first, in rounds of ⌊batchSize / reps⌋ prompts
 * (at least 1) per live server, each round one request per server; a server that fails is
 * dropped by the client (its prompts go to the others), so later rounds use the rest.
 */
async function generateRemote(
  remote: NonNullable<EvalOptions['remote']>,
  encoded: number[][],
  reps: number,
  order: number[],
  s: ProtocolSettings,
  eos: number[],
  batchSize: number,
  tokens: number[][],
  finished: boolean[],
  report: (done: number, total: number) => void,
): Promise<void> {
  const greedy = s.temperature === 0;
  const seedOf = new Array<bigint>(order.length).fill(0n);
  if (!greedy) {
    const rng = new Rng(s.seed);
    for (const q of order) seedOf[q] = (BigInt(rng.nextUint32()) << 32n) | BigInt(rng.nextUint32());
  }
  const jobOrder = order.filter((q) => q % reps === 0).map((q) => q / reps);
  const perServer = Math.max(1, Math.floor(batchSize / reps));
  const sampling = {
    maxTokens: s.maxNewTokens,
    temperature: greedy ? 0 : s.temperature,
    topP: greedy ? 1 : s.topP,
    topK: greedy ? 0 : s.topK,
    vocabSize: remote.vocabSize,
    stopTokenIds: eos,
  };
  let done = 0;
  for (let at = 0; at < jobOrder.length;) {
    const round = jobOrder.slice(at, at + perServer * Math.max(1, remote.servers.live.length));
    at += round.length;
    const res = await remote.servers.generate(
      round.map((q) => encoded[q]!),
      reps,
      sampling,
      round.map((q) => Array.from({ length: reps }, (_, r) => seedOf[q * reps + r]!)),
    );
    round.forEach((q, m) => {
      for (let r = 0; r < reps; r++) {
        const t = res.tokens[m * reps + r]!;
        // cut after the first end token, as the local engine stops there (a server may not know the stop tokens)
        const end = t.findIndex((id) => eos.includes(id));
        tokens[q * reps + r] = end >= 0 ? t.slice(0, end + 1) : t;
        finished[q * reps + r] = end >= 0 || res.finished[m * reps + r]!;
      }
    });
    done += round.length * reps;
    report(done, order.length);
  }
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
  if (!opts.allowPartial) {
    // Coverage: a problem without a completion must not silently drop out of the score.
    const short: string[] = [];
    for (const [id, set] of sets) {
      const missing = set.filter((p) => !used.has(`${id}/${p.index}`)).map((p) => p.index);
      if (missing.length === 0) continue;
      const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? ', …' : '');
      short.push(`${id} ${set.length - missing.length}/${set.length} (missing index ${shown})`);
    }
    if (short.length) {
      const src = lines[0]?.source?.replace(/:\d+$/, '') ?? 'completions';
      throw new DataError(
        `${src}: not every problem has a completion: ${short.join('; ')}; add the missing ones, narrow --benchmarks/--limit, or pass --allow-partial to score only the graded problems`,
      );
    }
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
    ensureDir(outDir, `--out ${outDir}`);
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
