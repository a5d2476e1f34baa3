/**
 * @module rewards/math-verify/canon
 * A canonical string of a MathJSON tree up to commutativity: sums and products are flattened
 * and their terms sorted, brackets and `Subtract` removed. Two expressions with the same key
 * are equal (a sound test, never a false "equal"); it decides what numbers cannot, such as
 * `\sum_{k=0}^{n-1} F_k F_{n-k-1}` against `\sum_{k=0}^{n-1} F_{n-k-1} F_k` (a symbolic bound
 * has no numeric value) while `\sum_{k=0}^{n-2} …` keeps a different key.
 */
import { numLiteral } from './expr.ts';
import type { Json } from './expr.ts';
import { ratToString } from './rational.ts';

const MAX_DEPTH = 200;

function flatten(head: 'Add' | 'Mul', j: Json, out: Json[], depth: number): void {
  if (Array.isArray(j) && depth < MAX_DEPTH) {
    const h = j[0];
    if (h === 'Delimiter' && j.length === 2) return flatten(head, j[1]!, out, depth + 1);
    if (head === 'Add' && h === 'Add') return j.slice(1).forEach((x) => flatten(head, x, out, depth + 1));
    if (head === 'Add' && h === 'Subtract' && j.length === 3) {
      flatten(head, j[1]!, out, depth + 1);
      out.push(['Negate', j[2]!]);
      return;
    }
    if (head === 'Mul' && (h === 'Multiply' || h === 'InvisibleOperator'))
      return j.slice(1).forEach((x) => flatten(head, x, out, depth + 1));
  }
  out.push(j);
}

/** The canonical key of `j` (see the module note). */
export function canonKey(j: Json, depth = 0): string {
  if (depth > MAX_DEPTH) return '…';
  const lit = numLiteral(j);
  if (lit) return ratToString(lit.v);
  if (typeof j === 'string') return j;
  if (!Array.isArray(j)) return '?';
  const head = j[0];
  if (head === 'Delimiter' && j.length === 2) return canonKey(j[1]!, depth + 1);
  if (head === 'Add' || head === 'Subtract' || head === 'Multiply' || head === 'InvisibleOperator') {
    const kind = head === 'Add' || head === 'Subtract' ? 'Add' : 'Mul';
    const terms: Json[] = [];
    flatten(kind, j, terms, depth);
    if (terms.length === 1) return canonKey(terms[0]!, depth + 1);
    return `${kind}(${terms
      .map((t) => canonKey(t, depth + 1))
      .sort()
      .join(',')})`;
  }
  const h = typeof head === 'string' ? head : canonKey(head as Json, depth + 1);
  return `${h}(${j
    .slice(1)
    .map((x) => canonKey(x, depth + 1))
    .join(',')})`;
}
