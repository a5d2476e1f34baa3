/**
 * @module rewards/math-verify/compare
 * Equivalence of two parsed answers (gold first, prediction second), structure first:
 *   - lists of solutions (a comma list, `\{…\}`, items joined by `or`/`and`/`;`, `\pm`) are
 *     unordered and compared as sets (`(11,7) or (7,11)` = `(7,11),\ (11,7)`); nested lists
 *     flatten, except a *record* of assignments to distinct names (`p=5,q=2`), which is one
 *     solution and compares to a tuple in order (`p=5,q=2;p=7,q=2` = `(5,2),(7,2)`);
 *   - a tuple is ordered, and a tuple gold equals a set prediction only in the same order;
 *   - intervals compare ends and brackets; a relation gold may be answered by its interval,
 *     a set gold by a relation only with `allowSetRelationComp` (Math-Verify's asymmetry);
 *   - equations and relations: relations.ts; matrices cell by cell; `\pm` as its two values;
 *   - scalar leaves: leaf.ts.
 * Anything undecidable is NOT equal: a false negative costs a reward, a false positive teaches cheating.
 */
import type { Node } from './structure.ts';
import { isLabel, isSimpleVar, parse } from './structure.ts';
import { DEFAULT_COMPARE, leafEqual } from './leaf.ts';
import type { CompareOptions } from './leaf.ts';
import { eqValue, equationsEqual, labelKey, relationsEqual } from './relations.ts';

export { leafEqual, DEFAULT_COMPARE } from './leaf.ts';
export type { CompareOptions } from './leaf.ts';

/** Decimal places both sides are rounded to when either was written as a decimal (Math-Verify default). */
export const FLOAT_ROUNDING = DEFAULT_COMPARE.floatRounding;

/** Set comparisons beyond this many item pairs are refused (a hostile list must not cost minutes). */
const MAX_PAIRS = 40_000;

type Eq = Extract<Node, { t: 'eq' }>;
type SetNode = Extract<Node, { t: 'set' }>;

/** A list of assignments to distinct names (`x=1, y=2`, `k = 45 and n = 2`): one solution, not two. */
function isRecord(n: Node): boolean {
  if (n.t !== 'set' || !n.bare || n.items.length < 2 || (n.join !== ',' && n.join !== 'and')) return false;
  const names = new Set<string>();
  for (const it of n.items) {
    if (it.t !== 'eq' || it.parts.length !== 2 || !isLabel(it.parts[0]!)) return false;
    names.add(labelKey(it.parts[0]!));
  }
  return names.size === n.items.length;
}

const pmItems = (n: Extract<Node, { t: 'pm' }>): Node[] => [
  { t: 'leaf', s: `${n.a}+(${n.b})` },
  { t: 'leaf', s: `${n.a}-(${n.b})` },
];

/** The solutions a list-like node stands for, flattened (records stay whole), or null when `n` is not list-like. */
function members(n: Node): Node[] | null {
  if (n.t === 'pm') return pmItems(n);
  if (n.t !== 'set' || isRecord(n)) return null;
  const out: Node[] = [];
  for (const it of n.items) {
    const inner = it.t === 'set' && it.bare ? members(it) : it.t === 'pm' ? pmItems(it) : null;
    if (inner) out.push(...inner);
    else out.push(it);
  }
  return out;
}

/** Set equality: every gold item has an equal prediction item and vice versa (duplicates allowed). */
function setEqual(xs: Node[], ys: Node[], o: CompareOptions): boolean {
  if (xs.length * ys.length > MAX_PAIRS) return false;
  if (xs.length === 0 || ys.length === 0) return xs.length === ys.length;
  const matched = new Array<boolean>(ys.length).fill(false);
  for (const x of xs) {
    let found = false;
    for (let k = 0; k < ys.length; k++) {
      if (nodesEqual(x, ys[k]!, o)) {
        matched[k] = true;
        found = true;
      }
    }
    if (!found) return false;
  }
  return matched.every(Boolean) || ys.every((y, k) => matched[k] || xs.some((x) => nodesEqual(x, y, o)));
}

const orderedEqual = (xs: Node[], ys: Node[], o: CompareOptions): boolean =>
  xs.length === ys.length && xs.every((x, k) => nodesEqual(x, ys[k]!, o));

/** The value of one assignment of a record (`f(n) = n` → n, even though `n` is a name too). */
const recordValue = (it: Node): Node => parse((it as Eq).parts[1]!);

/** A record's values in written order (`x=1, y=2` → 1, 2). */
const recordValues = (r: SetNode): Node[] => r.items.map(recordValue);

function recordEqual(a: Node, b: Node, o: CompareOptions): boolean {
  if (isRecord(a) && isRecord(b)) {
    const ra = a as SetNode,
      rb = b as SetNode;
    if (ra.items.length !== rb.items.length) return false;
    return ra.items.every((x) => {
      const ex = x as Eq;
      const match = rb.items.find((y) => labelKey((y as Eq).parts[0]!) === labelKey(ex.parts[0]!));
      return !!match && nodesEqual(recordValue(ex), recordValue(match), o);
    });
  }
  const [r, other] = isRecord(a) ? [a as SetNode, b] : [b as SetNode, a];
  const vals = recordValues(r);
  if (other.t === 'tuple') return orderedEqual(isRecord(a) ? vals : other.items, isRecord(a) ? other.items : vals, o);
  if (other.t === 'set' && other.bare && !isRecord(other)) {
    const items = members(other) ?? [];
    return isRecord(a) ? orderedEqual(vals, items, o) : orderedEqual(items, vals, o);
  }
  return false;
}

/** A 2-item bracket pair read as an interval: `(a,b]`, `[a,b]`, or `(a,b)` when compared to an interval. */
function asInterval(n: Node): Extract<Node, { t: 'interval' }> | null {
  if (n.t === 'interval') return n;
  if (n.t === 'tuple' && n.items.length === 2)
    return { t: 'interval', lo: n.items[0]!, hi: n.items[1]!, loClosed: n.open === '[', hiClosed: n.close === ']' };
  return null;
}

const setLike = (n: Node): boolean =>
  n.t === 'interval' || n.t === 'union' || n.t === 'set' || (n.t === 'tuple' && n.items.length === 2);

/** One-row or one-column matrix cells, or null. */
function vectorCells(m: Extract<Node, { t: 'matrix' }>): Node[] | null {
  return m.rows.length === 1 ? m.rows[0]! : m.rows.every((r) => r.length === 1) ? m.rows.map((r) => r[0]!) : null;
}

const isDecimalLiteral = (s: string): boolean => /^-?\d*\.\d+$/.test(s.trim());

/** Structural equality of two parsed answers (gold `a`, prediction `b`). */
export function nodesEqual(a: Node, b: Node, o: CompareOptions = DEFAULT_COMPARE): boolean {
  if (a.t === 'leaf' && b.t === 'leaf') return leafEqual(a.s, b.s, o);
  // A plain-text prediction `1,22` against a decimal gold: Math-Verify's decimal comma. Not for a
  // gold `-2,1` (datasets write lists of roots that way) against a prediction `-2.1`.
  if (b.t === 'set' && b.dec && a.t === 'leaf' && isDecimalLiteral(a.s)) return leafEqual(a.s, b.dec, o);
  if (isRecord(a) || isRecord(b)) return recordEqual(a, b, o);

  if (a.t === 'eq' && b.t === 'eq') return equationsEqual(a, b, o, nodesEqual);
  if (a.t === 'eq') {
    const v = eqValue(a, 'gold');
    return !!v && v.t !== 'eq' && nodesEqual(v, b, o);
  }
  if (b.t === 'eq') {
    const v = eqValue(b, 'pred');
    return !!v && v.t !== 'eq' && nodesEqual(a, v, o);
  }

  if (a.t === 'rel' && b.t === 'rel') return relationsEqual(a, b, o, nodesEqual);
  if (a.t === 'rel') return !!a.iv && setLike(b) && nodesEqual(a.iv, b, o);
  if (b.t === 'rel') return o.allowSetRelationComp && !!b.iv && setLike(a) && nodesEqual(a, b.iv, o);

  // A one-element bare list is its element; `{3}` is a set, not 3.
  if (a.t === 'set' && a.bare && a.items.length === 1) return nodesEqual(a.items[0]!, b, o);
  if (b.t === 'set' && b.bare && b.items.length === 1) return nodesEqual(a, b.items[0]!, o);
  if (a.t === 'pm' && b.t === 'pm' && leafEqual(a.a, b.a, o) && leafEqual(a.b, b.b, o)) return true;

  const ma = members(a),
    mb = members(b);
  if (ma && mb) return setEqual(ma, mb, o);
  // A tuple against a list: the same values in the same order.
  if (a.t === 'tuple' && mb && a.open === '(') return orderedEqual(a.items, mb, o);
  if (b.t === 'tuple' && ma && b.open === '(' && a.t === 'set' && a.bare) return orderedEqual(ma, b.items, o);

  switch (a.t) {
    case 'tuple':
      if (b.t === 'tuple') {
        if (a.items.length === 2 && (a.open !== b.open || a.close !== b.close)) return false; // (1,2] is not [1,2]
        return orderedEqual(a.items, b.items, o);
      }
      if (b.t === 'interval') return nodesEqual(asInterval(a) ?? a, b, o);
      if (b.t === 'matrix') return matrixVsTuple(b, a.items, o);
      return false;
    case 'interval': {
      const bi = asInterval(b);
      if (bi)
        return (
          a.loClosed === bi.loClosed &&
          a.hiClosed === bi.hiClosed &&
          nodesEqual(a.lo, bi.lo, o) &&
          nodesEqual(a.hi, bi.hi, o)
        );
      if (b.t === 'union' && b.parts.length === 1) return nodesEqual(a, b.parts[0]!, o);
      return false;
    }
    case 'union':
      if (b.t === 'union') return a.parts.length === b.parts.length && setEqual(a.parts, b.parts, o);
      return a.parts.length === 1 && nodesEqual(a.parts[0]!, b, o);
    case 'matrix':
      if (b.t === 'matrix')
        return a.rows.length === b.rows.length && a.rows.every((r, k) => orderedEqual(r, b.rows[k]!, o));
      if (b.t === 'tuple') return matrixVsTuple(a, b.items, o);
      return false;
    case 'leaf':
      if (b.t === 'union' && b.parts.length === 1) return nodesEqual(a, b.parts[0]!, o);
      return false;
    default:
      return false;
  }
}

function matrixVsTuple(m: Extract<Node, { t: 'matrix' }>, items: Node[], o: CompareOptions): boolean {
  const cells = vectorCells(m);
  return !!cells && orderedEqual(cells, items, o);
}

export { isSimpleVar };
