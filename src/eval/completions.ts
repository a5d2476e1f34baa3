/**
 * @module eval/completions
 * Given completions for `gpg-rl eval --completions FILE`: one JSON object per line,
 * `{"benchmark": "math500", "index": 12, "completion": "… \\boxed{3}", "sample": 0}`
 * (`index` = row number in the set's file, 0-based; `sample` optional). Every line is checked
 * before any grading starts, so a bad file fails with one line naming file:line and field, and
 * leaves no output behind.
 */
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { BENCHMARK_IDS, type BenchmarkId } from './benchmarks.ts';

export interface CompletionLine {
  benchmark: BenchmarkId;
  index: number;
  completion: string;
  /** Sample number within the problem; assigned in order of appearance when absent. */
  sample?: number;
  /** "file:line", for error messages about this entry. */
  source?: string;
}

const isNonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses and validates completions JSONL text; `file` names it in errors. */
export function parseCompletions(text: string, file: string): CompletionLine[] {
  const out: CompletionLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const at = `${file}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new DataError(
        `${at}: not valid JSON; each line must be an object like {"benchmark": "math500", "index": 0, "completion": "... \\\\boxed{3}"}`,
      );
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new DataError(
        `${at}: expected a JSON object with "benchmark", "index" and "completion", got ${Array.isArray(row) ? 'an array' : row === null ? 'null' : typeof row}`,
      );
    }
    const r = row as Record<string, unknown>;
    const b = r['benchmark'];
    if (typeof b !== 'string' || !(BENCHMARK_IDS as readonly string[]).includes(b)) {
      throw new DataError(
        `${at}: field "benchmark" must be one of ${BENCHMARK_IDS.join(', ')} (got ${b === undefined ? 'nothing' : JSON.stringify(b).slice(0, 40)})`,
      );
    }
    const index = r['index'];
    if (!isNonNegInt(index))
      throw new DataError(
        `${at}: field "index" must be a row number ≥ 0 (got ${index === undefined ? 'nothing' : JSON.stringify(index).slice(0, 40)})`,
      );
    const completion = r['completion'];
    if (typeof completion !== 'string')
      throw new DataError(
        `${at}: field "completion" must be a string (got ${completion === undefined ? 'nothing' : JSON.stringify(completion).slice(0, 40)})`,
      );
    const sample = r['sample'];
    if (sample !== undefined && !isNonNegInt(sample))
      throw new DataError(
        `${at}: field "sample" must be an integer ≥ 0 when given (got ${JSON.stringify(sample).slice(0, 40)})`,
      );
    const c: CompletionLine = { benchmark: b as BenchmarkId, index, completion, source: at };
    if (sample !== undefined) c.sample = sample;
    out.push(c);
  }
  if (out.length === 0) throw new DataError(`${file}: no completions (the file is empty)`);
  return out;
}

export function readCompletionsFile(file: string): CompletionLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(
      `${file}: cannot read completions (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass an existing JSONL file to --completions`,
    );
  }
  return parseCompletions(text, file);
}
