/**
 * @module rewards/math-verify/matrix
 * Matrices: one `pmatrix`/`bmatrix`/`array`… environment (also inside `(…)` or `[…]`, as in
 * `\left[\begin{array}{cc}…\end{array}\right]`), and sums, differences and products of literal
 * matrices (`A + B`, `A B`, `2A`), computed cell by cell as expression strings that the leaf
 * comparison then judges (so `\frac12` and `0.5` cells compare as numbers).
 */
import type { Node } from './structure.ts';
import { matchClose, splitTop } from './scan.ts';

/** Parses one cell (the structure parser, passed in so this module does not import it back). */
export type CellParser = (cell: string) => Node;

/** Largest matrix we build by arithmetic, and longest cell: cells double with every product. */
const MAX_CELLS = 100;
const MAX_CELL_CHARS = 2000;

const tooLong = (g: Grid): boolean => g.some((r) => r.some((x) => x.length > MAX_CELL_CHARS));

const ENV = /^\\begin\{([pbBvV]?matrix|array)\}(\{[^{}]*\})?([\s\S]*?)\\end\{\1\}/;

type Grid = string[][];

function cellsOf(body: string): Grid {
  const rows = splitTop(body, ['\\\\'])
    .parts.map((r) => r.trim())
    .filter((r) => r !== '' && !/^\\hline$/.test(r));
  return rows.map((row) => splitTop(row, ['&']).parts.map((x) => x.trim()));
}

const toNode = (g: Grid, parse: CellParser): Node => ({ t: 'matrix', rows: g.map((r) => r.map((x) => parse(x))) });

/** One matrix environment, possibly in brackets, or null. */
export function parseMatrix(input: string, parse: CellParser): Node | null {
  let s = input.trim();
  while (
    (s[0] === '(' || s[0] === '[') &&
    matchClose(s, 0) === s.length - 1 &&
    s.slice(1, -1).trim().startsWith('\\begin{')
  )
    s = s.slice(1, -1).trim();
  const m = ENV.exec(s);
  if (!m || m[0].length !== s.length) return null;
  return toNode(cellsOf(m[3]!), parse);
}

/** A factor of a product: a matrix, or a scalar expression. */
type Factor = { m: Grid } | { s: string };

function product(fs: Factor[]): Grid | null {
  let scalar = '';
  let acc: Grid | null = null;
  for (const f of fs) {
    if ('s' in f) {
      if (f.s.trim() === '' || f.s.trim() === '\\cdot' || f.s.trim() === '\\times') continue;
      scalar += `(${f.s.replace(/\\cdot|\\times/g, ' ')})`;
      continue;
    }
    if (!acc) {
      acc = f.m;
      continue;
    }
    const n = acc[0]!.length;
    if (f.m.length !== n || acc.length * f.m[0]!.length > MAX_CELLS) return null;
    acc = acc.map((row) => f.m[0]!.map((_, j) => row.map((a, k) => `(${a})(${f.m[k]![j]})`).join('+')));
    if (tooLong(acc)) return null;
  }
  if (!acc) return null;
  return scalar ? acc.map((r) => r.map((x) => `${scalar}(${x})`)) : acc;
}

/** Sum/difference/product of literal matrices as one matrix, or null when `s` is not such an expression. */
export function evalMatrixExpr(s: string, parse: CellParser): Node | null {
  if (!s.includes('\\begin{') || s.length > 5000) return null;
  const terms = splitTop(s, ['+', '-']);
  let total: Grid | null = null;
  for (let k = 0; k < terms.parts.length; k++) {
    const t = terms.parts[k]!.trim();
    if (t === '' && k === 0) continue;
    const fs: Factor[] = [];
    let rest = t;
    while (rest.length) {
      const at = rest.indexOf('\\begin{');
      if (at < 0) {
        fs.push({ s: rest });
        break;
      }
      if (at > 0) fs.push({ s: rest.slice(0, at) });
      const m = ENV.exec(rest.slice(at));
      if (!m) return null;
      fs.push({ m: cellsOf(m[3]!) });
      rest = rest.slice(at + m[0].length).trim();
    }
    const g = product(fs);
    if (!g) return null;
    const sign = k > 0 && terms.found[k - 1] === '-' ? '-' : '+';
    if (!total) total = sign === '-' ? g.map((r) => r.map((x) => `-(${x})`)) : g;
    else {
      if (total.length !== g.length || total[0]!.length !== g[0]!.length) return null;
      const prev: Grid = total;
      total = prev.map((r, i) => r.map((x, j) => `(${x})${sign}(${g[i]![j]})`));
      if (tooLong(total)) return null;
    }
  }
  return total ? toNode(total, parse) : null;
}
