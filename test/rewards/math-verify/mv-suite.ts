/**
 * @module test/rewards/math-verify/mv-suite
 * Answer-level rows of Math-Verify's own test suite, transcribed as data: `[gold, pred,
 * expected, options]` exactly as the Python strings evaluate (a raw string's `\\` is written
 * `\\\\` here; a non-raw string is copied with its escapes, so `"$\text{13}$"` really holds a
 * TAB, as it does in Python). Left out: the long model transcripts (predictions of more than
 * ~500 characters, which test extraction from whole generations, not answers), rows testing
 * the parser's return values instead of `verify`, and one malformed row without an expected
 * value (test_numina_cases.py's `\text{Even}`).
 *
 * Sources (public test data, MIT licence, Copyright (c) 2024 The HuggingFace Team):
 *   huggingface/Math-Verify tests/test_all.py          (compare_strings rows; match types and precision per test)
 *   huggingface/Math-Verify tests/test_yujianll.py     (default parse)
 *   huggingface/Math-Verify tests/test_numina_cases.py (latex + expr; read from the fork wantbook-book/Math-Verify)
 *   huggingface/Math-Verify tests/test_open_thoughts.py (latex + expr; same fork)
 */

/** How Math-Verify's test parsed the strings: `latex`, `expr` or both (`compare_strings`' match_types). */
export type MvMode = 'latex' | 'expr' | 'both';

export interface MvOptions {
  mode?: MvMode;
  /** `float_rounding` of that test (default 6). */
  precision?: number;
  allowSetRelationComp?: boolean;
}

export type MvRow = readonly [gold: string, pred: string, expected: 0 | 1, opts?: MvOptions];

export interface MvGroup {
  source: string;
  opts: MvOptions;
  rows: MvRow[];
}

const LATEX: MvOptions = { mode: 'latex' };
const EXPR: MvOptions = { mode: 'expr' };
const BOTH: MvOptions = { mode: 'both' };

export const MV_SUITE: MvGroup[] = [
  {
    source: 'test_all.py::test_number_extraction',
    opts: EXPR,
    rows: [
      ['-5', '-5', 1],
      ['7425000', '7,425,000', 1],
      ['1000', '1 000', 1],
      ['1000', '1000.0', 1],
      ['1000.0', '1,000.0', 1],
      ['1000.99', '1000,99', 1],
      ['1,22', '1.22', 1],
      ['2.74', 'Soucis : 2,74 $ a..', 1],
      ['0.4', '.4', 1],
      ['1000.99', '1,000.99', 1],
      ['1000.99', '1,000.99', 1],
      ['1000.99', '$1,000.99', 1],
      ['1000.99', '1,000.99$', 1],
      ['1000.99', 'the number is not 10 which is 1,000.99€', 1],
      ['1000.99', 'the number is not 10 which is 1,000.99€', 1],
      ['1000.99', 'so the number is 10 which is 1,000.99m²', 1],
      ['1000.99', "not it's not 10 it's 1,000.99m²", 1],
      ['0,111', '0.111', 1],
      ['2', 'AZYUK2A', 0],
    ],
  },
  {
    source: 'test_all.py::test_simple_fraction_notation',
    opts: BOTH,
    rows: [
      ['10/9', '\\frac{10}{9}', 1],
      ['-10/9', '-\\frac{10}{9}', 1],
    ],
  },
  {
    source: 'test_all.py::test_sets_handling',
    opts: BOTH,
    rows: [
      ['$[0,1)$', '$[0,1)$', 1],
      ['$[0,1)$', '$[0,1)$', 1],
      ['$[0,9)$', '$[0,1)$', 0],
      ['$(0,9)$', '$[0,9)$', 0],
      ['$1$', '$-[0,1)$', 0],
    ],
  },
  {
    source: 'test_all.py::test_latex_notation',
    opts: LATEX,
    rows: [
      ['$9$', 'Answer \\[ 9 \\]', 1],
      ['$9$', 'Answer $ 9 $', 1],
      ['$9$', 'Answer $$ 9 $$', 1],
      ['$9$', 'Answer \\( 9 \\)', 1],
      ['$10$', 'Answer \\( (9+1) \\)', 1],
      ['$9$', 'Answer $ \n 9 \n $', 0],
      ['$9$', 'Answer \\( \n 9 \n \\)', 0],
      ['$9$', 'Answer \\[ \n 9 \n \\]', 1],
      ['$9$', 'Answer $$ \n 9 \n $$', 1],
      ['$10/9$', 'Answer $ \\frac{1}{2} \\$ = \\frac{10}{9} $', 1],
      ['$1/3$', '$\\frac13 $', 1],
      ['$1$', '$\\frac3{3} $', 1],
      ['$\\sqrt{3}$', '$\\sqrt3 $', 1],
      ['$1/3$', '$\\cfrac{1}{3} $', 1],
      ['$1/3$', '$\\dfrac{1}{3} $', 1],
      ['$1/3$', '$\\tfrac{1}{3} $', 1],
      ['$1/3$', '$ 1/3 $', 1],
      ['$1/3$', '$\\left( \\frac{1}{3} \\right)$', 1],
      ['$1/3$', '$\\boxed{\\frac{1}{3}}$', 1],
      ['$1/3$', '$\\frac{1}{3} \\text{meters}$', 1],
      ['$1/3$', '$\\frac{1}{3} \\textbf{meters}$', 1],
      ['$1/3$', '$k = \\frac{1}{3}$', 1],
      ['$1/3$', '$\\frac{1}{3} \\textbf{meters}$', 1],
    ],
  },
  {
    source: 'test_all.py::test_percent_notation',
    opts: BOTH,
    rows: [
      ['$28\\%$', '28 percent', 1],
      ['$28\\%$', '28 pct', 1],
      ['$28\\%$', '28 %', 1],
      ['$28\\%$', '$28$ %', 1],
      ['$28\\%$', '$28$ percent', 1],
      ['$28\\%$', '$\\boxed{28}$ pct', 1],
      ['$28\\%$', '$\\boxed{28 pct}', 1],
      ['$28\\%$', '$\\boxed{28 percent}', 1],
      ['$28\\%$', '$\\boxed{28 percentage}', 1],
      ['$28\\%$', '28', 1],
      ['$0.28$', '28', 0],
      ['$28/100$', '28', 0],
      ['$28$', '28/100', 0],
      ['$\\frac{28}{100}$', '28', 0],
      ['$28*\\frac{1}{100}$', '28', 0],
    ],
  },
  {
    source: 'test_all.py::test_latex_notation_math',
    opts: LATEX,
    rows: [
      ['$2-2p$', 'Since $x<2$, it follows that $|x-2|=2-x$. If $2-x=p$, then $x=2-p$. Thus $x-p=\\boxed{2-2p}$.', 1],
      [
        '\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.\n\\end{align*}',
        '\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.\n\\end{align*}',
        1,
      ],
      [
        '$\\frac{14}{3}$',
        '$f(-2)+f(-1)+f(0)=\\frac{3(-2)-2}{-2-2}+\\frac{3(-1)-2}{-1-2}+\\frac{3(0)-2}{0-2}=\\frac{-8}{-4}+\\frac{-5}{-3}+\\frac{-2}{-2}=2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$',
        1,
      ],
      [
        '$\\text{Evelyn}$',
        "Evelyn covered more distance in less time than Briana, Debra and Angela, so her average speed is greater than any of their average speeds. Evelyn went almost as far as Carla in less than half the time that it took Carla, so Evelyn's average speed is also greater than Carla's. Therefore, $\\boxed{\\text{Evelyn}}$ is our answer.",
        1,
      ],
      [
        '$3\\sqrt{13}$',
        'We use the distance formula:  \\begin{align*} \\sqrt{(2 - (-4))^2 + ((-6) - 3)^2} &= \\sqrt{6^2 + (-9)^2}\\\\ & = \\sqrt{36 + 81}\\\\ & = \\sqrt{117} = \\boxed{3\\sqrt{13}}. \\end{align*}',
        1,
      ],
      ['$2$', 'Of the two-digit perfect squares, only $4^2=16$ and $6^2=36$ end in $6$. Thus, there are $\\boxed{2}$ distinct possible values for $B$.', 1],
      [
        '$15\\mbox{ cm}^2$',
        'The shaded triangle has a base of length $10\\text{ cm}.$ Since the triangle is enclosed in a rectangle of height $3\\text{ cm},$ then the height of the triangle is $3\\text{ cm}.$ (We know that the enclosing shape is a rectangle, because any figure with four sides, including two pairs of equal opposite sides, and two right angles must be a rectangle.) Therefore, the area of the triangle is $$\\frac{1}{2}\\times 3 \\times 10 = \\boxed{15\\mbox{ cm}^2}.$$',
        1,
      ],
      [
        '$-2,1$',
        'By the Integer Root Theorem, the possible integer roots are all the divisors of 14 (including negative divisors), which are $-14,$ $-7,$ $-2,$ $-1,$ $1,$ $2,$ $7,$ and $14.$  Checking, we find that the only integer roots are $\\boxed{-2,1}.$',
        1,
      ],
      [
        '$9$',
        'We use the property that $a \\equiv b \\pmod{m}$ implies $a^c \\equiv b^c \\pmod{m}$. Since $129 \\equiv -3 \\pmod{11}$ and $96 \\equiv -3 \\pmod{11}$, we have  $$129^{34}+96^{38} \\equiv (-3)^{34}+(-3)^{38} \\equiv 3^{34}+3^{38} \\pmod{11}.$$ Since $3^5 \\equiv 1 \\pmod{11},$ we can see that $3^{34} = (3^5)^{6} \\cdot 3^4$ and $3^{38} = (3^5)^{7} \\cdot 3^3.$ Then, $129^{34}+96^{38} \\equiv \\boxed{9} \\pmod{11}.$',
        1,
      ],
      ['$90^\\circ$', 'Therefore, \\begin{align*} \\angle BAC &= \\angle BAD + \\angle DAC \\\\ &= 50^\\circ+40^\\circ \\\\ &= \\boxed{90^\\circ}. \\end{align*}', 1],
      [
        '$0$',
        'Note that $p(x)$ has degree at most 2.  Also, $p(a) = p(b) = p(c) = 1.$  Thus, the polynomials $p(x)$ and 1 agree at three different values, so by the Identity Theorem, they are the same polynomial.  Hence, the degree of $p(x)$ (which is the constant polynomial 1) is $\\boxed{0}.$',
        1,
      ],
      ['$(6,31,-1)$', 'Let $\\alpha$ be a root of $x^3 - 3x^2 + 4x - 1 = 0,$ so $\\alpha^3 = 3 \\alpha^2 - 4 \\alpha + 1.$ Then solving the system of equations, we find $(p,q,r) = \\boxed{(6,31,-1)}.$', 1],
      ['$1 \\pm \\sqrt{19}$', 'This simplifies to $64y + 1920 = 0,$ so $y = -30.$ Then $x^2 - 2x - 48 = -30,$ or $x^2 - 2x - 18 = 0.$ By the quadratic formula, $x = \\boxed{1 \\pm \\sqrt{19}}.$', 1],
      ['$3 \\pm 2 \\sqrt{2}$', 'This gives us $x^2 + 1 = 6x,$ or $x^2 - 6x + 1 = 0.$ By the quadratic formula, the roots are $x = \\boxed{3 \\pm 2 \\sqrt{2}}.$', 1],
      ['$\\{1\\pm\\sqrt{5},-2\\}$', 'The roots of $P(x)$ are $-2$ and $1 \\pm \\sqrt{5}$, so the answer is $\\boxed{\\{1\\pm\\sqrt{5},-2\\}}.$', 1],
      ['$2 \\sin b \\cos a$', 'By sum-to-product,\n\\[\\sin (a + b) - \\sin (a - b) = \\boxed{2 \\sin b \\cos a}.\\]', 1],
      ['$125$ miles', 'The distance is $\\boxed{125\\textnormal{ miles}}.$', 1],
      [
        '$[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0) \\cup (0, 1) \\cup (1, \\infty)$',
        'The solution set is $\\boxed{[-1, -\\tfrac12) \\cup (-\\tfrac12, 0) \\cup (0, 1) \\cup (1, \\infty)}.$',
        1,
      ],
      ['$\\sqrt{2}+\\sqrt{5}$', 'The answer is $\\boxed{\\sqrt 2+\\sqrt 5}$', 1],
      ['$\\frac{9}{4}\\pi$', 'Therefore $\\boxed{\\frac94\\pi}$.', 1],
      ['x \\in \\boxed{\\{-1\\} \\cup [0,7)}.$', 'x \\in \\boxed{\\{-1\\} \\cup [0,7)}.$', 1],
    ],
  },
  {
    source: 'test_all.py::test_relations_math',
    opts: LATEX,
    rows: [
      ['$x >= 5$', 'Therefore $x \\geq 5$ is the solution.', 1],
      ['$x < 3$', 'We find that $x \\lt 3$.', 1],
      ['$x \\leq 2$', 'Thus $x <= 2$ is our answer.', 1],
      ['$x > 5$', 'Therefore $x \\gt 5$ is the solution.', 1],
      ['$x != 3$', 'We find that $x \\neq 3$.', 1],
      ['$x > 5$', 'Therefore $x < 5$ is the solution.', 0],
      ['$x \\geq 5$', 'The solution is $x \\leq 5$', 0],
      ['$x \\neq 5$', 'The solution is $x != 5$', 1],
      ['$x \\leq 5$', '$5 \\geq x$', 1],
      ['$x \\geq 5$', '$5 \\leq x$', 1],
      ['$x = 11$', '$x = 5+5+1 = 7 =11$', 1],
      ['$7 = 11a+c$', '$11a+c$', 0],
      ['$x = 11$', '$x = 5+5+1 = 7 =11$', 1],
      ['$x = 1/3$', '$x = 5+5+1 = 1/3 \\approx 11$', 1],
      ['$11$', '$x=11$', 1],
      ['$11$', '$x\\approx11$', 1],
      ['$1/3$', '$x=1/3\\approx1.3$', 1],
      ['$x < 1$', '$-x > -1$', 1],
      ['$x < 1$', '$x > -1$', 0],
      ['$x <= 1$', '$-x >= -1$', 1],
      ['$a +3z = 0$', '$0$', 0],
      ['$1 = \\zzz = x = 0$', '$0$', 1],
      ['$2x + z = 1$', '$1$', 0],
      ['$a^2 + b = 0$', '$0$', 0],
      ['$k=1$', '$1$', 1],
      ['$1$', '$k=1$', 1],
      ['$z = 1 + 1 = 2$', '$z = 3+3 = 2$', 1],
      ['$z = 1 + 1 = 2$', '$z = 3+3 = 2$', 1],
      ['$2x+4y-3=0$', '$y=-\\frac{1}{2}x+\\frac{3}{4}$', 1],
      ['$x^2/4 + y^2/3 = 1$', '$x^2/16 + y^2/12 = 1/4$', 1],
    ],
  },
  {
    source: 'test_all.py::test_matrix_extraction',
    opts: LATEX,
    rows: [
      ['$\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$', 'The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.', 1],
      ['$\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}$', 'Here is a zero matrix: $ \\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix} $', 1],
      ['$\\begin{pmatrix}1 & 2 \\\\3 & 4\\end{pmatrix}$', 'Special matrix: $ \\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right] $', 1],
      [
        '$\\begin{pmatrix}\\frac{1}{2} & \\frac{3}{4} \\\\ \\frac{5}{6} & \\frac{7}{8}\\end{pmatrix}$',
        'Matrix with fractions: $ \\begin{pmatrix}\\frac{1}{2} & \\frac{3}{4} \\\\ \\frac{5}{6} & \\frac{7}{8}\\end{pmatrix} $',
        1,
      ],
      ['$\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}$', 'The sum is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$', 1],
      [
        '$\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$',
        'When multiplying by identity: $\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$',
        1,
      ],
      ['$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}$', 'The matrix is $\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}$', 0],
    ],
  },
  {
    source: 'test_all.py::test_precision (compare_strings row)',
    opts: { mode: 'both', precision: 4 },
    rows: [['$\\frac{1}{3}$', '0.3333$', 1]],
  },
  {
    source: 'test_all.py::test_complex_math_expressions',
    opts: BOTH,
    rows: [
      ['$\\frac{1}{12}$', '$0.0833333333333333$', 1],
      ['$(1,\\frac{9}{2})$', '$(1,4.5)$', 1],
      ['$\\frac{x+2}{7}$', '$\\frac{x}{7}+\\frac{2}{7}$', 1],
      ['$\\tan^2(y)+1$', '$\\sec^2(y)$', 1],
      ['$\\begin{pmatrix}-\\\frac{7}{4}&-2\\\\4&\\frac{1}{4}\\\\\\end{pmatrix}$', '$\\begin{pmatrix}-\\\frac{7}{4}&-2\\\\4&\\frac{1}{4}\\\\\\end{pmatrix}$', 1],
      [
        '$\\begin{pmatrix}\\frac{1}{3\\sqrt[3]{x}^2}&0&0\\\\0&1&0\\\\-\\sin(x)&0&0\\\\\\end{pmatrix}$',
        '$\\begin{pmatrix}\\frac{1}{3x^{2/3}}&0&0\\\\0&1&0\\\\-\\sin(x)&0&0\\end{pmatrix}$',
        1,
      ],
      ['$34x+45y-20z+100=0$', '$-34x-45y+20z-100=0$', 1],
      ['$(\\begin{pmatrix}\\frac{1}{3}\\\\ \\frac{1}{5} \\end{pmatrix})$', '$\\begin{pmatrix}0.33\\\\0.2 \\end{pmatrix}$', 1, { precision: 2 }],
      ['$\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{15+2\\sqrt{33}}$', '$\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{2\\sqrt{33}+15}$', 1],
      ['$(a+5)(b+2)$', '$(+5)(b+2)$', 0],
      ['$2$', '$\\frac{1+\\sqrt{5}}{2}$', 0],
      ['$4$', '$\\frac{34}{16}+\\frac{\\sqrt{1358}}{16}$', 0],
      ['$1\\sqrt{19}$', '$1$', 0],
      ['$(\\frac{3}{5},\\frac{8}{3}]$', '$(0.6,2.6667]$', 1, { precision: 2 }],
      ['$x+2n+1$', '$x+1$', 0],
    ],
  },
  {
    source: 'test_all.py::test_math_extraction_additional_cases',
    opts: BOTH,
    rows: [
      [
        '$less than or equal to zero between its roots. Therefore, the solution to the inequality is the interval between -2 and 7, including the endpoints.\n\nThus, the solution in interval notation is:\n\n\\[ \\boxed{[-2, 7]} \\]$',
        '$x \\in [-2,7]$',
        1,
      ],
      ['$34$', 'Final Answer: The largest $n$ is 34.', 1],
      [
        '$\\\\left( \\\\frac{4}{3}, -\\\\frac{1}{3} \\\\right)$',
        'Since $AP:PB = 1:4,$ we can write \\[\\frac{\\overrightarrow{A} - \\overrightarrow{P}}{1} = \\frac{\\overrightarrow{B} - \\overrightarrow{P}}{4}.\\]Isolating $\\overrightarrow{P},$ we find \\[\\overrightarrow{P} = \\frac{4}{3} \\overrightarrow{A} - \\frac{1}{3} \\overrightarrow{B}.\\]Thus, $(t,u) = \\boxed{\\left( \\frac{4}{3}, -\\frac{1}{3} \\right)}.$',
        1,
      ],
      ['$(3,1)$', '${1,3}$', 0],
      ['$(1,3)$', '${1,3}$', 1],
      ['$[-4,0]$', 'Thus, the values of \\( k \\) for which the quadratic has real roots are: \\[ \\boxed{[-4, 0]} \\]', 1],
      ['\\(\\boxed{\\text{C}}\\).', '$\\boxed{\\text{(C)}}.$', 1],
      [' So the answer is: \\[ \\boxed{11111111100} \\]', 'is $\\boxed{11,\\! 111,\\! 111,\\! 100}$', 1],
      [' So the answer is: \\[ \\boxed{32349} \\]', 'is $\\boxed{32,\\! 349}$', 1],
      [' So the answer is: \\[ \\boxed{32349} \\]', 'is $\\boxed{32, 349}$', 0],
      ['Thus, the domain of the function \\( f(x) \\) is: \\[ \\boxed{(2, 12) \\cup (12, 102)} \\]', 'Thus, the answer is $x \\in \\boxed{(2,12) \\cup (12,102)}$', 1],
      ['$\\text{E}$', '$E$', 1],
      ['$\\boxed{1}\\boxed{2}$', '$\\boxed{1,2}$', 1],
    ],
  },
  {
    source: 'test_all.py::test_set_rel_assymetry',
    opts: LATEX,
    rows: [
      ['$-2 \\\\le x \\\\le 7$', '$x \\in [-2,7]$', 1, { allowSetRelationComp: true }],
      ['$-2 \\\\le x \\\\le 7$', '$x \\in [-2,7]$', 1, { allowSetRelationComp: false }],
      ['$x \\in [-2,7]$', '$-2 \\\\le x \\\\le 7$', 1, { allowSetRelationComp: true }],
      ['$x \\in [-2,7]$', '$-2 \\\\le x \\\\le 7$', 0, { allowSetRelationComp: false }],
    ],
  },
  {
    source: 'test_all.py::test_float_precision, test_sqrt_precision, test_symbols',
    opts: { mode: 'both', precision: 5 },
    rows: [
      ['4.123105625617661', '$\\sqrt{17}$', 1],
      ['$4$', '$4\\sqrt{2}$', 0],
      ['$\text{13}$', '$13$', 0],
    ],
  },
  {
    source: 'test_all.py::test_trailing_punctuation',
    opts: BOTH,
    rows: [
      ['$\\frac{1}{3}$', '$\\frac{1}{3}.$', 1],
      ['$\\frac{1}{3}$', 'The answer is $\\frac{1}{3}.$', 1],
      ['$\\frac{1}{3}$', '$$\\frac{1}{3}.$$', 1],
      ['$\\frac{1}{3}$', '\\[\\frac{1}{3}.\\]', 1],
      ['$\\frac{1}{3}$', '$\\frac{1}{3},$', 1],
      ['$\\frac{1}{3}$', '$\\frac{1}{3} .$', 1],
      ['$\\sqrt{2}$', '$\\sqrt{2}.$', 1],
      ['$(1,2)$', '$(1,2).$', 1],
      ['$5$', '$5 \\text{ cm}.$', 1, { mode: 'latex' }],
      ['$42$', '$42.$', 1, { mode: 'latex' }],
      ['$2$', '$2^{10}.$', 0],
      ['$1$', 'The answer is $1/3.$', 0],
      ['$1, 2, 3$', '$1, 2, 3, ...$', 0],
    ],
  },
  {
    source: 'test_numina_cases.py',
    opts: BOTH,
    rows: [
      ['$(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$', '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$', 1],
      ['$(p,q)=(3,2)$', '$(3,2)$', 1],
      ['$(0;0;0),(0;-2;0),(0;0;6),(0;-2;6),(4;0;0),(4;-2;0),(4;0;6),(4;-2;6)$', '\\boxed{(4, 0, 6), (4, -2, 6), (0, 0, 6), (0, -2, 6), (4, 0, 0), (4, -2, 0), (0, 0, 0), (0, -2, 0)}', 1],
      ['$1\\leq|z|\\leq \\frac{3}{2}$', '$z \\in \\left[-\\frac{3}{2}, -1\\right] \\cup \\left[1, \\frac{3}{2}\\right]$', 1],
      ['$-12;-11;-10;-8;-7;-6$', '$\\boxed{\\{-12, -11, -10, -8, -7, -6\\}}$', 1],
      ['$AB=4,CD=5$', '$\\boxed{4, 5}$', 1],
      ['$(11,7)or(7,11)$', '$\\boxed{(7,11),\\ (11,7)}$', 1],
      ['$S_{MBCN}:S=7:32$', '$\\boxed{7:32}$', 1],
      ['$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$', '$\\frac{1}{\\sqrt{6}}$', 1],
      ['$p=5,q=2;p=7,q=2$', '$(5,2),(7,2)$', 1],
      ['$(p,q,r)=(3,2,7)$', '$(3,2,7)$', 1],
      ['$P(x) = 1$', '$p(x) = 1$', 1],
      ['$V_{1}:V_{2}=11:21$', '$11:21$', 1],
      ['$(2,1),(1,2),(-1,-20),(-20,-1)$', 'solutions are:\\n\\n\\\\[\\n\\\\boxed{(1, 2)}, \\\\boxed{(2, 1)}, \\\\boxed{(-1, -20)}, \\\\boxed{(-20, -1)}\\n\\\\]', 1],
      ['\\(\\boxed{1}\\) and \\(\\boxed{-2}\\).', '$\\boxed{-2,1}$.', 1],
      ['$\\text{odd}$', '$odd$', 1],
      ['$\\text{e}$', '$e$', 1],
      ['$\\text{E}$', '$E$', 1],
      ['$d$', '$\\text{E}$', 0],
      ['$1$ and $2$ and $3$', '$\\boxed{1,2,3}$', 1],
      ['$(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$', '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$', 1],
      ['$(37,3,3),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$', '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$', 0],
      ['$(p,q)=(3,2)$', '$\\boxed{(3, 2)}$', 1],
      ['\\boxed{x = -5,\\ p = \\frac{14}{3}} ', '$\\boxed{-5, \\frac{14}{3}}$', 1],
      ['\\boxed{a=4,\\,-8,\\,-10}', '$\\boxed{-10,-8,4}$', 1],
      ['\\\\boxed{W(n) = 1 \\\\text{ and } W(n) = -1', 'W(x)=1orW(x)=-1', 1],
      ['$21,16$ or $11$', '$21,16,11$', 1],
      ['\\boxed{ p = 5, q = 2 \\quad \\text{and} \\quad p = 7, q = 2}', '$p=5,q=2;p=7,q=2$', 1],
      ['\\n\\n\\[ \\boxed{p = -1 \\text{ and } p = \\dfrac{15}{8}} \\]', '$p=-1,p=\\frac{15}{8}$', 1],
      ['$0<f(x)<1$', '$(0,1)$', 1],
      ['\\(\\boxed{6 \\text{ and } 8}\\)', '$\\boxed{6,8}$', 1],
    ],
  },
  {
    source: 'test_open_thoughts.py',
    opts: BOTH,
    rows: [
      ['$$\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}, \\boxed{13}$$', '$${2, 3, 5, 7, 13}$$', 1],
      ['$$f(y) = y$$', '$$f(y) = y$$', 1],
      ['$$-793 < a < 10$$', '$$(-793, 10)$$', 1],
      ['$$\\text{The midpoints form a regular hexagon}$$', '$$\\text{The midpoints form a regular hexagon}$$', 1],
      ['$$a_3 = 2, a_{37} = 19$$', '$$\\boxed{a_{37} = 19, \\quad a_3 = 2}$$', 1],
      ['$$(2, 2), (1, 3), (3, 3)$$', '$$\\boxed{(2, 2), (1, 3), (3, 3)}$$', 1],
      ['$$(1, +\\infty)$$', '$$(1, +\\infty)$$', 1],
      ['$$x = \\frac{1}{2}, x = \\frac{-1 \\pm \\sqrt{13}}{4}$$', '$$\\boxed{x = \\frac{1}{2}, x = \\frac{-1 \\pm \\sqrt{13}}{4}}$$', 1],
      ['$$0.06 \\text{ yuan}$$', '$$\\boxed{0.06 \\text{ yuan}}$$', 1],
      ['$$(5, 8), (8, 5)$$', '$$\\boxed{(x, y) = (5, 8) \\quad \\text{and} \\quad (8, 5)}$$', 1],
      ['$$667$$', '$$\\boxed{667}$$', 1],
      ['$$6 \\text{ and } 8$$', '$$\\boxed{6 \\text{ and } 8}$$', 1],
      ['$$(2, 2), (6, 2)$$', '$$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$$', 1],
      ['$$(98, 2), (99, 503)$$', '$$\\boxed{(98, 2)} \\quad \\text{and} \\quad \\boxed{(99, 503)}$$', 1],
      ['$$(3, 3), (1, 1)$$', '$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$', 1],
      ['$$k \\ge 2$$', '$$\\boxed{k \\ge 2}$$', 1],
      ['$$k = 45, n = 2$$', '$$\\boxed{k = 45} \\quad \\text{and} \\quad \\boxed{n = 2}$$', 1],
      ['$$143$$', '$$\\boxed{20}$$ \\boxed{143}', 1],
      ['$${1,2,3}$$', '\\boxed{1} and \\boxed{2} and \\boxed{3}', 1],
      ['$${1,2,3}$$', '\\boxed{1},\\boxed{2},\\boxed{3}', 1],
    ],
  },
  {
    source: 'test_yujianll.py',
    opts: BOTH,
    rows: [
      ['$n=1, 2, 3$', '$n=1, 2, 3$', 1],
      ['$n=2, 3, 4$', '$n=1, 2, 3$', 0],
      ['$D = (0, 1)$', '$D = (0, 1)$', 1],
      ['$D = (0, 1)$', '$D = (0, 1.5)$', 0],
      ['$F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}$', '$F_n = \\sum_{k=0}^{n-2} F_k F_{n-k-2}$', 0],
      ['$F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}$', '$F_n = \\sum_{k=0}^{n-1} F_{n-k-1} F_k$', 1],
      ['$19, 46, and 82$', '$19, 46, \\text{ and } 82$', 1],
      ['$19, 46, and 82$', '$21, 36, and 82$', 0],
      ['$1 - \\frac{1}{\\mathrm{e}}$', '$1 - \\frac{1}{\\mathrm{e}}$', 1],
      ['$1 - \\frac{1}{\\mathrm{e}}$', '$1 + \\frac{1}{\\mathrm{e}}$', 0],
      ['$\\pm 2021$', '$2021$', 0],
      ['$\\pm 2021$', '${-2021, 2021}$', 1],
      ['$12:00$', '$1:00$', 0],
      ['$12:00$', '$12:00$', 1],
    ],
  },
];
