/**
 * @module eval/benchmarks
 * The five evaluation sets of the GPG paper's tables (AIME24, MATH-500, AMC23, Minerva,
 * OlympiadBench) as they lie in ../shared/data: benchmark id → folder, file, the field holding
 * the problem text (OlympiadBench calls it `question`, the others `problem`), the column label of
 * the paper's tables, and a loader that turns each row into `{ index, problem, gold }` with the
 * gold answer read by `goldAnswer` (eval/answers.ts). A row without problem or gold is a
 * DataError naming the file and line: a benchmark is never silently shortened.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError, UsageError } from '../errors.ts';
import { goldAnswer } from './answers.ts';

export type BenchmarkId = 'aime24' | 'math500' | 'amc23' | 'minerva' | 'olympiadbench';

export interface BenchmarkSpec {
  id: BenchmarkId;
  /** Folder under the data dir. */
  folder: string;
  file: string;
  /** Row field with the problem text. */
  problemField: string;
  /** Column header in the paper's tables. */
  label: string;
}

/** In the column order of the GPG paper's tables (after Average). */
export const BENCHMARKS: readonly BenchmarkSpec[] = [
  { id: 'aime24', folder: 'aime24', file: 'test.jsonl', problemField: 'problem', label: 'AIME24' },
  { id: 'math500', folder: 'math500', file: 'test.jsonl', problemField: 'problem', label: 'MATH-500' },
  { id: 'amc23', folder: 'amc23', file: 'test.jsonl', problemField: 'problem', label: 'AMC23' },
  { id: 'minerva', folder: 'minerva_math', file: 'test.jsonl', problemField: 'problem', label: 'Minerva' },
  {
    id: 'olympiadbench',
    folder: 'olympiadbench',
    file: 'test.jsonl',
    problemField: 'question',
    label: 'OlympiadBench',
  },
];

export const BENCHMARK_IDS: readonly BenchmarkId[] = BENCHMARKS.map((b) => b.id);

export function benchmarkSpec(id: BenchmarkId): BenchmarkSpec {
  return BENCHMARKS.find((b) => b.id === id)!;
}

/**
 * Parses a comma-separated list such as "aime24,math500"; unknown ids are a UsageError listing
 * the known ones. Duplicates collapse; the result keeps the paper's column order.
 */
export function parseBenchmarkList(list: string, flag = '--benchmarks'): BenchmarkId[] {
  const ids = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (ids.length === 0) throw new UsageError(`${flag}: empty list; give one or more of ${BENCHMARK_IDS.join(',')}`);
  for (const id of ids) {
    if (!(BENCHMARK_IDS as readonly string[]).includes(id)) {
      throw new UsageError(`${flag}: unknown benchmark "${id}"; known: ${BENCHMARK_IDS.join(', ')}`);
    }
  }
  return BENCHMARK_IDS.filter((id) => ids.includes(id));
}

/** `$GPG_RL_DATA_DIR`, else ../shared/data beside the repository (DESIGN §6). */
export function defaultDataDir(): string {
  const env = process.env['GPG_RL_DATA_DIR'];
  if (env !== undefined && env !== '') return env;
  return fileURLToPath(new URL('../../../shared/data/', import.meta.url));
}

export interface Problem {
  benchmark: BenchmarkId;
  /** Row number in the set's file (0-based, blank lines not counted). */
  index: number;
  problem: string;
  gold: string;
}

/** Reads every row of a benchmark (or the first `limit` rows). */
export function loadBenchmark(id: BenchmarkId, opts: { dataDir?: string; limit?: number } = {}): Problem[] {
  const spec = benchmarkSpec(id);
  const path = join(opts.dataDir ?? defaultDataDir(), spec.folder, spec.file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(
      `${path}: cannot read benchmark ${id} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set GPG_RL_DATA_DIR to the folder holding ${spec.folder}/${spec.file}`,
    );
  }
  const limit = opts.limit ?? Infinity;
  const out: Problem[] = [];
  const lines = text.split('\n');
  for (let ln = 0; ln < lines.length && out.length < limit; ln++) {
    const line = lines[ln]!.trim();
    if (line === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new DataError(`${path}:${ln + 1}: not valid JSON`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new DataError(`${path}:${ln + 1}: expected a JSON object`);
    const r = row as Record<string, unknown>;
    const problem = r[spec.problemField];
    if (typeof problem !== 'string' || problem.trim() === '')
      throw new DataError(`${path}:${ln + 1}: field "${spec.problemField}" must be a non-empty string`);
    const gold = goldAnswer(id, r);
    if (gold === null)
      throw new DataError(`${path}:${ln + 1}: no gold answer (see ${spec.folder}/SOURCE.md for the answer field)`);
    out.push({ benchmark: id, index: out.length, problem, gold });
  }
  return out;
}
