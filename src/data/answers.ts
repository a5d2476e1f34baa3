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
  const rest = text.slice(at + 4).split('\n', 1)[0]!.replace(/,/g, '').trim();
  return rest.length > 0 ? rest : null;
}

/**
 * The content of the last `\boxed{…}` (or `\fbox{…}`) in `text`, braces balanced, as the MATH
 * dataset's `last_boxed_only_string` does; also the brace-less `\boxed 5` form (up to the next `$`).
 * Returns null when there is none or its braces never close.
 */
export function lastBoxed(text: string): string | null {
  const at = Math.max(text.lastIndexOf('\\boxed'), text.lastIndexOf('\\fbox'));
  if (at < 0) return null;
  let i = at + (text.startsWith('\\boxed', at) ? 6 : 5);
  if (text[i] === ' ') {
    // `\boxed 5$`: the argument runs to the next `$` (MATH's own convention).
    const rest = text.slice(i + 1).split('$', 1)[0]!.trim();
    return rest.length > 0 ? rest : null;
  }
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (text[i] !== '{') return null;
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') { j++; continue; } // `\{` and `\}` are literal braces, not grouping
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return text.slice(i + 1, j).trim();
    }
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
  s = s.replace(/\\[!,;: ]/g, '');                 // LaTeX spacing, incl. `1\,000`
  s = s.replace(/(\d),(?=\d{3}(?!\d))/g, '$1');     // thousands commas only, not tuples
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
