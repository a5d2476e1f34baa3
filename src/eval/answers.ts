/**
 * @module eval/answers
 * Gold answers of each benchmark, read from that set's own fields (../shared/data/README.md):
 * AIME24 `answer` (string), MATH-500 `answer`, AMC23 `answer` (a JSON number such as 27.0),
 * Minerva the last `\boxed{}` of `solution`, OlympiadBench `final_answer` (a list of strings,
 * joined with ", " when it has several), GSM8K the text after `#### `, MATH train the last
 * `\boxed{}` of `solution`, the DeepScaleR MATH copy `answer`.
 */
import { lastBoxed } from '../rewards/math-verify/extract.ts';

export type Benchmark =
  'aime24' | 'math500' | 'amc23' | 'minerva' | 'olympiadbench' | 'gsm8k' | 'math_train' | 'math_deepscaler';

export { lastBoxed };

function str(v: unknown): string | null {
  if (typeof v === 'string') return v.trim() === '' ? null : v.trim();
  // AMC23 stores 27.0 as a JSON number: String(27) is "27".
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/** The gold answer of one row of `benchmark`, or null when the row has none. */
export function goldAnswer(benchmark: Benchmark, row: Record<string, unknown>): string | null {
  switch (benchmark) {
    case 'aime24':
    case 'math500':
    case 'math_deepscaler':
      return str(row['answer']);
    case 'amc23':
      return str(row['answer']);
    case 'minerva':
    case 'math_train': {
      const sol = str(row['solution']);
      return sol === null ? null : str(lastBoxed(sol));
    }
    case 'olympiadbench': {
      const fa = row['final_answer'];
      if (Array.isArray(fa)) {
        const parts = fa.map(str).filter((x): x is string => x !== null);
        return parts.length ? parts.join(', ') : null;
      }
      return str(fa);
    }
    case 'gsm8k': {
      const a = str(row['answer']);
      if (a === null) return null;
      const i = a.lastIndexOf('####');
      return i < 0 ? null : str(a.slice(i + 4).replace(/,/g, ''));
    }
  }
}
