import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  LIGHTEVAL_MATH_QUERY_TEMPLATE,
  PROTOCOL_NAMES,
  QWEN25_MATH_COT_FRAME,
  SETTING_KEYS,
  fillRawTemplate,
  getProtocol,
  parseProtocolName,
  resolveProtocol,
} from '../../src/eval/protocols.ts';
import { DEFAULT_MAX_NEW_TOKENS, DEFAULT_SYSTEM_PROMPT } from '../../src/eval/evaluate.ts';

// The harnesses' texts, written out here independently of src/ (backslashes as in the prompt text).
const MATH_QUERY =
  "Solve the following math problem efficiently and clearly.  The last line of your response should be of the following format: 'Therefore, the final answer is: $" +
  '\\boxed{ANSWER}' +
  "$. I hope it is correct' (without quotes) where ANSWER is just the final number or expression that solves the problem. Think step by step before answering.\n\n{prompt}";
const QWEN_SYSTEM = 'Please reason step by step, and put your final answer within ' + '\\boxed{}.';

describe('evaluation protocols', () => {
  test('lighteval (1.5B table): open-rs / open-r1 lighteval settings', () => {
    const p = getProtocol('lighteval');
    assert.equal(p.name, 'lighteval');
    assert.equal(p.systemPrompt, '');
    assert.equal(p.promptTemplate, MATH_QUERY);
    assert.equal(LIGHTEVAL_MATH_QUERY_TEMPLATE, MATH_QUERY);
    assert.equal(p.useChatTemplate, true);
    assert.equal(p.rawTemplate, '{system}{prompt}');
    assert.deepEqual(
      [p.temperature, p.topP, p.topK, p.samples, p.maxNewTokens, p.seed, p.grader],
      [0.6, 0.95, 0, 1, 32768, 1234, 'math-verify'],
    );
    assert.deepEqual(p.stopTokens, []);
  });

  test('qwen-math (7B table): Qwen2.5-Math evaluation, qwen25-math-cot', () => {
    const p = getProtocol('qwen-math');
    assert.equal(p.systemPrompt, QWEN_SYSTEM);
    assert.equal(p.promptTemplate, '{prompt}');
    assert.equal(p.useChatTemplate, false);
    assert.equal(
      p.rawTemplate,
      '<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.equal(p.rawTemplate, QWEN25_MATH_COT_FRAME);
    assert.deepEqual(
      [p.temperature, p.topP, p.topK, p.samples, p.maxNewTokens, p.seed, p.grader],
      [0, 1, 0, 1, 2048, 0, 'qwen'],
    );
    assert.deepEqual(p.stopTokens, ['<|im_end|>', '<|endoftext|>', '</s>']);
    // The raw frame with the system message is exactly the harness's prompt.
    assert.equal(
      fillRawTemplate(p.rawTemplate, p.systemPrompt, 'What is 1+1?'),
      `<|im_start|>system\n${QWEN_SYSTEM}<|im_end|>\n<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  test("default: today's behaviour under a name", () => {
    const p = getProtocol('default');
    assert.equal(p.systemPrompt, QWEN_SYSTEM);
    assert.equal(DEFAULT_SYSTEM_PROMPT, QWEN_SYSTEM);
    assert.equal(p.maxNewTokens, 2048);
    assert.equal(DEFAULT_MAX_NEW_TOKENS, 2048);
    assert.deepEqual(
      [p.promptTemplate, p.useChatTemplate, p.rawTemplate, p.temperature, p.topP, p.samples, p.grader],
      ['{prompt}', true, '{prompt}\n{system}\n', 0, 1, 1, 'math-verify'],
    );
  });

  test('names, copies, unknown names', () => {
    assert.deepEqual(PROTOCOL_NAMES, ['default', 'lighteval', 'qwen-math']);
    assert.equal(parseProtocolName('qwen-math'), 'qwen-math');
    assert.equal(parseProtocolName('lm-eval'), null);
    const a = getProtocol('qwen-math');
    a.stopTokens.push('x');
    a.temperature = 9;
    assert.deepEqual(getProtocol('qwen-math').stopTokens, ['<|im_end|>', '<|endoftext|>', '</s>']);
    assert.equal(getProtocol('qwen-math').temperature, 0);
    assert.throws(() => getProtocol('nope' as never), /unknown protocol "nope"; known: default, lighteval, qwen-math/);
    for (const n of PROTOCOL_NAMES) for (const k of SETTING_KEYS) assert.notEqual(getProtocol(n)[k], undefined, k);
  });

  test('overrides: each given field replaces the preset; only real changes are listed', () => {
    const r = resolveProtocol('lighteval', { maxNewTokens: 64, temperature: 0.6, systemPrompt: undefined });
    assert.equal(r.settings.maxNewTokens, 64);
    assert.equal(r.settings.temperature, 0.6);
    assert.equal(r.settings.topP, 0.95);
    assert.equal(r.settings.promptTemplate, MATH_QUERY);
    assert.deepEqual(r.overrides, ['maxNewTokens']);
    const q = resolveProtocol('qwen-math', {
      systemPrompt: '',
      promptTemplate: '{prompt}\nAnswer in \\boxed{}.',
      useChatTemplate: true,
      grader: 'math-verify',
      stopTokens: ['<|im_end|>', '<|endoftext|>', '</s>'],
      samples: 4,
      temperature: 1,
      topP: 0.9,
      topK: 20,
      seed: 3,
    });
    assert.deepEqual(q.overrides, [
      'systemPrompt',
      'promptTemplate',
      'useChatTemplate',
      'temperature',
      'topP',
      'topK',
      'samples',
      'seed',
      'grader',
    ]);
    assert.equal(q.settings.rawTemplate, QWEN25_MATH_COT_FRAME);
    assert.deepEqual(resolveProtocol('default').overrides, []);
    assert.deepEqual(resolveProtocol('default', { stopTokens: ['<|im_end|>'] }).overrides, ['stopTokens']);
  });

  test('raw templates: an empty system message leaves no empty line; text is inserted once', () => {
    assert.equal(fillRawTemplate('{prompt}\n{system}\n', '', 'P'), 'P\n');
    assert.equal(fillRawTemplate('{prompt}\n{system}\n', 'S', 'P'), 'P\nS\n');
    assert.equal(fillRawTemplate('{system}{prompt}', '', 'P'), 'P');
    assert.equal(fillRawTemplate('{system}{prompt}', 'S. ', 'P'), 'S. P');
    // A problem that itself contains "{system}" or "{prompt}" is not filled again.
    assert.equal(
      fillRawTemplate('{system}\n{prompt}', 'S', 'use {system} and {prompt}'),
      'S\nuse {system} and {prompt}',
    );
  });
});
