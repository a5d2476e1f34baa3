import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  qwenExtractAnswer,
  qwenMathEqual,
  qwenStripString,
  qwenVerify,
} from '../../../src/rewards/math-verify/qwen.ts';

describe('Qwen2.5-Math grader', () => {
  test('extract_answer: boxed, "the answer is", last number', () => {
    assert.equal(qwenExtractAnswer('so \\boxed{\\dfrac{1}{2}}.'), '\\frac{1}{2}');
    assert.equal(qwenExtractAnswer('Thus the answer is 12.'), '12');
    assert.equal(qwenExtractAnswer('we get 3 then 1,234 apples'), '1234');
    assert.equal(qwenExtractAnswer('(1,2)'), '(1,2)');
  });
  test('strip_string normalisations', () => {
    assert.equal(qwenStripString('\\left( 1, 2 \\right)'), '(1,2)');
    assert.equal(qwenStripString('x = 5'), '5');
    assert.equal(qwenStripString('10\\%'), '10');
    assert.equal(qwenStripString('0.5'), '\\frac{1}{2}');
    assert.equal(qwenStripString('3/4'), '\\frac{3}{4}');
    assert.equal(qwenStripString('\\frac12'), '\\frac{1}{2}');
    assert.equal(qwenStripString('5 \\text{ cm}'), '5');
    assert.equal(qwenStripString('90^\\circ'), '90');
    assert.equal(qwenStripString('2.0'), '2');
  });
  test('math_equal: its own leniency (percentages, 1e-4 numbers, brackets)', () => {
    assert.equal(qwenMathEqual('50', '0.5'), true); // x·100
    assert.equal(qwenMathEqual('3.14159', '3.1416'), true); // rel 1e-4
    assert.equal(qwenMathEqual('3.2', '3.1416'), false);
    assert.equal(qwenMathEqual('[1,2]', '(1,2)'), true); // Qwen compares list items and ignores bracket kinds
    assert.equal(qwenMathEqual('(1,2)', '(1,2)'), true);
    assert.equal(qwenMathEqual('(2,1)', '(1,2)'), false);
    assert.equal(qwenMathEqual('\\frac{\\sqrt{2}}{2}', '\\frac{1}{\\sqrt{2}}'), true);
    assert.equal(qwenMathEqual('y=2x+1', '2x-y+1=0'), true);
    assert.equal(qwenMathEqual('\\begin{pmatrix}1&2\\end{pmatrix}', '\\begin{pmatrix}1&2\\end{pmatrix}'), true);
    assert.equal(qwenMathEqual('\\begin{pmatrix}1&2\\end{pmatrix}', '\\begin{pmatrix}2&1\\end{pmatrix}'), false);
    assert.equal(qwenMathEqual('B', 'B'), true);
    assert.equal(qwenMathEqual('\\pi', '3'), false);
  });
  test('qwenVerify end to end', () => {
    assert.equal(qwenVerify('\\boxed{\\frac{1}{2}}', 'The answer is \\boxed{0.5}'), true);
    assert.equal(qwenVerify('27', 'so 27'), true);
    assert.equal(qwenVerify('27', 'so 28'), false);
    assert.throws(() => qwenVerify('1', 'z'.repeat(300_000)), /longer than/);
  });
});
