/**
 * @module cli/commands/verify
 * `gpg-rl verify --input CASES.jsonl [--grader math-verify|qwen] [--timeout-ms N] --out OUT.jsonl`:
 * grades each line `{"gold": …, "pred": …}` (other fields ignored; `pred` may be a whole model
 * answer) in the sandboxed verifier pool and writes, in input order, `{"gold","pred","equal"}`
 * plus `"error"` when a comparison failed or timed out. Exit 0 once the file is processed, even
 * when lines failed; an unreadable or malformed input file is a one-line error, exit 1, and no
 * output file is written (the output appears atomically, by rename).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../io/atomic.ts';
import { basename, dirname, join } from 'node:path';
import type { Command } from '../main.ts';
import { intFlag, parseFlags, requireFlag, usageText } from '../options.ts';
import type { FlagSpec } from '../options.ts';
import { DataError, UsageError } from '../../errors.ts';
import { VerifierPool } from '../../rewards/math-verify/pool.ts';
import type { Grader } from '../../rewards/math-verify/pool.ts';

const FLAGS: Record<string, FlagSpec> = {
  input: { type: 'string', help: 'JSONL file, one {"gold": ..., "pred": ...} per line' },
  out: {
    type: 'string',
    help: 'JSONL file to write, one {"gold","pred","equal"[,"error"]} per input line, same order',
  },
  grader: { type: 'string', help: 'math-verify (default) or qwen (Qwen2.5-Math evaluation semantics)' },
  'timeout-ms': { type: 'string', help: 'time limit per comparison in ms (default 1000)' },
  workers: { type: 'string', help: 'verifier worker threads (default min(2, CPUs))' },
};

interface Case {
  gold: string;
  pred: string;
  /** The values as given (a number stays a number in the output). */
  raw: { gold: unknown; pred: unknown };
}

/** Reads and validates every line before any work starts, so a bad file fails without output. */
export function readCases(file: string): Case[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(
      `${file}: cannot read input (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass an existing JSONL file to --input`,
    );
  }
  const cases: Case[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new DataError(
        `${file}:${i + 1}: not valid JSON; each line must be an object like {"gold": "1/2", "pred": "0.5"}`,
      );
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new DataError(
        `${file}:${i + 1}: expected a JSON object with "gold" and "pred", got ${Array.isArray(row) ? 'an array' : typeof row}`,
      );
    const r = row as Record<string, unknown>;
    const field = (k: 'gold' | 'pred'): string => {
      const v = r[k];
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      throw new DataError(
        `${file}:${i + 1}: field "${k}" must be a string or number (got ${v === undefined ? 'nothing' : JSON.stringify(v).slice(0, 40)})`,
      );
    };
    cases.push({ gold: field('gold'), pred: field('pred'), raw: { gold: r['gold'], pred: r['pred'] } });
  }
  return cases;
}

export const command: Command = {
  summary: 'grade {gold, pred} pairs from a JSONL file with the sandboxed maths verifier',
  usage: usageText(
    'verify',
    '--input CASES.jsonl --out OUT.jsonl [--grader math-verify|qwen] [--timeout-ms N]',
    FLAGS,
    'Each output line is {"gold","pred","equal"} plus "error" when the comparison failed or timed out (then equal is false).',
  ),
  async run(argv: string[]): Promise<number> {
    const p = parseFlags('verify', argv, FLAGS);
    if (p.positionals.length)
      throw new UsageError(
        `unexpected argument "${p.positionals[0]}" for \`gpg-rl verify\`; pass files with --input and --out`,
      );
    const input = requireFlag('verify', p, 'input');
    const out = requireFlag('verify', p, 'out');
    const grader = (p.flags['grader'] ?? 'math-verify') as string;
    if (grader !== 'math-verify' && grader !== 'qwen')
      throw new UsageError(`--grader must be math-verify or qwen (got ${grader})`);
    const timeoutMs = intFlag(p, 'timeout-ms', 1000, 1);
    const workers = intFlag(p, 'workers', 0, 0) || undefined;
    const cases = readCases(input);

    const pool = new VerifierPool({ grader: grader as Grader, timeoutMs, workers });
    let results;
    try {
      results = await pool.verifyMany(cases);
    } finally {
      await pool.close();
    }
    const lines = cases.map((c, k) => {
      const r = results[k]!;
      return JSON.stringify(
        r.error !== undefined ? { ...c.raw, equal: false, error: r.error } : { ...c.raw, equal: r.equal },
      );
    });
    try {
      writeFileAtomic(out, lines.length ? lines.join('\n') + '\n' : '');
    } catch (e) {
      throw new DataError(
        `${out}: cannot write output (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check that the folder exists and is writable`,
      );
    }
    const nEq = results.filter((r) => r.equal).length;
    const nErr = results.filter((r) => r.error !== undefined).length;
    process.stderr.write(`verify: ${cases.length} pairs, ${nEq} equal, ${nErr} errors → ${out}\n`);
    return 0;
  },
};
