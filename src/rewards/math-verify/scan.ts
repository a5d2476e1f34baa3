/**
 * @module rewards/math-verify/scan
 * Bracket-aware scanning of LaTeX answer strings (shared by the structure parser and the matrix
 * reader): split at top-level separators, find a bracket's partner. `\{`, `\langle`, `\begin`
 * count as brackets; nesting beyond MAX_DEPTH is refused (hostile input).
 */

export const MAX_DEPTH = 100;

export class StructureError extends Error {}

const OPENERS = new Set(['(', '[', '{']);
const CLOSERS = new Set([')', ']', '}']);

/**
 * Splits `s` at every top-level occurrence of one of `seps`; returns the pieces and the
 * separators found between them. `\{`, `\langle`, `\begin` etc. count as brackets.
 */
export function splitTop(s: string, seps: readonly string[]): { parts: string[]; found: string[] } {
  const parts: string[] = [];
  const found: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      if (s.startsWith('\\{', i) || s.startsWith('\\langle', i) || s.startsWith('\\begin', i)) depth++;
      else if (s.startsWith('\\}', i) || s.startsWith('\\rangle', i) || s.startsWith('\\end', i)) depth--;
      if (depth === 0) {
        const sep = seps.find(
          (x) => x.startsWith('\\') && s.startsWith(x, i) && !/[a-zA-Z]/.test(s[i + x.length] ?? ''),
        );
        if (sep) {
          parts.push(s.slice(start, i));
          found.push(sep);
          i += sep.length - 1;
          start = i + 1;
          continue;
        }
      }
      const m = /^\\([a-zA-Z]+|.)/.exec(s.slice(i, i + 40));
      i += m ? m[0].length - 1 : 0;
      continue;
    }
    if (OPENERS.has(c)) depth++;
    else if (CLOSERS.has(c)) depth--;
    else if (depth === 0) {
      const sep = seps.find((x) => !x.startsWith('\\') && s.startsWith(x, i));
      if (sep) {
        parts.push(s.slice(start, i));
        found.push(sep);
        i += sep.length - 1;
        start = i + 1;
      }
    }
    if (depth > MAX_DEPTH) throw new StructureError(`brackets nested deeper than ${MAX_DEPTH}`);
  }
  parts.push(s.slice(start));
  return { parts, found };
}

/** Index of the bracket closing the one opened at `open` (any bracket kind closes any), or -1. */
export function matchClose(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '\\') {
      if (s.startsWith('\\{', i) || s.startsWith('\\langle', i)) depth++;
      else if (s.startsWith('\\}', i) || s.startsWith('\\rangle', i)) {
        depth--;
        if (depth === 0) return i;
      }
      const m = /^\\([a-zA-Z]+|.)/.exec(s.slice(i, i + 40));
      i += m ? m[0].length - 1 : 0;
      continue;
    }
    if (OPENERS.has(s[i]!)) depth++;
    else if (CLOSERS.has(s[i]!)) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}
