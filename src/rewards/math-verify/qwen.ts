/**
 * @module rewards/math-verify/qwen
 * A second grader with the behaviour of Qwen2.5-Math's evaluation code (QwenLM/Qwen2.5-Math
 * `evaluation/parser.py` `extract_answer` / `strip_string` and `evaluation/grader.py`
 * `math_equal`), so pass@1 numbers can be compared with tables computed by that harness.
 * It is deliberately more lenient than Math-Verify in the same ways Qwen's is: numbers match
 * within a relative 1e-4 and also as percentages (x, x/100, x·100), brackets are ignored when
 * the two sides disagree on them, and symbolic values match numerically within 1e-3.
 */
import { isBareAnswer, lastBoxed } from './extract.ts';
import { leafEqual } from './compare.ts';
import { exactValue, freeSymbols, parseExpr } from './expr.ts';
import { evalAt } from './numeric.ts';
import * as R from './rational.ts';

/** `extract_answer`: last \boxed{}, else text after "he answer is", else the last number. */
export function qwenExtractAnswer(pred: string): string {
  let ans: string;
  const fa = /final answer is \$([\s\S]*?)\$\. I hope/.exec(pred);
  if (fa) ans = fa[1]!;
  else if (pred.includes('boxed')) ans = lastBoxed(pred) ?? '';
  else if (pred.includes('he answer is')) ans = pred.split('he answer is').pop()!.trim();
  // Our one addition: a bare answer such as `(1,2)` is taken whole, not reduced to its last number.
  else if (isBareAnswer(pred.replace(/^\s*\$+|\$+\s*$/g, ''))) ans = pred.replace(/^\s*\$+|\$+\s*$/g, '');
  else {
    const nums = pred.replace(/,/g, '').match(/-?\d*\.?\d+/g);
    ans = nums ? nums[nums.length - 1]! : '';
  }
  ans = ans
    .replace(/\n\s*$/, '')
    .replace(/^[:\s]+/, '')
    .replace(/\.$/, '')
    .replace(/\/$/, '');
  return qwenStripString(ans);
}

/** `_fix_fracs`: `\frac12` → `\frac{1}{2}`, `\frac1b` → `\frac{1}{b}`. */
function fixFracs(s: string): string {
  const parts = s.split('\\frac');
  let out = parts[0]!;
  for (const p of parts.slice(1)) {
    out += '\\frac';
    if (p.startsWith('{') || p.length < 2) out += p;
    else if (p[1] === '{') out += `{${p[0]}}${p.slice(1)}`;
    else out += `{${p[0]}}{${p[1]}}${p.slice(2)}`;
  }
  return out;
}

/** `strip_string`: Qwen's normalisation of an answer string. */
export function qwenStripString(input: string): string {
  let s = String(input).trim().replace(/\n/g, '').replace(/\.+$/, '').replace(/\\!/g, '');
  s = s
    .replace(/\\begin\{array\}\{[^}]*\}/g, '\\begin{pmatrix}')
    .replace(/\\end\{array\}/g, '\\end{pmatrix}')
    .replace(/bmatrix/g, 'pmatrix');
  s = s
    .replace(/tfrac/g, 'frac')
    .replace(/dfrac/g, 'frac')
    .replace(/\\neq/g, '\\ne')
    .replace(/\\leq/g, '\\le')
    .replace(/\\geq/g, '\\ge');
  s = s
    .replace(/\\left/g, '')
    .replace(/\\right/g, '')
    .replace(/\\\{/g, '{')
    .replace(/\\\}/g, '}');
  // _remove_right_units: "5 \text{ cm}" → "5".
  const unit = s.indexOf('\\text{ ');
  if (unit > 0) s = s.slice(0, unit);
  s = s
    .replace(/\^\{\\circ\}/g, '')
    .replace(/\^\\circ/g, '')
    .replace(/\\\$/g, '')
    .replace(/\$/g, '')
    .replace(/\\\(|\\\)/g, '');
  s = s.replace(/\\(?:text|textbf|mbox)\{(.*?)\}/g, '$1');
  for (const k of ['x=', 'y=', 'z=', 'x\\in', 'y\\in', 'z\\in', 'x\\to', 'y\\to', 'z\\to']) s = s.split(k).join('');
  s = s.replace(/\\emptyset/g, '{}').replace(/\(-\\infty,\\infty\)/g, '\\mathbb{R}');
  s = s.replace(/\\%/g, '').replace(/%/g, '');
  s = s.replace(/ \./g, ' 0.').replace(/\{\./g, '{0.');
  if (s.startsWith('.')) s = '0' + s;
  if (s.split('=').length === 2 && s.split('=')[0]!.length <= 2) s = s.split('=')[1]!;
  s = s.replace(/\\sqrt(\w)/g, '\\sqrt{$1}');
  s = s.replace(/ /g, '');
  s = fixFracs(s);
  if (s === '0.5') s = '\\frac{1}{2}';
  // _fix_a_slash_b: "3/4" → "\frac{3}{4}".
  const ab = /^(-?\d+)\/(\d+)$/.exec(s);
  if (ab) s = `\\frac{${ab[1]}}{${ab[2]}}`;
  s = s.replace(/infinity|\\inf(?!ty)/g, '\\infty').replace(/\+\\inity/g, '\\infty');
  s = s.replace(/(\d+)\.0*(?=[^\d]|$)/g, '$1');
  s = s.replace(/(\d),(\d\d\d)(?=$|\D)/g, '$1$2');
  return s.trim();
}

function digits(s: string): number | null {
  const t = s.replace(/,/g, '').replace(/\\?%$/, '');
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

const isClose = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

/** Qwen's `symbolic_equal`: equal expressions, or constants that agree within a relative 1e-3. */
function symbolicEqual(a: string, b: string): boolean {
  try {
    if (leafEqual(a, b)) return true;
    const ja = parseExpr(a),
      jb = parseExpr(b);
    if (freeSymbols(ja).size || freeSymbols(jb).size) return false;
    const ea = exactValue(ja),
      eb = exactValue(jb);
    if (ea?.kind === 'tower' || eb?.kind === 'tower') return false;
    const x = ea?.kind === 'rat' ? R.toNumber(ea.v) : evalAt(ja, { vars: {}, trial: 0 }).re;
    const y = eb?.kind === 'rat' ? R.toNumber(eb.v) : evalAt(jb, { vars: {}, trial: 0 }).re;
    return Number.isFinite(x) && Number.isFinite(y) && isClose(x, y, 1e-3);
  } catch {
    return false;
  }
}

function splitList(s: string): string[] {
  const out: string[] = [];
  let depth = 0,
    start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out.map((x) => x.trim());
}

/** `math_equal(prediction, reference)` on already stripped answers. */
export function qwenMathEqual(pred: string, ref: string, depth = 0): boolean {
  if (depth > 8) return false;
  if (pred.trim().toLowerCase() === ref.trim().toLowerCase()) return true;
  if (/^[A-E]$/.test(ref) && pred.replace(/[^A-E]/g, '').slice(-1) === ref) return true;
  const pd = digits(pred),
    rd = digits(ref);
  if (pd !== null && rd !== null) return [rd / 100, rd, rd * 100].some((r) => isClose(pd, r, 1e-4));
  if (pred === '') return false;
  let p = pred.trim(),
    r = ref.trim();
  if (
    (p.startsWith('[') && p.endsWith(']') && !r.startsWith('(')) ||
    (p.startsWith('(') && p.endsWith(')') && !r.startsWith('['))
  ) {
    const strip = (x: string) =>
      x
        .replace(/^[[\]()]+|[[\]()]+$/g, '')
        .replace(/[{}()]/g, '')
        .toLowerCase();
    if (strip(p) === strip(r)) return true;
  }
  if (/^[([].+[)\]]$/.test(p) && /^[([].+[)\]]$/.test(r)) {
    const ps = splitList(p.slice(1, -1)),
      rs = splitList(r.slice(1, -1));
    if (ps.length === rs.length && ps.length > 1 && ps.every((x, k) => qwenMathEqual(x, rs[k]!, depth + 1)))
      return true;
  }
  const mat = (x: string) => /^\\begin\{pmatrix\}([\s\S]*)\\end\{pmatrix\}$/.exec(x);
  const pm = mat(p),
    rm = mat(r);
  if (pm && rm) {
    const rows = (x: string) =>
      x
        .split('\\\\')
        .map((row) => row.trim())
        .filter(Boolean)
        .map((row) => row.split('&').map((c) => c.trim()));
    const a = rows(pm[1]!),
      b = rows(rm[1]!);
    if (
      a.length === b.length &&
      a.every((row, i) => row.length === b[i]!.length && row.every((c, j) => qwenMathEqual(c, b[i]![j]!, depth + 1)))
    )
      return true;
  }
  const pe = p.split('='),
    re = r.split('=');
  if (pe.length === 2 && re.length === 2) {
    const a = `${pe[0]}-(${pe[1]})`,
      b = `${re[0]}-(${re[1]})`;
    if (symbolicEqual(a, b) || symbolicEqual(`-(${a})`, b)) return true;
  } else if (pe.length === 2 && pe[0]!.trim().length <= 2 && re.length === 1) {
    if (qwenMathEqual(pe[1]!, r, depth + 1)) return true;
  } else if (re.length === 2 && re[0]!.trim().length <= 2 && pe.length === 1) {
    if (qwenMathEqual(p, re[1]!, depth + 1)) return true;
  }
  return symbolicEqual(p, r);
}

/** The whole Qwen pipeline: gold (its last \boxed{} when present) vs a model answer. */
export function qwenVerify(gold: string, pred: string): boolean {
  if (gold.length > 200_000 || pred.length > 200_000)
    throw new RangeError(`input longer than 200000 characters (gold ${gold.length}, prediction ${pred.length})`);
  const g = qwenStripString(lastBoxed(gold) ?? gold);
  return qwenMathEqual(qwenExtractAnswer(pred), g);
}
