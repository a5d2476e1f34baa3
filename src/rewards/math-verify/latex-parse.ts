/**
 * @module rewards/math-verify/latex-parse
 * One scalar LaTeX expression → MathJSON, by `@cortex-js/compute-engine` 0.27.0 in its
 * NON-canonical form (canonicalisation evaluates, and `9^{9^{9}}` then never returns), with
 * the input rewritten around the parser's weak spots and the output fixed up:
 *   - small numbers: 0.27 turns `1.6\times10^{-19}`, `2.88e-19` and `0.000000000000000000288`
 *     into the number 0 (a reward hack: any tiny physics answer equalled `\boxed{0}`), so they
 *     are rewritten to `\frac{1.6}{10^{19}}` first, which it keeps exactly;
 *   - `F_k F_{n-k-1}`: a one-character subscript swallows what follows (`F_{k F_{n-k-1}}`), so
 *     every one-character subscript is braced;
 *   - function calls: `f(x)`, `P(x)`, `I(0)` arrive as products with a bracket; they become
 *     `["OpaqueCall", name, ...args]` (an uninterpreted function, see numeric.ts), so `I(0)`
 *     is not `I·0 = 0`; a subscripted symbol `F_{n}` becomes `OpaqueCall("F_", n)`.
 */
import { ComputeEngine } from '@cortex-js/compute-engine';

/** MathJSON as compute-engine emits it: numbers, symbols / 'strings', `{num}` objects, [head, ...args]. */
export type Json = number | string | { num: string } | Json[];

let engine: ComputeEngine | null = null;
const cache = new Map<string, Json>();

/** Parses one expression (non-canonical); throws on a LaTeX syntax error compute-engine reports. */
export function parseExpr(latex: string): Json {
  const hit = cache.get(latex);
  if (hit !== undefined) return hit;
  checkBrackets(latex);
  engine ??= new ComputeEngine();
  const src = rewriteForParser(latex);
  const json = fixup(engine.parse(src, { canonical: false }).json as Json, 0);
  if (containsError(json)) throw new Error(`cannot parse "${latex.slice(0, 80)}"`);
  if (cache.size > 5000) cache.clear();
  cache.set(latex, json);
  return json;
}

/**
 * Refuses unbalanced brackets before compute-engine sees them: its parser backtracks on every
 * unclosed `(`, `[`, `{` or `\left`, which takes exponential time (`\left(` × 8 ≈ 40 s, `[` × 8
 * ≈ 30 s on 0.27.0). Any bracket kind closes any (`[0,1)` is balanced), as in scan.ts; `\left` /
 * `\right` count as brackets whatever delimiter follows (`\left.`), so their delimiter is skipped.
 * Linear in the input; the thrown message names the problem (the comparison then scores 0).
 */
export function checkBrackets(s: string): void {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d = 0;
    if (c === 92 /* \\ */) {
      const m = /^\\([a-zA-Z]+|.)/.exec(s.slice(i, i + 40));
      const name = m ? m[1]! : '';
      if (name === 'left' || name === 'langle' || name === 'lbrace' || name === 'lbrack' || name === '{') d = 1;
      else if (name === 'right' || name === 'rangle' || name === 'rbrace' || name === 'rbrack' || name === '}') d = -1;
      i += m ? m[0].length - 1 : 0;
      // the delimiter after \left / \right belongs to it: `\left(` is one opener, `\right]` one closer
      if (name === 'left' || name === 'right') {
        while (s[i + 1] === ' ') i++;
        if (s[i + 1] === '\\') {
          const dm = /^\\([a-zA-Z]+|.)/.exec(s.slice(i + 1, i + 12));
          i += dm ? dm[0].length : 1;
        } else i++;
      }
    } else if (c === 40 || c === 91 || c === 123)
      d = 1; // ( [ {
    else if (c === 41 || c === 93 || c === 125) d = -1; // ) ] }
    depth += d;
    if (depth < 0) throw new Error(`unbalanced brackets: a closing bracket at ${i} has no opener`);
  }
  if (depth !== 0) throw new Error(`unbalanced brackets: ${depth} unclosed`);
}

/** `\frac{M}{10^{k}}` for a mantissa and a positive power of ten (kept exact by the parser). */
const tiny = (m: string, k: string | number): string => `\\frac{${m}}{10^{${Number(k)}}}`;

/** A decimal with six or more zeros after the point, as mantissa / 10^k (`0.000000288` → 2.88 / 10^7). */
function smallDecimal(int: string, frac: string): string {
  const z = /^0*/.exec(frac)![0].length;
  const digits = frac.slice(z);
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return tiny(m, z + 1);
}

/** Constructs compute-engine 0.27 does not parse (or parses wrongly), rewritten to ones it does. */
export function rewriteForParser(s: string): string {
  return s
    .replace(/\\binom\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, '\\operatorname{Binomial}($1,$2)')
    .replace(/\\operatorname\{(arc\w+|sgn)\}/g, '\\$1')
    .replace(
      /(\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×)\s*10\s*\^\s*(?:\{\s*-\s*(\d+)\s*\}|-\s*(\d))/g,
      (_m, m: string, a?: string, b?: string) => tiny(m, (a ?? b)!),
    )
    .replace(/(?<![\w.])(\d+(?:\.\d+)?)[eE]-(\d+)(?![\w.])/g, (_m, m: string, k: string) => tiny(m, k))
    .replace(/(?<![\w.])(0)\.(0{6,}\d+)(?![\w.])/g, (_m, i: string, f: string) => smallDecimal(i, f))
    .replace(/_([A-Za-z0-9])/g, '_{$1}');
}

/** Single-letter names read as functions whenever a bracket follows (`f(x)`, not f·x). */
const FUNCTION_LETTERS = new Set(['f', 'g', 'h', 'F', 'G', 'H']);
const NOT_FUNCTIONS = new Set(['Exp', 'Pi', 'e', 'i', 'ExponentialE', 'ImaginaryUnit', 'Half']);

const isNumber = (j: Json): boolean => typeof j === 'number' || (typeof j === 'object' && !Array.isArray(j));

/**
 * Whether `name(arg)` is a call rather than a product: the usual function letters, a multi-letter
 * `\operatorname{…}` name, an upper-case letter applied to one variable (`P(x)`, `W(n)`), or any
 * letter applied to a number (`I(0)`: a product would be written `0I`).
 */
function isCall(name: string, arg: Json): boolean {
  if (NOT_FUNCTIONS.has(name) || name.startsWith("'")) return false;
  if (FUNCTION_LETTERS.has(name) || /^[A-Za-z]{2,}(_upright)?$/.test(name) || /^[A-Z]_upright$/.test(name)) return true;
  if (/^[A-Z]$/.test(name) && typeof arg === 'string' && /^[a-z]$/.test(arg)) return true;
  return /^[A-Za-z]$/.test(name) && isNumber(arg);
}

function callArgs(d: Json[]): Json[] {
  const inner = d[1]!;
  return Array.isArray(inner) && inner[0] === 'Sequence' ? inner.slice(1) : [inner];
}

function fixup(j: Json, depth: number): Json {
  if (!Array.isArray(j) || depth > 300) return j;
  const d = j[2];
  // `Binomial(a,b)` arrives as InvisibleOperator("Binomial", Delimiter(Sequence(a,b))): make it a call.
  if (
    j[0] === 'InvisibleOperator' &&
    j[1] === 'Binomial' &&
    j.length === 3 &&
    Array.isArray(d) &&
    d[0] === 'Delimiter' &&
    Array.isArray(d[1]) &&
    d[1][0] === 'Sequence' &&
    d[1].length === 3
  ) {
    return ['Binomial', fixup(d[1][1]!, depth + 1), fixup(d[1][2]!, depth + 1)];
  }
  if (j[0] === 'At' && typeof j[1] === 'string' && j.length >= 3)
    return ['OpaqueCall', `${j[1]}_`, ...j.slice(2).map((x) => fixup(x, depth + 1))];
  if (j[0] === 'InvisibleOperator') {
    const out: Json[] = [];
    for (let k = 1; k < j.length; k++) {
      const name = j[k]!,
        next = j[k + 1];
      if (
        typeof name === 'string' &&
        Array.isArray(next) &&
        next[0] === 'Delimiter' &&
        next.length >= 2 &&
        isCall(name, next[1]!)
      ) {
        out.push(['OpaqueCall', name, ...callArgs(next).map((x) => fixup(x, depth + 1))]);
        k++;
      } else out.push(fixup(name, depth + 1));
    }
    return out.length === 1 ? out[0]! : ['InvisibleOperator', ...out];
  }
  return j.map((x, k) => (k === 0 ? x : fixup(x, depth + 1)));
}

function containsError(j: Json): boolean {
  if (Array.isArray(j)) {
    if (j[0] === 'Error' || j[0] === 'LatexString') return true;
    return j.some(containsError);
  }
  return j === 'Nothing';
}
