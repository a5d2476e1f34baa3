/**
 * @module data/dataset
 * Loads a prompt dataset: JSONL, a JSON array, Parquet (through hyparquet) or a directory of
 * one-JSON-object-per-file (the MATH train layout `train/<subject>/<n>.json`), maps the recipe's
 * prompt and answer fields, and extracts the gold answer (`none` | `gsm8k` `####` | last `\boxed{}`).
 *
 * Rows whose gold answer cannot be parsed are DROPPED here and counted (the official code scores
 * them 1, which rewards every completion of such a prompt; we never do). A row with an empty
 * prompt is dropped and counted too. Structural problems (missing file, bad JSON line, a row
 * without the mapped field, a non-string prompt) fail with a DataError naming file, line and field.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { DataError } from '../errors.ts';
import { extractHashAnswer, lastBoxed, parseNumber } from './answers.ts';

export type DatasetFormat = 'jsonl' | 'json' | 'parquet' | 'dir' | 'auto';
export type AnswerExtraction = 'none' | 'gsm8k' | 'boxed';

/** The recipe's dataset section, in code form. */
export interface DatasetSpec {
  /** file or directory; relative paths resolve against `opts.baseDir` (the recipe dir) */
  path: string;
  /** default 'auto': by extension (.jsonl/.ndjson, .json array, .parquet) or directory */
  format?: DatasetFormat;
  /** row field holding the problem text */
  promptField: string;
  /** row field holding the gold answer; absent → every row's answer is null */
  answerField?: string;
  /** how to get the gold answer out of `answerField`; default 'none' (the value itself) */
  answerExtraction?: AnswerExtraction;
  /** keep at most this many (valid) rows, in file order */
  limit?: number;
}

/** One prompt: the problem text, its gold answer (null when the dataset has none), and the raw row. */
export interface PromptRow {
  prompt: string;
  answer: string | null;
  /** every field of the source row (bigints made numbers where safe), for user rewards */
  fields: Record<string, unknown>;
}

/** A prompt row given in code (`train({ rows })`): `answer` and `fields` may be left out. */
export interface RowInput {
  prompt: string;
  /** The gold answer for accuracy rewards (a number is taken as its decimal text); none: null. */
  answer?: string | number | null;
  /** Passed to user rewards; default: the row object itself. */
  fields?: Record<string, unknown>;
}

/** Rows given in code → PromptRows; a bad row is one DataError naming its index and field. */
export function rowsFromCode(rows: readonly unknown[]): PromptRow[] {
  if (!Array.isArray(rows) || rows.length === 0)
    throw new DataError(`rows: must be a non-empty array of { prompt, answer? } (got ${describe(rows)})`);
  return rows.map((r, i) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r))
      throw new DataError(`rows[${i}]: expected an object { prompt, answer? } (got ${describe(r)})`);
    const o = r as Record<string, unknown>;
    if (typeof o['prompt'] !== 'string')
      throw new DataError(`rows[${i}]: prompt must be a string (got ${describe(o['prompt'])})`);
    const a = o['answer'];
    if (a !== undefined && a !== null && typeof a !== 'string' && !(typeof a === 'number' && Number.isFinite(a)))
      throw new DataError(`rows[${i}]: answer must be a string, a number or null (got ${describe(a)})`);
    const f = o['fields'];
    if (f !== undefined && (f === null || typeof f !== 'object' || Array.isArray(f)))
      throw new DataError(`rows[${i}]: fields must be an object (got ${describe(f)})`);
    return {
      prompt: o['prompt'],
      answer: a === undefined || a === null ? null : String(a),
      fields: (f as Record<string, unknown> | undefined) ?? { ...o },
    };
  });
}

/**
 * The provenance a run records for rows given in code (`dataset.path`): `rows:<n>:<sha256 of
 * the prompts and answers, 16 hex>`, so `--resume` with other rows names `dataset` as changed.
 */
export function rowsSource(prefix: string, rows: readonly PromptRow[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(JSON.stringify([r.prompt, r.answer]) + '\n');
  return `${prefix}${rows.length}:${h.digest('hex').slice(0, 16)}`;
}

export interface DroppedCounts {
  unparsableAnswer: number;
  missingPrompt: number;
  /** set by the prompt-length filter (src/data/prompts.ts), not by the loader */
  tooLong?: number;
}

export interface LoadedDataset {
  rows: PromptRow[];
  dropped: DroppedCounts;
  /** absolute path read */
  source: string;
}

export interface LoadOptions {
  /** directory that a relative `spec.path` is resolved against; default process.cwd() */
  baseDir?: string;
  /**
   * Extra gold-answer check (e.g. the verifier's "can I parse this gold?"): rows for which it
   * returns false are dropped and counted as unparsableAnswer.
   */
  answerCheck?: (answer: string) => boolean;
  /** Longest JSONL line accepted, in bytes (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
}

/** A raw record and where it came from, for error messages (`file:line` or `file: row i`). */
interface RawRecord {
  value: unknown;
  where: string;
}

export async function loadDataset(spec: DatasetSpec, opts: LoadOptions = {}): Promise<LoadedDataset> {
  const source = resolve(opts.baseDir ?? process.cwd(), spec.path);
  if (!existsSync(source)) {
    throw new DataError(
      `dataset ${spec.path}: not found (resolved to ${source}); fix dataset.path (relative paths start at the recipe's folder)`,
    );
  }
  if (spec.limit !== undefined && (!Number.isInteger(spec.limit) || spec.limit < 1)) {
    throw new DataError(`dataset ${source}: limit must be a positive integer (got ${spec.limit})`);
  }
  const format = detectFormat(source, spec.format ?? 'auto');
  const records: Iterable<RawRecord> =
    format === 'jsonl'
      ? readJsonl(source, opts.maxLineBytes)
      : format === 'json'
        ? readJsonArray(source)
        : format === 'dir'
          ? readJsonDir(source)
          : await readParquet(source);

  const extraction = spec.answerExtraction ?? 'none';
  const dropped: DroppedCounts = { unparsableAnswer: 0, missingPrompt: 0 };
  const rows: PromptRow[] = [];
  for (const { value, where } of records) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DataError(`${where}: expected a JSON object per row (got ${describe(value)})`);
    }
    const row = normalizeValues(value as Record<string, unknown>);
    if (!(spec.promptField in row)) {
      throw new DataError(
        `${where}: missing prompt field '${spec.promptField}' (row has: ${Object.keys(row).join(', ') || 'no fields'}); fix dataset.prompt_field`,
      );
    }
    const p = row[spec.promptField];
    if (p !== null && typeof p !== 'string') {
      throw new DataError(`${where}: prompt field '${spec.promptField}' must be a string (got ${describe(p)})`);
    }
    if (p === null || p.trim() === '') {
      dropped.missingPrompt++;
      continue;
    }

    let answer: string | null = null;
    if (spec.answerField !== undefined) {
      if (!(spec.answerField in row)) {
        throw new DataError(
          `${where}: missing answer field '${spec.answerField}' (row has: ${Object.keys(row).join(', ')}); fix dataset.answer_field`,
        );
      }
      answer = extractGold(row[spec.answerField], extraction);
      if (answer === null || (opts.answerCheck && !opts.answerCheck(answer))) {
        dropped.unparsableAnswer++;
        continue;
      }
    }
    rows.push({ prompt: p, answer, fields: row });
    if (spec.limit !== undefined && rows.length >= spec.limit) break;
  }
  return { rows, dropped, source };
}

/**
 * The gold answer string from a raw answer value, or null when it cannot be parsed:
 * numbers become their decimal text (27.0 → "27"); a list of one answer (OlympiadBench's
 * `final_answer`) is unwrapped, several are joined with ", ".
 */
export function extractGold(value: unknown, extraction: AnswerExtraction): string | null {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else if (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v) => typeof v === 'string' || typeof v === 'number')
  )
    text = value.map(String).join(', ');
  else return null;
  let out: string | null;
  switch (extraction) {
    case 'none':
      out = text.trim();
      break;
    case 'gsm8k': {
      // GSM8K golds are integers (some with commas); a marker followed by non-numbers is unusable.
      const a = extractHashAnswer(text);
      out = a !== null && parseNumber(a) !== null ? a : null;
      break;
    }
    case 'boxed':
      out = lastBoxed(text);
      break;
    default:
      throw new DataError(`dataset: answer_extraction must be none, gsm8k or boxed (got ${String(extraction)})`);
  }
  return out === null || out === '' ? null : out;
}

function detectFormat(source: string, format: DatasetFormat): Exclude<DatasetFormat, 'auto'> {
  const isDir = statSync(source).isDirectory();
  if (format !== 'auto') {
    if ((format === 'dir') !== isDir) {
      throw new DataError(
        `dataset ${source}: format '${format}' but the path is ${isDir ? 'a directory' : 'a file'}; fix dataset.format`,
      );
    }
    return format;
  }
  if (isDir) return 'dir';
  const ext = extname(source).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.parquet') return 'parquet';
  if (ext === '.json') {
    // Many ".json" files on the Hub are really JSON Lines; the first character tells.
    const head = readFileSync(source, 'utf8')
      .slice(0, 4096)
      .replace(/^\uFEFF/, '')
      .trimStart();
    return head.startsWith('[') ? 'json' : 'jsonl';
  }
  throw new DataError(
    `dataset ${source}: cannot tell the format from extension '${ext}'; set dataset.format to jsonl, json, parquet or dir`,
  );
}

function readText(file: string): string {
  return readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
}

/**
 * Longest JSONL line read (bytes). A prompt row is a few KB; a line this long is a broken or
 * hostile file (a 100 MB line used to exhaust Node's heap), refused with its file and line.
 */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * JSON Lines, read streaming in 1 MiB chunks: memory is bounded by one line (≤ maxLineBytes),
 * and reading stops once `stopAfter` records are out (dataset.limit, on rows that pass later
 * filters the caller counts — so it asks again through the generator).
 */
function* readJsonl(file: string, maxLineBytes = MAX_LINE_BYTES): Generator<RawRecord> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let parts: Buffer[] = [];
    let partBytes = 0;
    let lineNo = 1;
    let first = true;
    const emit = (bytes: Buffer): RawRecord | null => {
      let text = bytes.toString('utf8');
      if (first) text = text.replace(/^\uFEFF/, '');
      first = false;
      const line = text.trim();
      if (line === '') return null;
      try {
        return { value: JSON.parse(line), where: `${file}:${lineNo}` };
      } catch (e) {
        throw new DataError(`${file}:${lineNo}: invalid JSON (${(e as Error).message}); fix or remove that line`);
      }
    };
    const tooLong = () =>
      new DataError(
        `${file}:${lineNo}: line longer than ${maxLineBytes / 1024 / 1024} MiB; one prompt row per line is expected (is the file one JSON document? use a .json array or fix that line)`,
      );
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl === -1 || nl >= n) break;
        if (partBytes + nl - start > maxLineBytes) throw tooLong();
        const line = parts.length ? Buffer.concat([...parts, buf.subarray(start, nl)]) : buf.subarray(start, nl);
        parts = [];
        partBytes = 0;
        const rec = emit(line);
        if (rec) yield rec;
        lineNo++;
        start = nl + 1;
      }
      if (start < n) {
        partBytes += n - start;
        if (partBytes > maxLineBytes) throw tooLong();
        parts.push(Buffer.from(buf.subarray(start, n)));
      }
    }
    if (partBytes > 0) {
      const rec = emit(Buffer.concat(parts));
      if (rec) yield rec;
    }
  } finally {
    closeSync(fd);
  }
}

function readJsonArray(file: string): RawRecord[] {
  let data: unknown;
  try {
    data = JSON.parse(readText(file));
  } catch (e) {
    throw new DataError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(data)) {
    throw new DataError(
      `${file}: expected a JSON array of row objects (got ${describe(data)}); use JSON Lines or an array`,
    );
  }
  return data.map((value, i) => ({ value, where: `${file}: row ${i}` }));
}

/** Every *.json file under `dir` (recursively, sorted by path), one row object per file. */
function readJsonDir(dir: string): RawRecord[] {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) files.push(p);
    }
  };
  walk(dir);
  if (files.length === 0)
    throw new DataError(
      `dataset ${dir}: directory holds no .json files; point dataset.path at a file or a folder of one-object .json files`,
    );
  // Natural order within a folder (2.json before 10.json), so the row order is stable and readable.
  files.sort(new Intl.Collator('en', { numeric: true }).compare);
  return files.map((f) => {
    try {
      return { value: JSON.parse(readText(f)), where: f };
    } catch (e) {
      throw new DataError(`${f}: invalid JSON (${(e as Error).message})`);
    }
  });
}

async function readParquet(file: string): Promise<RawRecord[]> {
  const { parquetReadObjects } = await import('hyparquet');
  const buf = readFileSync(file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: ab });
  } catch (e) {
    throw new DataError(`${file}: not a readable Parquet file (${(e as Error).message})`);
  }
  return rows.map((value, i) => ({ value, where: `${file}: row ${i}` }));
}

/** Parquet int64 columns arrive as bigint; make them numbers where exact (JSON-safe for logs). */
function normalizeValues(row: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'bigint') {
      out ??= { ...row };
      out[k] = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    }
  }
  return out ?? row;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `a ${typeof v}`;
}
