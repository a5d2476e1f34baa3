/**
 * @module rewards/math-verify/latex-env
 * Where answers sit in a text: math environments (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`) and
 * `\boxed{…}`s, and which of them form one answer. As in Math-Verify's extraction
 * (huggingface/Math-Verify `parser.py`): inline `$…$` and `\(…\)` do not span lines while the
 * display forms may; `\$` is a dollar sign, not a delimiter; several answers joined only by
 * connectives (`,`, `and`, `or`, `\quad`, `\text{ and }`) are one list — `\boxed{1} and
 * \boxed{2}`, `$21,16$ or $11$` — while `$$\boxed{20}$$ \boxed{143}` is the last one only.
 */

/** One math environment: its body and where it lies. */
export interface Span {
  start: number;
  end: number;
  body: string;
}

/** The end of `close` after `from`, skipping escaped characters; -1 when absent (or a newline comes first if `line`). */
function findClose(text: string, from: number, close: string, line: boolean): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (line && c === '\n') return -1;
    if (text.startsWith(close, i)) return i;
    if (c === '\\') i++; // `\$` and `\\` are not delimiters
  }
  return -1;
}

/** All math environments of `text`, left to right, non-overlapping. */
export function mathEnvs(text: string): Span[] {
  const out: Span[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    let open = '',
      close = '',
      line = false;
    if (c === '\\') {
      const n = text[i + 1];
      if (n === '[') [open, close] = ['\\[', '\\]'];
      else if (n === '(') [open, close, line] = ['\\(', '\\)', true];
      else {
        i++; // an escaped character (`\$`, `\\`)
        continue;
      }
    } else if (c === '$') {
      if (text[i + 1] === '$') [open, close] = ['$$', '$$'];
      else if (/\d/.test(text[i - 1] ?? ''))
        continue; // `5$` is a price, not a delimiter
      else [open, close, line] = ['$', '$', true];
    } else continue;
    const j = findClose(text, i + open.length, close, line);
    if (j < 0) {
      i += open.length - 1;
      continue;
    }
    const body = text.slice(i + open.length, j);
    if (body.trim() !== '') out.push({ start: i, end: j + close.length, body });
    i = j + close.length - 1;
  }
  return out;
}

/** Every outermost `\boxed{…}` / `\fbox{…}` (and the brace-less `\boxed 5`), left to right. */
export function boxes(text: string): Span[] {
  const out: Span[] = [];
  const re = /\\(?:boxed|fbox)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let j = m.index + m[0].length;
    const spaced = text[j] === ' ';
    while (text[j] === ' ') j++;
    if (text[j] === '{') {
      const end = braceEnd(text, j);
      if (end < 0) continue;
      out.push({ start: m.index, end, body: text.slice(j + 1, end - 1).trim() });
      re.lastIndex = end;
    } else if (spaced) {
      const t = /^[^\s$]+/.exec(text.slice(j));
      if (t) {
        out.push({ start: m.index, end: j + t[0].length, body: t[0] });
        re.lastIndex = j + t[0].length;
      }
    }
  }
  return out;
}

/** Index just past the brace closing the one at `open`, or -1 (escaped braces are literal). */
function braceEnd(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  return -1;
}

const DELIMS = /\$+|\\[()[\]]/g;

/**
 * Whether the text between two answers only joins them: connectives, spacing, line breaks,
 * short `\text{…}` ending in and/or ("for part (a) and"); math delimiters alone do not.
 */
export function connective(gap: string): { join: ',' | 'and' | 'or' } | null {
  if (gap.length > 120) return null;
  const crossed = DELIMS.test(gap);
  DELIMS.lastIndex = 0;
  // (a trailing lone backslash is the first half of a doubled `\\boxed`, an escaping slip)
  let g = gap.replace(DELIMS, ' ').replace(/\\\\|\\q?quad|\\[,;: !]|~|\\n|\\$/g, ' ');
  g = g
    .replace(/\\text(?:normal|rm)?\s*\{([^{}]*)\}/g, ' $1 ')
    .replace(/\s+/g, ' ')
    .trim();
  if (g === '') return crossed ? null : { join: 'and' };
  const word = /(?:^|\s|,)(and|or)$/i.exec(g);
  if (/^[,;]$/.test(g)) return { join: ',' };
  if (/^,?\s*(and|or)$/i.test(g)) return { join: /or$/i.test(g) ? 'or' : 'and' };
  if (word && g.length <= 40 && !/\d/.test(g.replace(/\([a-z]\)/gi, '')))
    return { join: word[1]!.toLowerCase() === 'or' ? 'or' : 'and' };
  return null;
}

/** The bodies of the last run of spans joined by connectives, as one answer (`a \text{and} b`), or null. */
export function lastGroup(text: string, spans: Span[]): string | null {
  if (spans.length === 0) return null;
  let body = spans[spans.length - 1]!.body;
  for (let k = spans.length - 2; k >= 0; k--) {
    const c = connective(text.slice(spans[k]!.end, spans[k + 1]!.start));
    if (!c) break;
    body = c.join === ',' ? `${spans[k]!.body}, ${body}` : `${spans[k]!.body} \\text{${c.join}} ${body}`;
  }
  return body;
}
