/**
 * @module rewards/math-verify/extract
 * Finds the answer inside a model's output, the way Math-Verify's extraction configs do
 * (huggingface/Math-Verify `parser.py`: boxed → "final answer is" → last LaTeX → last number,
 * first match in priority order wins). The order is configurable; a bare answer such as
 * `(1,2)` or a whole matrix is taken whole before the last-number fallback, so `(1,2)` never
 * collapses to `2`.
 */

/** The extraction strategies, tried in the order given. */
export type ExtractionKind = 'boxed' | 'answer_tag' | 'final_answer' | 'whole' | 'last_latex' | 'last_number';

/** Default order for model predictions. */
export const DEFAULT_PRIORITY: readonly ExtractionKind[] = ['boxed', 'answer_tag', 'final_answer', 'whole', 'last_latex', 'last_number'];

import { braceArg, lastBoxed } from '../../data/answers.ts';

export { braceArg, lastBoxed };

function lastAnswerTag(text: string): string | null {
  const close = text.lastIndexOf('</answer>');
  if (close < 0) return null;
  const open = text.lastIndexOf('<answer>', close);
  if (open < 0) return null;
  const body = text.slice(open + 8, close);
  return lastBoxed(body) ?? body.trim();
}

/** "The final answer is $X$" / "Answer: X": the last such statement, up to the end of its line or sentence. */
function finalAnswer(text: string): string | null {
  const re = /(?:final answer is|the answer is|answer\s*:)\s*:?\s*/gi;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) last = m;
  if (!last) return null;
  let rest = text.slice(last.index + last[0].length);
  const bx = lastBoxed(rest);
  if (bx !== null) return bx;
  const math = /^\s*(\$\$?|\\\[|\\\()/.exec(rest);
  if (math) {
    const closeTok = math[1] === '$$' ? '$$' : math[1] === '$' ? '$' : math[1] === '\\[' ? '\\]' : '\\)';
    const start = math[0].length;
    const end = rest.indexOf(closeTok, start);
    if (end > start) return rest.slice(start, end);
  }
  rest = rest.split('\n')[0]!;
  // End of sentence: ". " or a final "." (a decimal point is followed by a digit).
  const stop = /\.(\s|$)/.exec(rest);
  if (stop) rest = rest.slice(0, stop.index);
  rest = rest.trim();
  return rest === '' ? null : rest;
}

/** Last `$…$`, `$$…$$`, `\[…\]` or `\(…\)` segment. */
function lastLatex(text: string): string | null {
  let best: { at: number; body: string } | null = null;
  const res = [/\$\$([^$]+)\$\$/g, /\\\[([\s\S]+?)\\\]/g, /\\\(([\s\S]+?)\\\)/g, /(?<![\\$])\$([^$]+)\$/g];
  for (const re of res) {
    for (let m = re.exec(text); m; m = re.exec(text)) if (!best || m.index > best.at) best = { at: m.index, body: m[1]! };
  }
  return best ? best.body.trim() : null;
}

/** Last number in the text (`-1,234.5`, `3/4`), thousands separators dropped. */
export function lastNumber(text: string): string | null {
  const re = /-?\d+(?:,\d{3})*(?:\.\d+)?(?:\/\d+)?|-?\.\d+/g;
  let last: string | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) last = m[0];
  return last === null ? null : last.replace(/,/g, '');
}

/**
 * Whether the whole text is itself an answer (`(1,2)`, `x = 3`, a matrix, `\frac{1}{2}`), not
 * prose: no word of three or more letters outside LaTeX commands, `\text{}` and environments.
 */
export function isBareAnswer(text: string): boolean {
  const t = text.trim();
  if (t === '' || t.length > 2000) return false;
  // One token ("Evelyn", "(1,2)") is an answer by itself.
  if (!/\s/.test(t) && t.length <= 60) return true;
  const stripped = t
    .replace(/(^|\s)(?:or|and)(?=\s)/g, ' ')
    .replace(/\\(?:begin|end)\{[a-zA-Z*]+\}(\{[a-z|]*\})?/g, ' ')
    .replace(/\\(?:text|textbf|mathrm|mbox|operatorname|mathbf)\{[^{}]*\}/g, ' ')
    .replace(/\\[a-zA-Z]+/g, ' ');
  // Prose has words: any run of 3+ letters, or a 2-letter word followed by more text ("so 27").
  return !/[a-zA-Z]{3,}/.test(stripped) && !/(^|[^a-zA-Z])[a-zA-Z]{2}\s+\S/.test(stripped) && !/[.!?:]\s+\S/.test(stripped);
}

function stripMathDelims(s: string): string {
  let t = s.trim();
  for (;;) {
    const m = /^(\$\$|\$|\\\[|\\\()([\s\S]*)(\$\$|\$|\\\]|\\\))$/.exec(t);
    if (!m) return t;
    t = m[2]!.trim();
  }
}

/**
 * The answer in `text` by the first strategy of `priority` that finds one, or null.
 * The returned string is raw LaTeX (normalisation happens later).
 */
export function extractAnswer(text: string, priority: readonly ExtractionKind[] = DEFAULT_PRIORITY): string | null {
  for (const kind of priority) {
    let r: string | null = null;
    switch (kind) {
      case 'boxed':
        r = lastBoxed(text);
        break;
      case 'answer_tag':
        r = lastAnswerTag(text);
        break;
      case 'final_answer':
        r = finalAnswer(text);
        break;
      case 'whole': {
        const w = stripMathDelims(text);
        r = isBareAnswer(w) ? w : null;
        break;
      }
      case 'last_latex':
        r = lastLatex(text);
        break;
      case 'last_number':
        r = lastNumber(text);
        break;
    }
    if (r !== null && r.trim() !== '') return stripMathDelims(r);
  }
  return null;
}

/** A gold answer: its last `\boxed{}` when it has one, else the whole string (without `$` delimiters). */
export function extractGold(gold: string): string {
  return stripMathDelims(lastBoxed(gold) ?? gold);
}
