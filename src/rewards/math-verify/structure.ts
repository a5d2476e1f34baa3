/**
 * @module rewards/math-verify/structure
 * The structure layer: a normalised answer string becomes a tree of lists, tuples, intervals,
 * unions, matrices, equations, relations, `\pm` pairs and scalar leaves. Only leaves ever reach
 * the CAS (compute-engine parses single expressions only; Math-Verify likewise converts
 * structure itself before calling sympy). Splitting is done at bracket depth 0, so `(1,(2,3))`
 * has two items and `[1,2)` is one interval. Precedence, loosest first:
 *   `;` / `\text{and}` / `\text{or}` (separate solutions: `p=5,q=2;p=7,q=2` is two solutions)
 *   → `\cup` → `,` → `=` (`\approx`) → relations → `\pm` → brackets, matrices → leaf.
 */
import { evalMatrixExpr, parseMatrix } from './matrix.ts';
import { MAX_DEPTH, StructureError, matchClose, splitTop } from './scan.ts';

export { MAX_DEPTH, StructureError, matchClose, splitTop };

/** How the items of a written list were joined (records of assignments need `,` or `and`). */
export type Join = ',' | 'and' | 'or' | ';';

export type Node =
  | { t: 'leaf'; s: string }
  /** A list (`bare`: written without braces) or a `{…}` set. `dec`: a plain `1,22` that may be the decimal 1.22. */
  | { t: 'set'; items: Node[]; bare: boolean; join?: Join; dec?: string }
  | { t: 'tuple'; items: Node[]; open: string; close: string }
  | { t: 'interval'; lo: Node; hi: Node; loClosed: boolean; hiClosed: boolean }
  | { t: 'union'; parts: Node[] }
  | { t: 'matrix'; rows: Node[][] }
  | { t: 'eq'; parts: string[] }
  /** `iv`: the same relation as an interval of its single variable `v` (`x > 3` → (3, ∞)). */
  | { t: 'rel'; ops: string[]; parts: string[]; iv?: Interval; v?: string }
  | { t: 'pm'; a: string; b: string };

export type Interval = Extract<Node, { t: 'interval' }>;

/** Largest answer we try to parse, and deepest bracket nesting: beyond them the input is hostile. */
export const MAX_ANSWER_CHARS = 20_000;

const REL_OPS = ['\\le', '\\ge', '<', '>', '\\ne'];
const SIMPLE_VAR = /^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?[\w]+\}?)?(?:\([a-z]\))?\s*$/;

/** A plain variable name such as `x`, `a_1`, `\theta`, `f(x)` (the left side of an assignment). */
export const isSimpleVar = (s: string): boolean => SIMPLE_VAR.test(s) && !/^\s*\\(?:infty|pi|emptyset)\s*$/.test(s);

/**
 * A label that an assignment's value may be read without: a variable, a tuple of variables
 * (`(p,q)`), or a product, quotient or ratio of named quantities with no numbers or sums
 * (`AB`, `\frac{NO}{BO}`, `S_{MBCN}:S`, `P(x)`). `a + 3z` is not one: `a + 3z = 0` is not `0`.
 */
export function isLabel(s: string): boolean {
  const t = s.trim();
  if (isSimpleVar(t)) return true;
  const tuple = /^\((.*)\)$/.exec(t);
  if (tuple && splitTop(tuple[1]!, [',']).parts.every((p) => isSimpleVar(p))) return true;
  const rest = t
    .replace(/_\{[^{}]*\}|_\w/g, '')
    .replace(/\\(?:frac|overline|angle|triangle|mathrm|operatorname)/g, '')
    .replace(/\([a-z]\)/g, '')
    .replace(/[{}\s]/g, '');
  return (
    rest.length > 0 &&
    rest.length <= 12 &&
    /^[A-Za-z:/]+$/.test(rest) &&
    /[A-Za-z]/.test(rest) &&
    !/^(?:infty|pi)$/.test(rest)
  );
}

function items(inner: string): Node[] {
  if (inner.trim() === '') return [];
  return splitTop(inner, [',', ';']).parts.map((p) => parse(p));
}

const SOLUTION_SEPS = [';', '\\text{and}', '\\text{or}', '\\lor', '\\vee'];
const joinOf = (sep: string): Join => (sep === ';' ? ';' : sep.includes('and') ? 'and' : 'or');
const intervalLike = (n: Node): boolean => n.t === 'interval' || n.t === 'union' || (n.t === 'rel' && !!n.iv);

export interface ParseOptions {
  /** The answer was plain text, not LaTeX: `1,22` may then be the decimal 1.22 (Math-Verify's number reading). */
  plain?: boolean;
}

/** Parses a normalised answer into its structure. */
export function parse(input: string, opts: ParseOptions = {}): Node {
  const s = input.trim();
  if (s.length > MAX_ANSWER_CHARS) throw new StructureError(`answer longer than ${MAX_ANSWER_CHARS} characters`);
  if (s === '') return { t: 'leaf', s };

  // Separate solutions: "x<1 or x>2" is a union; "(11,7) or (7,11)", "p=5,q=2;p=7,q=2" a list.
  const sol = splitTop(s, SOLUTION_SEPS);
  const solParts = sol.parts.map((p) => p.trim()).filter((p) => p !== '');
  if (solParts.length > 1) {
    const nodes = solParts.map((p) => parse(p));
    if (nodes.every(intervalLike)) return { t: 'union', parts: nodes };
    const join = sol.found.every((f) => joinOf(f) === 'and')
      ? 'and'
      : joinOf(sol.found.find((f) => joinOf(f) !== 'and')!);
    return { t: 'set', items: nodes, bare: true, join };
  }
  if (solParts.length === 1 && sol.parts.length > 1) return parse(solParts[0]!, opts);

  const u = splitTop(s, ['\\cup']);
  if (u.parts.length > 1) return { t: 'union', parts: u.parts.map((p) => parse(p)) };

  // Bare comma lists "1, 2, 3" (Math-Verify reads them as a set).
  const c = splitTop(s, [',']);
  if (c.parts.length > 1) {
    const ps = c.parts.map((p) => p.trim()).filter((p) => p !== '');
    const node: Node = { t: 'set', items: ps.map((p) => parse(p)), bare: true, join: ',' };
    // `1,22` in plain text is Math-Verify's decimal comma (three digits after it would be a thousands separator).
    if (opts.plain && /^-?\d+,\d+$/.test(s) && !/^-?[1-9]\d{0,2},\d{3}$/.test(s)) node.dec = s.replace(',', '.');
    return ps.length === 1 ? node.items[0]! : node;
  }

  // Equations at top level; `x \approx 11` is read as an assignment too.
  const e = splitTop(s, ['=', '\\equiv']);
  if (e.parts.length > 1) return { t: 'eq', parts: e.parts.map((p) => p.trim()) };
  const ap = splitTop(s, ['\\approx']);
  if (ap.parts.length > 1) return { t: 'eq', parts: ap.parts.map((p) => p.trim()) };
  const r = splitTop(s, REL_OPS);
  if (r.parts.length > 1)
    return relation(
      r.parts.map((p) => p.trim()),
      r.found,
    );

  const pm = splitTop(s, ['\\pm', '\\mp']);
  if (pm.parts.length === 2) return { t: 'pm', a: pm.parts[0]!.trim() || '0', b: pm.parts[1]!.trim() };

  if (s === '\\emptyset' || /^\\\{\s*\\\}$/.test(s) || s === '{}') return { t: 'set', items: [], bare: false };

  const cell = (x: string) => parse(x);
  const mat = parseMatrix(s, cell) ?? evalMatrixExpr(s, cell);
  if (mat) return mat;

  if (s.startsWith('\\{') && matchClose(s, 0) === s.length - 2 && s.endsWith('\\}'))
    return { t: 'set', items: items(s.slice(2, -2)), bare: false };
  if (s[0] === '{' && matchClose(s, 0) === s.length - 1) {
    // `{1,3}`: a set written with plain braces; `{x+1}` is only a group.
    const inner = s.slice(1, -1);
    if (splitTop(inner, [',', ';']).parts.length > 1) return { t: 'set', items: items(inner), bare: false };
    return parse(inner, opts);
  }
  if (s.startsWith('\\langle') && s.endsWith('\\rangle') && matchClose(s, 0) === s.length - 7) {
    return { t: 'tuple', items: items(s.slice(7, -7)), open: '(', close: ')' };
  }
  if ((s[0] === '(' || s[0] === '[') && matchClose(s, 0) === s.length - 1) {
    const its = items(s.slice(1, -1));
    if (its.length === 1 && (s[0] === '(' || its[0]!.t === 'matrix')) return its[0]!;
    if (its.length >= 2) return { t: 'tuple', items: its, open: s[0], close: s[s.length - 1]! };
  }
  return { t: 'leaf', s };
}

/** `a < x \le b` and `x > 3` also carry their interval; every relation keeps its parts for rearranged comparisons. */
function relation(parts: string[], ops: string[]): Node {
  const node: Extract<Node, { t: 'rel' }> = { t: 'rel', ops, parts };
  if (ops.includes('\\ne')) return node;
  const inf: Node = { t: 'leaf', s: '\\infty' };
  const ninf: Node = { t: 'leaf', s: '-\\infty' };
  const strict = (op: string) => op === '<' || op === '>';
  const leaf = (x: string): Node => ({ t: 'leaf', s: x });
  const upTo = (b: string, op: string, v: string) => {
    node.iv = { t: 'interval', lo: ninf, hi: leaf(b), loClosed: false, hiClosed: !strict(op) };
    node.v = v;
  };
  const from = (b: string, op: string, v: string) => {
    node.iv = { t: 'interval', lo: leaf(b), hi: inf, loClosed: !strict(op), hiClosed: false };
    node.v = v;
  };
  if (parts.length === 2 && isSimpleVar(parts[0]!) && !isSimpleVar(parts[1]!)) {
    const op = ops[0]!;
    if (op === '<' || op === '\\le') upTo(parts[1]!, op, parts[0]!);
    else from(parts[1]!, op, parts[0]!);
  } else if (parts.length === 2 && isSimpleVar(parts[1]!) && !isSimpleVar(parts[0]!)) {
    const op = ops[0]!; // 3 > x  ⇔  x < 3
    if (op === '>' || op === '\\ge') upTo(parts[0]!, op, parts[1]!);
    else from(parts[0]!, op, parts[1]!);
  } else if (parts.length === 3 && isSimpleVar(parts[1]!)) {
    const [o1, o2] = ops as [string, string];
    const asc = (o: string) => o === '<' || o === '\\le';
    const desc = (o: string) => o === '>' || o === '\\ge';
    if (asc(o1) && asc(o2))
      node.iv = {
        t: 'interval',
        lo: leaf(parts[0]!),
        hi: leaf(parts[2]!),
        loClosed: !strict(o1),
        hiClosed: !strict(o2),
      };
    else if (desc(o1) && desc(o2))
      node.iv = {
        t: 'interval',
        lo: leaf(parts[2]!),
        hi: leaf(parts[0]!),
        loClosed: !strict(o2),
        hiClosed: !strict(o1),
      };
    if (node.iv) node.v = parts[1]!;
  }
  return node;
}
