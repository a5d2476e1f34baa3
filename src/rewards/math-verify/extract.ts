/**
 * @module rewards/math-verify/extract
 * Finds the answer inside a model's output, the way Math-Verify's extraction configs do
 * (huggingface/Math-Verify `parser.py`: boxed → "final answer is" → LaTeX → number, first
 * strategy in priority order that finds something wins). Two orders:
 *   - DEFAULT_PRIORITY (Math-Verify's default `parse`, `try_extract_without_anchor=True`): also
 *     the whole text when it is itself an answer, the last LaTeX group, the last number — for a
 *     bare answer (`gpg-rl verify`'s `pred`) and for benchmark evaluation;
 *   - ANCHORED_PRIORITY (the GPG/TRL accuracy reward, `try_extract_without_anchor=False`): only
 *     `\boxed{}`, `<answer>…</answer>` and "final answer is …". Unanchored fallbacks in a
 *     training reward pay for "First, 3+4 = 7. Next we need…" when the gold is 7.
 * Several boxed answers joined by connectives are one list (latex-env.ts).
 */
import { braceArg, lastBoxed } from '../../data/answers.ts';
import { boxes, lastGroup, mathEnvs } from './latex-env.ts';

export { braceArg, lastBoxed };

/** The extraction strategies, tried in the order given. */
export type ExtractionKind = 'boxed' | 'answer_tag' | 'final_answer' | 'whole' | 'last_latex' | 'last_number';

/** Default order for model predictions and bare answers (unanchored fallbacks included). */
export const DEFAULT_PRIORITY: readonly ExtractionKind[] = [
  'boxed',
  'answer_tag',
  'final_answer',
  'whole',
  'last_latex',
  'last_number',
];

/** Anchored order for training rewards: an answer counts only where the model marked it. */
export const ANCHORED_PRIORITY: readonly ExtractionKind[] = ['boxed', 'answer_tag', 'final_answer'];

/** An extracted answer, which strategy found it, and whether it was plain text (no LaTeX delimiters around it). */
export interface Extracted {
  answer: string;
  kind: ExtractionKind;
  plain: boolean;
  /**
   * When several boxed answers were joined into one list, the last one alone: datasets such as
   * MATH take the last `\boxed{}` as the answer ("$\boxed{30^\circ}$ or $\boxed{150^\circ}$" has gold
   * 150°), so the verifier also accepts that reading, exactly as a last-boxed grader would.
   */
  lastBoxed?: string;
}

/** The boxed answer of `text`: the last `\boxed{}`, together with the boxed answers joined to it by connectives. */
export function boxedAnswer(text: string): string | null {
  return lastGroup(text, boxes(text));
}

function lastAnswerTag(text: string): string | null {
  const close = text.lastIndexOf('</answer>');
  if (close < 0) return null;
  const open = text.lastIndexOf('<answer>', close);
  if (open < 0) return null;
  const body = text.slice(open + 8, close);
  return boxedAnswer(body) ?? stripMathDelims(body.trim());
}

const ANCHOR = /final answer.{0,100}?\s+is\s*:?|final answer\s*:|the answer is\s*:?|answer\s*:/gi;

/** "The final answer is $X$" / "Answer: X": after the last such phrase, up to the end of its line or sentence. */
function finalAnswer(text: string): { answer: string; plain: boolean } | null {
  let last: RegExpExecArray | null = null;
  ANCHOR.lastIndex = 0;
  for (let m = ANCHOR.exec(text); m; m = ANCHOR.exec(text)) last = m;
  if (!last) return null;
  const rest = text.slice(last.index + last[0].length, last.index + last[0].length + 4000);
  const bx = boxedAnswer(rest);
  if (bx !== null) return { answer: bx, plain: false };
  const envs = mathEnvs(rest);
  if (envs.length && /^\s*$/.test(rest.slice(0, envs[0]!.start))) {
    // The statement starts with math: that environment (and any joined to it by "and", ",").
    let k = 1;
    while (k < envs.length && /^\s*(,|and|or|,\s*and|,\s*or)\s*$/i.test(rest.slice(envs[k - 1]!.end, envs[k]!.start)))
      k++;
    return { answer: lastGroup(rest, envs.slice(0, k))!, plain: false };
  }
  let line = rest.split('\n')[0]!;
  // End of sentence: ". " or a final "." (a decimal point is followed by a digit).
  const stop = /\.(\s|$)/.exec(line);
  if (stop) line = line.slice(0, stop.index);
  line = line.trim();
  if (line === '') return null;
  if (isBareAnswer(line)) return { answer: line, plain: !/\$|\\\(|\\\[/.test(line) };
  const inLine = mathEnvs(line);
  if (inLine.length) return { answer: lastGroup(line, inLine)!, plain: false };
  const n = lastNumber(line);
  return n !== null ? { answer: n, plain: true } : { answer: line, plain: true };
}

// A number as Math-Verify's expression extraction reads it: not glued to a word before it
// (`AZYUK2A` holds no answer), thousands groups by `,` or a space after a 1–3 digit head that
// does not start with 0, else a decimal point or a decimal comma (`2,74`, `0,111`), or `.5`;
// optionally a fraction `3/4`.
const NUMBER = /(?<![A-Za-z0-9_.])-?(?:[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?(?![\d,])|\d+(?:[.,]\d+)?|\.\d+)(?:\/\d+)?/g;

/** Last number in the text (`-1,234.5`, `1 000`, `2,74`, `3/4`) as a plain decimal string (`-1234.5`, `1000`, `2.74`). */
export function lastNumber(text: string): string | null {
  let last: string | null = null;
  NUMBER.lastIndex = 0;
  for (let m = NUMBER.exec(text); m; m = NUMBER.exec(text)) last = m[0];
  if (last === null) return null;
  if (/^-?[1-9]\d{0,2}(?:[ ,]\d{3})+/.test(last) && !/^-?\d+,\d{1,2}$|^-?\d+,\d{4,}$/.test(last))
    return last.replace(/[ ,]/g, '');
  return last.replace(',', '.');
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
  return (
    !/[a-zA-Z]{3,}/.test(stripped) && !/(^|[^a-zA-Z])[a-zA-Z]{2}\s+\S/.test(stripped) && !/[.!?:]\s+\S/.test(stripped)
  );
}

/** `s` without the math delimiters around it (and without stray unescaped `$` inside, as in `\boxed{$x$, $y$}`). */
export function stripMathDelims(s: string): string {
  let t = s.trim();
  for (;;) {
    const m = /^(\$\$|\$|\\\[|\\\()([\s\S]*)(\$\$|\$|\\\]|\\\))$/.exec(t);
    if (!m) return t.replace(/(?<!\\)\$/g, ' ').trim();
    t = m[2]!.trim();
  }
}

/** Like extractAnswer, also telling which strategy found the answer and whether it was plain text. */
export function extractAnswerDetail(
  text: string,
  priority: readonly ExtractionKind[] = DEFAULT_PRIORITY,
): Extracted | null {
  for (const kind of priority) {
    let r: string | null = null;
    let plain = false;
    switch (kind) {
      case 'boxed':
        r = boxedAnswer(text);
        break;
      case 'answer_tag':
        r = lastAnswerTag(text);
        break;
      case 'final_answer': {
        const f = finalAnswer(text);
        if (f) [r, plain] = [f.answer, f.plain];
        break;
      }
      case 'whole': {
        const w = stripMathDelims(text);
        if (isBareAnswer(w)) [r, plain] = [w, w === text.trim()];
        break;
      }
      case 'last_latex':
        r = lastGroup(text, mathEnvs(text));
        break;
      case 'last_number':
        [r, plain] = [lastNumber(text), true];
        break;
    }
    if (r !== null && r.trim() !== '') {
      const inner = r.includes('\\boxed') || r.includes('\\fbox') ? boxedAnswer(r) : null;
      const out: Extracted = { answer: stripMathDelims(inner ?? r), kind, plain: plain && inner === null };
      if (kind === 'boxed') {
        const all = boxes(text);
        const last = all[all.length - 1]?.body;
        if (last !== undefined && all.length > 1 && last !== r) out.lastBoxed = stripMathDelims(last);
      }
      return out;
    }
  }
  return null;
}

/**
 * The answer in `text` by the first strategy of `priority` that finds one, or null.
 * The returned string is raw LaTeX (normalisation happens later).
 */
export function extractAnswer(text: string, priority: readonly ExtractionKind[] = DEFAULT_PRIORITY): string | null {
  return extractAnswerDetail(text, priority)?.answer ?? null;
}

/** A gold answer and whether it was plain text: its boxed answer, else its LaTeX group(s), else the whole string. */
export function extractGoldDetail(gold: string): { answer: string; plain: boolean } {
  const b = boxedAnswer(gold);
  if (b !== null) return { answer: stripMathDelims(b), plain: false };
  const envs = mathEnvs(gold);
  if (envs.length) return { answer: lastGroup(gold, envs)!.trim(), plain: false };
  return { answer: stripMathDelims(gold), plain: !/\$|\\\(|\\\[/.test(gold) };
}

/** A gold answer: its boxed answer when it has one, else its math (or the whole string, without `$` delimiters). */
export function extractGold(gold: string): string {
  return extractGoldDetail(gold).answer;
}
