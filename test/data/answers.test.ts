import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  extractHashAnswer,
  firstNumber,
  lastBoxed,
  lastNumber,
  numbersEqual,
  parseNumber,
} from '../../src/data/answers.ts';

test('extractHashAnswer: text after the last ####, commas stripped', () => {
  assert.equal(extractHashAnswer('She sold 48/2 = 24 clips.\n#### 72'), '72');
  assert.equal(extractHashAnswer('#### 1 \n#### 1,000\nmore'), '1000');
  assert.equal(extractHashAnswer('no marker 5'), null);
  assert.equal(extractHashAnswer('ends with ####   '), null);
});

test('lastBoxed: balanced braces, last occurrence, fbox, brace-less form', () => {
  assert.equal(lastBoxed('a \\boxed{1} then \\boxed{\\frac{1}{2}}'), '\\frac{1}{2}');
  assert.equal(lastBoxed('\\boxed{ {a}{b} }'), '{a}{b}');
  assert.equal(lastBoxed('\\fbox{7}'), '7');
  assert.equal(lastBoxed('$\\boxed 5$.'), '5');
  assert.equal(lastBoxed('\\boxed{\\{1,2\\}}'), '\\{1,2\\}');
  assert.equal(lastBoxed('\\boxed{unclosed'), null);
  assert.equal(lastBoxed('nothing here'), null);
});

test('lastNumber / firstNumber', () => {
  assert.equal(lastNumber('I have 3 apples and 1,250.5 pears'), '1250.5');
  assert.equal(lastNumber('minus -4 and .5'), '.5');
  assert.equal(firstNumber('$18 dollars and 3'), '18');
  assert.equal(lastNumber('none'), null);
});

test('parseNumber: the simple answer forms, null for the rest', () => {
  const cases: [string, number | null][] = [
    ['42', 42],
    [' -3.5 ', -3.5],
    ['1,234', 1234],
    ['$5', 5],
    ['\\$5.00', 5],
    ['50\\%', 50],
    ['50%', 50],
    ['3/4', 0.75],
    ['\\frac{3}{4}', 0.75],
    ['\\dfrac{-1}{2}', -0.5],
    ['-\\frac12', -0.5],
    ['\\text{18}', 18],
    ['5.', 5],
    ['1\\,000', 1000],
    ['1e3', 1000],
    ['x+1', null],
    ['(1,2)', null],
    ['\\frac{1}{0}', null],
    ['', null],
    ['18 dollars', null],
  ];
  for (const [s, v] of cases) assert.equal(parseNumber(s), v, s);
});

test('numbersEqual: relative tolerance', () => {
  assert.ok(numbersEqual(0.1 + 0.2, 0.3));
  assert.ok(numbersEqual(1e6, 1000000));
  assert.ok(!numbersEqual(1, 1.001));
});
