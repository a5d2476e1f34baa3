/**
 * @module eval/table
 * The results table in the layout of the GPG paper's tables (arXiv 2504.02546, Tables 1–3):
 * a row per model and metric, columns Average, AIME24, MATH-500, AMC23, Minerva, OlympiadBench,
 * scores in percent with one decimal. Average is the unweighted mean over the benchmarks shown,
 * as in the paper. Only the evaluated benchmarks get a column, in the paper's order. Markdown.
 * When some benchmark was graded on fewer problems than it has (given completions with
 * `--allow-partial`), a `(graded/total)` row says so under the scores.
 */
import { BENCHMARKS, type BenchmarkId } from './benchmarks.ts';

export interface TableScore {
  pass1: number;
  passK: number;
}

/** Problems graded out of the problems selected. */
export interface Coverage {
  graded: number;
  total: number;
}

export interface TableInput {
  model: string;
  /** pass@k's k; a pass@k row is added when k > 1. */
  k: number;
  benchmarks: Partial<Record<BenchmarkId, TableScore>>;
  average: TableScore;
  /** Per benchmark; a coverage row is added when any benchmark has graded < total. */
  coverage?: Partial<Record<BenchmarkId, Coverage>>;
}

const pct = (x: number): string => (100 * x).toFixed(1);

export function formatTable(t: TableInput): string {
  const cols = BENCHMARKS.filter((b) => t.benchmarks[b.id] !== undefined);
  const name = t.model.replace(/\|/g, '\\|');
  const lines = [
    `| Model | Average | ${cols.map((c) => c.label).join(' | ')} |`,
    `| :--- | ---: | ${cols.map(() => '---:').join(' | ')} |`,
  ];
  const row = (label: string, pick: (s: TableScore) => number): string =>
    `| ${name} (${label}) | ${pct(pick(t.average))} | ${cols.map((c) => pct(pick(t.benchmarks[c.id]!))).join(' | ')} |`;
  lines.push(row(t.k > 1 ? `pass@1, avg of ${t.k}` : 'pass@1', (s) => s.pass1));
  if (t.k > 1) lines.push(row(`pass@${t.k}`, (s) => s.passK));
  const cov = t.coverage;
  if (cov && cols.some((c) => cov[c.id] !== undefined && cov[c.id]!.graded < cov[c.id]!.total)) {
    const of = (c: Coverage | undefined): string => (c ? `${c.graded}/${c.total}` : '-');
    const sum = cols.reduce(
      (a, c) => ({ graded: a.graded + (cov[c.id]?.graded ?? 0), total: a.total + (cov[c.id]?.total ?? 0) }),
      { graded: 0, total: 0 },
    );
    lines.push(`| ${name} (graded/total) | ${of(sum)} | ${cols.map((c) => of(cov[c.id])).join(' | ')} |`);
  }
  return lines.join('\n');
}
