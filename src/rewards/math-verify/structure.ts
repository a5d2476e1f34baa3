/**
 * @module rewards/math-verify/structure
 * The structure layer: a normalised answer string becomes a tree of sets, tuples, intervals,
 * unions, matrices, equations, relations, `\pm` pairs and scalar leaves. Only leaves ever reach
 * the CAS (compute-engine parses single expressions only; Math-Verify likewise converts
 * structure itself before calling sympy). Splitting is done at bracket depth 0, so `(1,(2,3))`
 * has two items and `[1,2)` is one interval.
 */

export type Node =
  | { t: 'leaf'; s: string }
  | { t: 'set'; items: Node[]; bare: boolean }
  | { t: 'tuple'; items: Node[]; open: string; close: string }
  | { t: 'interval'; lo: Node; hi: Node; loClosed: boolean; hiClosed: boolean }
  | { t: 'union'; parts: Node[] }
  | { t: 'matrix'; rows: Node[][] }
  | { t: 'eq'; parts: string[] }
  | { t: 'rel'; ops: string[]; parts: string[] }
  | { t: 'pm'; a: string; b: string };

/** Largest answer we try to parse, and deepest bracket nesting: beyond them the input is hostile. */
export const MAX_ANSWER_CHARS = 20_000;
export const MAX_DEPTH = 100;

export class StructureError extends Error {}

const OPENERS = new Set(['(', '[', '{']);
const CLOSERS = new Set([')', ']', '}']);

/**
 * Splits `s` at every top-level occurrence of one of `seps` (longest first); returns the pieces
 * and the separators found between them. `\{`, `\langle` etc. count as brackets.
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
        const sep = seps.find((x) => x.startsWith('\\') && s.startsWith(x, i) && !/[a-zA-Z]/.test(s[i + x.length] ?? ''));
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
function matchClose(s: string, open: number, openTok: string): number {
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
  void openTok;
  return -1;
}

const REL_OPS = ['\\le', '\\ge', '<', '>', '\\ne'] as const;
const SIMPLE_VAR = /^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?[\w]+\}?)?(?:\([a-z]\))?\s*$/;

/** A plain variable name such as `x`, `a_1`, `\theta`, `f(x)` (the left side of an assignment). */
export const isSimpleVar = (s: string): boolean => SIMPLE_VAR.test(s) && !/^\s*\\(?:infty|pi|emptyset)\s*$/.test(s);

function items(inner: string): Node[] {
  if (inner.trim() === '') return [];
  return splitTop(inner, [',', ';']).parts.map((p) => parse(p));
}

const MATRIX = /^\\begin\{([pbBvV]?matrix|array)\}(\{[^{}]*\})?([\s\S]*)\\end\{\1\}$/;

/** Parses a normalised answer into its structure. */
export function parse(input: string): Node {
  const s = input.trim();
  if (s.length > MAX_ANSWER_CHARS) throw new StructureError(`answer longer than ${MAX_ANSWER_CHARS} characters`);
  if (s === '') return { t: 'leaf', s };

  // Unions: A \cup B, and "x<1 or x>2".
  const u = splitTop(s, ['\\cup', '\\text{or}', '\\lor', '\\vee']);
  if (u.parts.length > 1) return { t: 'union', parts: u.parts.map(parse) };

  // Bare comma lists "1, 2, 3" (Math-Verify reads them as a set), also "x=1 \text{and} y=2".
  const c = splitTop(s, [',', '\\text{and}', ';']);
  if (c.parts.length > 1) {
    const ps = c.parts.map((p) => p.trim()).filter((p) => p !== '' && p !== '\\ldots');
    return { t: 'set', items: ps.map(parse), bare: true };
  }

  // Equations and relations at top level.
  const e = splitTop(s, ['=', '\\approx', '\\equiv']);
  if (e.parts.length > 1) return { t: 'eq', parts: e.parts.map((p) => p.trim()) };
  const r = splitTop(s, REL_OPS as unknown as string[]);
  if (r.parts.length > 1) return relation(r.parts.map((p) => p.trim()), r.found);

  // ± : a \pm b.
  const pm = splitTop(s, ['\\pm', '\\mp']);
  if (pm.parts.length === 2) {
    const a = pm.parts[0]!.trim() || '0';
    return { t: 'pm', a, b: pm.parts[1]!.trim() };
  }

  if (s === '\\emptyset' || s === '\\{\\}' || s === '\\{ \\}') return { t: 'set', items: [], bare: false };

  const m = MATRIX.exec(s);
  if (m) {
    const rows = splitTop(m[3]!, ['\\\\']).parts.map((r) => r.trim()).filter((r) => r !== '' && !/^\\hline$/.test(r));
    return { t: 'matrix', rows: rows.map((row) => splitTop(row, ['&']).parts.map((x) => parse(x))) };
  }

  if (s.startsWith('\\{') && matchClose(s, 0, '\\{') === s.length - 2 && s.endsWith('\\}')) return { t: 'set', items: items(s.slice(2, -2)), bare: false };
  if (s.startsWith('\\langle') && s.endsWith('\\rangle') && matchClose(s, 0, '\\langle') === s.length - 7) {
    return { t: 'tuple', items: items(s.slice(7, -7)), open: '(', close: ')' };
  }
  if ((s[0] === '(' || s[0] === '[') && matchClose(s, 0, s[0]) === s.length - 1) {
    const inner = s.slice(1, -1);
    const its = items(inner);
    if (its.length === 1 && s[0] === '(' && s.endsWith(')')) return its[0]!;
    if (its.length >= 2) return { t: 'tuple', items: its, open: s[0], close: s[s.length - 1]! };
  }
  return { t: 'leaf', s };
}

/** `a < x \le b` → interval; `x > 3` → (3, ∞); anything else stays a relation. */
function relation(parts: string[], ops: string[]): Node {
  const inf: Node = { t: 'leaf', s: '\\infty' };
  const ninf: Node = { t: 'leaf', s: '-\\infty' };
  const strict = (op: string) => op === '<' || op === '>';
  const leaf = (x: string): Node => ({ t: 'leaf', s: x });
  if (ops.includes('\\ne')) return { t: 'rel', ops, parts };
  if (parts.length === 2 && isSimpleVar(parts[0]!) && !isSimpleVar(parts[1]!)) {
    const op = ops[0]!;
    const up = op === '<' || op === '\\le';
    return up ? { t: 'interval', lo: ninf, hi: leaf(parts[1]!), loClosed: false, hiClosed: !strict(op) } : { t: 'interval', lo: leaf(parts[1]!), hi: inf, loClosed: !strict(op), hiClosed: false };
  }
  if (parts.length === 2 && isSimpleVar(parts[1]!) && !isSimpleVar(parts[0]!)) {
    const op = ops[0]!;
    const up = op === '>' || op === '\\ge'; // 3 > x  ⇔  x < 3
    return up ? { t: 'interval', lo: ninf, hi: leaf(parts[0]!), loClosed: false, hiClosed: !strict(op) } : { t: 'interval', lo: leaf(parts[0]!), hi: inf, loClosed: !strict(op), hiClosed: false };
  }
  if (parts.length === 3 && isSimpleVar(parts[1]!)) {
    const [o1, o2] = ops as [string, string];
    const ascending = (o1 === '<' || o1 === '\\le') && (o2 === '<' || o2 === '\\le');
    const descending = (o1 === '>' || o1 === '\\ge') && (o2 === '>' || o2 === '\\ge');
    if (ascending) return { t: 'interval', lo: leaf(parts[0]!), hi: leaf(parts[2]!), loClosed: !strict(o1), hiClosed: !strict(o2) };
    if (descending) return { t: 'interval', lo: leaf(parts[2]!), hi: leaf(parts[0]!), loClosed: !strict(o2), hiClosed: !strict(o1) };
  }
  return { t: 'rel', ops, parts };
}
