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

import { MV_SUITE_ALL } from './mv-suite-all.ts';

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

const BOTH: MvOptions = { mode: 'both' };

export const MV_SUITE: MvGroup[] = [
  ...MV_SUITE_ALL,
  {
    source: 'test_numina_cases.py',
    opts: BOTH,
    rows: [
      [
        '$(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$',
        '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$',
        1,
      ],
      ['$(p,q)=(3,2)$', '$(3,2)$', 1],
      [
        '$(0;0;0),(0;-2;0),(0;0;6),(0;-2;6),(4;0;0),(4;-2;0),(4;0;6),(4;-2;6)$',
        '\\boxed{(4, 0, 6), (4, -2, 6), (0, 0, 6), (0, -2, 6), (4, 0, 0), (4, -2, 0), (0, 0, 0), (0, -2, 0)}',
        1,
      ],
      [
        '$1\\leq|z|\\leq \\frac{3}{2}$',
        '$z \\in \\left[-\\frac{3}{2}, -1\\right] \\cup \\left[1, \\frac{3}{2}\\right]$',
        1,
      ],
      ['$-12;-11;-10;-8;-7;-6$', '$\\boxed{\\{-12, -11, -10, -8, -7, -6\\}}$', 1],
      ['$AB=4,CD=5$', '$\\boxed{4, 5}$', 1],
      ['$(11,7)or(7,11)$', '$\\boxed{(7,11),\\ (11,7)}$', 1],
      ['$S_{MBCN}:S=7:32$', '$\\boxed{7:32}$', 1],
      ['$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$', '$\\frac{1}{\\sqrt{6}}$', 1],
      ['$p=5,q=2;p=7,q=2$', '$(5,2),(7,2)$', 1],
      ['$(p,q,r)=(3,2,7)$', '$(3,2,7)$', 1],
      ['$P(x) = 1$', '$p(x) = 1$', 1],
      ['$V_{1}:V_{2}=11:21$', '$11:21$', 1],
      [
        '$(2,1),(1,2),(-1,-20),(-20,-1)$',
        'solutions are:\\n\\n\\\\[\\n\\\\boxed{(1, 2)}, \\\\boxed{(2, 1)}, \\\\boxed{(-1, -20)}, \\\\boxed{(-20, -1)}\\n\\\\]',
        1,
      ],
      ['\\(\\boxed{1}\\) and \\(\\boxed{-2}\\).', '$\\boxed{-2,1}$.', 1],
      ['$\\text{odd}$', '$odd$', 1],
      ['$\\text{e}$', '$e$', 1],
      ['$\\text{E}$', '$E$', 1],
      ['$d$', '$\\text{E}$', 0],
      ['$1$ and $2$ and $3$', '$\\boxed{1,2,3}$', 1],
      [
        '$(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$',
        '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$',
        1,
      ],
      [
        '$(37,3,3),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$',
        '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$',
        0,
      ],
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
      [
        '$$x = \\frac{1}{2}, x = \\frac{-1 \\pm \\sqrt{13}}{4}$$',
        '$$\\boxed{x = \\frac{1}{2}, x = \\frac{-1 \\pm \\sqrt{13}}{4}}$$',
        1,
      ],
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
