/**
 * @module rewards/math-verify/normalize
 * String normalisation of an extracted answer before it is parsed, following the list in
 * Math-Verify's `latex_normalization` (huggingface/Math-Verify `parser.py`): `\dfrac`/`\tfrac`,
 * `\left`/`\right`, `\text{…}` units, `^\circ`, `\%`, `\$`, thousands separators, `\frac12`
 * shorthand, trailing periods, spacing commands. The result is still LaTeX.
 *
 * Also: `\cfrac`; `\!` removed (`11,\! 111` is one number); `>=`/`<=`/`!=`; a doubled
 * backslash before a command (`\\le`, `\\frac`, an escaping slip in gold strings); `...` as
 * `\ldots` (an ellipsis is part of a list, not punctuation); `)or(` between brackets; thousands
 * separators only when the first group starts with 1–9 (`0,111` is not 111), also with spaces
 * (`1 000`).
 */

/** Unit words dropped after a number (`5 cm`, `12\text{ inches}`); Math-Verify strips units the same way. */
const UNITS = [
  'degrees?',
  'cm',
  'mm',
  'km',
  'm',
  'meters?',
  'centimeters?',
  'kilometers?',
  'inch(?:es)?',
  'feet',
  'foot',
  'ft',
  'yards?',
  'miles?',
  'units?',
  'square units',
  'sq units',
  'cubic units',
  'dollars?',
  'cents?',
  'hours?',
  'minutes?',
  'seconds?',
  'days?',
  'weeks?',
  'years?',
  'mph',
  'kg',
  'g',
  'grams?',
  'pounds?',
  'lbs?',
  'liters?',
  'ml',
  'points?',
  'people',
  'students?',
  'ways',
  'times',
  'percentage',
  'percent',
  'pct',
];
const UNIT_RE = new RegExp(`(\\d|\\})\\s*(?:square |cubic )?(?:${UNITS.join('|')})(?:\\^\\{?[23]\\}?)?\\s*$`, 'i');

/** Text-like commands whose argument is words: units are removed, `or`/`and` kept as separators. */
const TEXT_CMD = /\\(?:text|textbf|textit|textnormal|mbox|mathrm)\s*\{([^{}]*)\}(?:\^\{?[23]\}?)?/g;

/** Rewrites `\frac12`, `\frac1{x}`, `\frac{x}2`, `\sqrt2` into braced form. */
function braceShorthand(s: string): string {
  return s
    .replace(/\\frac\s*(\d)\s*(\d)/g, '\\frac{$1}{$2}')
    .replace(/\\frac\s*(\d)\s*\{/g, '\\frac{$1}{')
    .replace(/\\frac\s*\{([^{}]*)\}\s*(\d)/g, '\\frac{$1}{$2}')
    .replace(/\\frac\s*([a-zA-Z])\s*([a-zA-Z\d])/g, '\\frac{$1}{$2}')
    .replace(/\\sqrt\s*(\d+|[a-zA-Z])(?![\w{])/g, '\\sqrt{$1}');
}

/** Normalised LaTeX of one extracted answer (idempotent). */
export function normalizeAnswer(input: string): string {
  let s = input.trim();
  s = s.replace(/\r?\n/g, ' ');
  // A doubled backslash before a command is an escaping slip (`\\le`), not a line break.
  s = s.replace(
    /(?<!\\)\\\\(?=(?:le|ge|leq|geq|neq|ne|lt|gt|frac|dfrac|tfrac|left|right|sqrt|pi|infty|cdot|times|text|pm|cup|boxed)(?![a-zA-Z]))/g,
    '\\',
  );
  // `\!` is a negative thin space: `11,\! 111` is the number 11111.
  s = s.replace(/(\d),\s*\\!\s*(?=\d)/g, '$1').replace(/\\!/g, '');
  s = s.replace(/>=/g, '\\ge ').replace(/<=/g, '\\le ').replace(/!=/g, '\\ne ');
  s = s.replace(/\.{3,}/g, '\\ldots ');
  // Delimiters and spacing.
  s = s.replace(/\\displaystyle|\\limits|\\nolimits/g, '');
  s = s.replace(/\\left\s*\\?\.|\\right\s*\\?\./g, '');
  s = s.replace(/\\left\s*|\\right\s*|\\bigl|\\bigr|\\Bigl|\\Bigr|\\big|\\Big/g, '');
  s = s
    .replace(/\\lbrace/g, '\\{')
    .replace(/\\rbrace/g, '\\}')
    .replace(/\\lbrack/g, '[')
    .replace(/\\rbrack/g, ']');
  s = s.replace(/\\langle/g, '\\langle ').replace(/\\rangle/g, '\\rangle ');
  s = s.replace(/(?<!\\)\\[,;:> ]|\\q?quad|~/g, ' ');
  // Fractions, binomials, style commands.
  s = s.replace(/\\[dtc]frac/g, '\\frac').replace(/\\[dt]binom/g, '\\binom');
  s = s.replace(/\\(?:mathbf|boldsymbol|bm|mathit|mathsf)\s*\{([^{}]*)\}/g, '$1');
  s = s.replace(/\\(?:emph|underline)\s*\{([^{}]*)\}/g, '$1');
  // Relations: one spelling each.
  s = s
    .replace(/\\leqslant|\\leq(?![a-z])|\\le(?![a-z])|≤/g, '\\le ')
    .replace(/\\geqslant|\\geq(?![a-z])|\\ge(?![a-z])|≥/g, '\\ge ');
  s = s
    .replace(/\\neq|\\ne(?![a-z])/g, '\\ne ')
    .replace(/\\lt(?![a-z])/g, '<')
    .replace(/\\gt(?![a-z])/g, '>');
  s = s
    .replace(/\\varnothing/g, '\\emptyset')
    .replace(/\\infin(?![a-z])|∞/g, '\\infty')
    .replace(/\\cup(?![a-z])|∪/g, '\\cup ');
  s = s.replace(/\\dots|\\ldots|\\cdots/g, '\\ldots');
  // An answer that is only text (`\text{Evelyn}`, `\text{(B)}`) is the text itself.
  const only = /^\\(?:text|textbf|textit|textnormal|mbox|mathrm)\s*\{([^{}]*)\}$/.exec(s.trim());
  if (only) s = only[1]!;
  // Text: "or"/"and" are separators; other words (units, labels) go.
  s = s.replace(TEXT_CMD, (_m, body: string) => {
    const b = body.trim();
    if (/^(or|and)$/i.test(b)) return ` \\text{${b.toLowerCase()}} `;
    if (/^[a-zA-Z]$/.test(b) || /^\(?[A-E]\)?$/.test(b)) return b; // `\text{A}`, `\text{(B)}` (choices), `\mathrm{x}`
    if (b === 'e') return 'e';
    if (/[\d=]/.test(b)) return b;
    return ' ';
  });
  s = s.replace(/\s+(or|and)\s+/gi, (_m, w: string) => ` \\text{${w.toLowerCase()}} `);
  // `(11,7)or(7,11)`: a connective glued between brackets.
  s = s.replace(
    /([)\]}])\s*(or|and)\s*(?=[([{\\])/gi,
    (_m, b: string, w: string) => `${b} \\text{${w.toLowerCase()}} `,
  );
  // Degrees, percent, currency.
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\degree/g, '^\\circ');
  s = s.replace(/\\%|%|\\percent/g, '');
  s = s.replace(/\\\$|\$/g, '');
  s = s.replace(/\\(?:textdollar|pounds|euro)/g, '');
  // Units at the end (after a number or closing brace).
  for (let k = 0; k < 2; k++) s = s.replace(UNIT_RE, '$1');
  s = braceShorthand(s);
  // Leading zero: `.5` → `0.5` (before trimming punctuation, which would eat the point).
  s = s.replace(/(^|[^\d])\.(\d)/g, '$10.$2');
  // Trailing punctuation and spaces.
  s = s.replace(/\s+/g, ' ').trim();
  s = s.replace(/^[,;.\s]+|[,;.\s]+$/g, '');
  // A trailing degree sign is a unit: 30^\circ is 30 (Math-Verify drops it); inside \sin 30^\circ it stays.
  if (!/\\(?:sin|cos|tan|cot|sec|csc)/.test(s)) s = s.replace(/\^\\circ/g, '');
  // Thousands separators: 1,234,567 (also LaTeX 1{,}234) when the whole answer is such a number.
  s = s.replace(/(\d)\{,\}(?=\d{3})/g, '$1,');
  if (/^[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  if (/^[+-]?[1-9]\d{0,2}( \d{3})+(\.\d+)?$/.test(s)) s = s.replace(/ /g, '');
  if (/^[+-]?(?:infinity|inf)$/i.test(s)) s = s.replace(/infinity|inf/i, '\\infty');
  // `x \in [1,2]` → `[1,2]`.
  s = s.replace(/^[a-zA-Z]\s*\\in(?![a-zA-Z])\s*/, '');
  // Leading plus: `+3` → `3`.
  s = s.replace(/^\+(?=\S)/, '');
  return s.trim();
}

/** The key used for the structural "identical strings" shortcut: normalised, without spaces. */
export function compactKey(s: string): string {
  return s.replace(/\s+/g, '').replace(/\{([^{}\\]*)\}/g, (m, b: string) => (b.length === 1 ? b : m));
}
