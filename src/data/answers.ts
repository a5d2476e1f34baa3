/**
 * @module data/answers
 * Answer extraction shared by the dataset loader (gold answers) and the rewards (predictions):
 * GSM8K's `#### 72` marker, the last `\boxed{…}` with balanced braces, the last number in a text,
 * and a numeric parser for the simple forms those yield (integers, decimals, `1,234`, `3/4`,
 * `\frac{3}{4}`, `$5`, `50\%`).
 *
 * (src/eval/answers.ts, written for the verifier, may grow a `lastBoxed` too; this one is the
 * data layer's own so the loader does not depend on the eval layer.)
 */

/**
 * The text after the LAST `####` (GSM8K's final-answer marker), up to the end of that line, trimmed,
 * with thousands commas removed as the official GSM8K code does (`.replace(",", "")`).
 * Returns null when there is no marker or nothing follows it.
 */
export function extractHashAnswer(text: string): string | null {
  const at = text.lastIndexOf('####');
  if (at < 0) return null;
  const rest = text
    .slice(at + 4)
    .split('\n', 1)[0]!
    .replace(/,/g, '')
    .trim();
  return rest.length > 0 ? rest : null;
}

/**
 * The brace-balanced argument starting at `text[open]` (which must be `{`), without the braces,
 * or null when unbalanced. `\{` and `\}` are literal braces. Linear in the argument length.
 */
export function braceArg(text: string, open: number): { body: string; end: number } | null {
  if (text[open] !== '{') return null;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return { body: text.slice(open + 1, i), end: i + 1 };
  }
  return null;
}

/**
 * The content of the last `\boxed{…}` / `\fbox{…}` in `text` (balanced braces, as the MATH
 * dataset's `last_boxed_only_string`; an unbalanced last one falls back to the one before), or
 * the brace-less `\boxed 5` form (the token up to the next space or `$`). Null when there is none.
 * A `\boxed{}` nested in another yields the outer one's content. The one implementation used by
 * datasets, rewards, the verifier and evaluation.
 */
export function lastBoxed(text: string): string | null {
  let at = text.length;
  while (at > 0) {
    const b = text.lastIndexOf('\\boxed', at - 1);
    const f = text.lastIndexOf('\\fbox', at - 1);
    const i = Math.max(b, f);
    if (i < 0) return null;
    let j = i + (i === b ? 6 : 5);
    const spaced = text[j] === ' ';
    while (text[j] === ' ') j++;
    if (text[j] === '{') {
      const arg = braceArg(text, j);
      if (arg) return arg.body.trim();
    } else if (spaced) {
      const m = /^[^\s$]+/.exec(text.slice(j));
      if (m) return m[0];
    }
    at = i;
  }
  return null;
}

// A number token: `1,234,567.5` (comma groups of exactly three), `-12.5`, `.5`.
const NUMBER_RE = /-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)/g;

/** The last number token in `text` with thousands commas removed (e.g. "1,000"→"1000"), or null. */
export function lastNumber(text: string): string | null {
  const all = text.match(NUMBER_RE);
  return all ? all[all.length - 1]!.replace(/,/g, '') : null;
}

/** The first number token in `text` with thousands commas removed, or null. */
export function firstNumber(text: string): string | null {
  const m = text.match(NUMBER_RE);
  return m ? m[0]!.replace(/,/g, '') : null;
}

const PLAIN_NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$/i;

/**
 * Parses an answer string that is a single number in one of the simple forms maths answers take:
 * `42`, `-3.5`, `1,234`, `$5`, `\$5`, `50\%`, `3/4`, `\frac{3}{4}`, `\dfrac{-1}{2}`, `-\frac12`,
 * `\text{18}`, `5.` (trailing period). Anything else (expressions, units, tuples) gives null.
 */
export function parseNumber(text: string): number | null {
  let s = text.trim();
  s = s.replace(/\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}/g, '$1');
  s = s.replace(/\\[!,;: ]/g, ''); // LaTeX spacing, incl. `1\,000`
  s = s.replace(/(\d),(?=\d{3}(?!\d))/g, '$1'); // thousands commas only, not tuples
  s = s.replace(/\\?\$/g, '').replace(/\\?%$/, '').replace(/\s+/g, '').replace(/\.$/, '');
  s = s.replace(/^\\left\(|\\right\)$/g, '');
  if (PLAIN_NUMBER.test(s)) return Number(s);
  const frac = /^([-+]?)\\[dt]?frac(?:\{([-+]?\d+(?:\.\d+)?)\}\{([-+]?\d+(?:\.\d+)?)\}|(\d)(\d))$/.exec(s);
  if (frac) {
    const num = Number(frac[2] ?? frac[4]);
    const den = Number(frac[3] ?? frac[5]);
    if (den === 0) return null;
    return (frac[1] === '-' ? -1 : 1) * (num / den);
  }
  const slash = /^([-+]?\d+(?:\.\d+)?)\/([-+]?\d+(?:\.\d+)?)$/.exec(s);
  if (slash) {
    const den = Number(slash[2]);
    return den === 0 ? null : Number(slash[1]) / den;
  }
  return null;
}

/** Numeric equality with a relative tolerance of 1e-9 (so 0.1+0.2 equals 0.3, 1e6 equals 1000000). */
export function numbersEqual(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}
