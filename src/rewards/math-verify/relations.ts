/**
 * @module rewards/math-verify/relations
 * Equations and inequalities:
 *   - an assignment's value: `x = 5` (or a label: `AB = 4`, `\frac{NO}{BO} = …`, `(p,q) = (3,2)`)
 *     may be compared as its value; `a + 3z = 0` may not (it states a relation, not `0`). A
 *     chain `x = 5+5+1 = 11` is its last part (Math-Verify keeps only that), and `1/3 \approx 0.33`
 *     is the exact value before the approximation. An equation without variables
 *     (`\frac12 = \frac{10}{9}`, a computation) states its last value;
 *   - two equations are equal part by part, swapped, as assignments of the same name, or as
 *     the same equation rearranged or rescaled: (l₁ - r₁) = c·(l₂ - r₂), c ≠ 0
 *     (`2x+4y-3=0` vs `y=-\frac12x+\frac34`);
 *   - two relations are equal as the same interval of one variable, or as D₁ = c·D₂ with
 *     c > 0 after moving everything to one side (`x < 1` vs `-x > -1`).
 */
import type { Node } from './structure.ts';
import { isLabel, isSimpleVar, parse, splitTop } from './structure.ts';
import { leafEqual, proportionality } from './leaf.ts';
import type { CompareOptions } from './leaf.ts';
import { compactKey } from './normalize.ts';

type Eq = Extract<Node, { t: 'eq' }>;
type Rel = Extract<Node, { t: 'rel' }>;
type NodesEqual = (a: Node, b: Node, o: CompareOptions) => boolean;

/** The exact value stated before `\approx` (`1/3 \approx 0.33` is 1/3). */
function beforeApprox(s: string): string {
  return splitTop(s, ['\\approx']).parts[0]!.trim();
}

/** No variables: only numbers and constant commands. */
function isConstant(s: string): boolean {
  return !/[a-zA-Z]/.test(s.replace(/\\(?:frac|sqrt|pi|cdot|times|infty|text\{[^{}]*\}|ldots)/g, ''));
}

/** The value an equation states (see the module note), or null when it states a relation. */
export function eqValue(n: Eq, role: 'gold' | 'pred'): Node | null {
  const ps = n.parts;
  if (ps.length >= 3) return parse(beforeApprox(ps[ps.length - 1]!));
  const [l, r] = ps as [string, string];
  if (isLabel(l) && !isLabel(r)) return parse(beforeApprox(r));
  if (isSimpleVar(r) && !isLabel(l)) return parse(l);
  // A computation `\frac12 \$ = \frac{10}{9}` (no variables on either side) states its last value.
  if (isConstant(l) && isConstant(r) && r.trim() !== '') return parse(beforeApprox(r));
  void role;
  return null;
}

/** A label's name for matching assignments: spacing and case ignored (`P(x)` names what `p(x)` does). */
export const labelKey = (s: string): string => compactKey(s).toLowerCase();

export function equationsEqual(a: Eq, b: Eq, o: CompareOptions, nodesEqual: NodesEqual): boolean {
  if (a.parts.length === b.parts.length && a.parts.every((p, k) => leafEqual(p, b.parts[k]!, o))) return true;
  if (a.parts.length >= 3 || b.parts.length >= 3) {
    const va = eqValue(a, 'gold'),
      vb = eqValue(b, 'pred');
    return !!va && !!vb && nodesEqual(va, vb, o);
  }
  const [l1, r1] = a.parts as [string, string];
  const [l2, r2] = b.parts as [string, string];
  if (leafEqual(l1, r2, o) && leafEqual(r1, l2, o)) return true;
  if (isLabel(l1) && isLabel(l2) && labelKey(l1) === labelKey(l2)) {
    const va = eqValue(a, 'gold'),
      vb = eqValue(b, 'pred');
    if (va && vb && nodesEqual(va, vb, o)) return true;
  }
  // Same equation rearranged or rescaled.
  const c = proportionality(`(${l1})-(${r1})`, `(${l2})-(${r2})`);
  return !!c && Math.abs(c.im) <= 1e-9 * Math.abs(c.re) && c.re !== 0;
}

const FLIP: Record<string, string> = { '<': '>', '>': '<', '\\le': '\\ge', '\\ge': '\\le', '\\ne': '\\ne' };

/** `L op R` as "D op' 0" with op' in {<, ≤, ≠}: D = L - R for <, ≤, ≠ and R - L for >, ≥. */
function oneSided(r: Rel): { d: string; op: string } | null {
  if (r.parts.length !== 2) return null;
  const [l, rr] = r.parts as [string, string];
  const op = r.ops[0]!;
  if (op === '<' || op === '\\le' || op === '\\ne') return { d: `(${l})-(${rr})`, op };
  return { d: `(${rr})-(${l})`, op: op === '>' ? '<' : '\\le' };
}

export function relationsEqual(a: Rel, b: Rel, o: CompareOptions, nodesEqual: NodesEqual): boolean {
  if (
    a.iv &&
    b.iv &&
    a.v !== undefined &&
    b.v !== undefined &&
    compactKey(a.v) === compactKey(b.v) &&
    nodesEqual(a.iv, b.iv, o)
  )
    return true;
  if (a.parts.length !== b.parts.length) return false;
  const same = a.ops.every((op, k) => op === b.ops[k]) && a.parts.every((p, k) => leafEqual(p, b.parts[k]!, o));
  if (same) return true;
  const n = b.parts.length;
  if (
    a.ops.every((op, k) => FLIP[op] === b.ops[b.ops.length - 1 - k]) &&
    a.parts.every((p, k) => leafEqual(p, b.parts[n - 1 - k]!, o))
  )
    return true;
  const x = oneSided(a),
    y = oneSided(b);
  if (!x || !y || x.op !== y.op) return false;
  const c = proportionality(x.d, y.d);
  if (!c || Math.abs(c.im) > 1e-9 * Math.abs(c.re)) return false;
  return x.op === '\\ne' ? c.re !== 0 : c.re > 0;
}
