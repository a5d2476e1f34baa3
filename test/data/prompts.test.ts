import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildMessages,
  fillTemplate,
  filterByPromptLength,
  renderPrompt,
  type ChatMessage,
  type ChatTokenizer,
} from '../../src/data/prompts.ts';
import { ConfigError } from '../../src/errors.ts';

// A tokenizer double with a ChatML-style template and one token per whitespace-separated word.
const chatml: ChatTokenizer = {
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: true }): string {
    return (
      messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') +
      (opts.addGenerationPrompt ? '<|im_start|>assistant\n' : '')
    );
  },
  encode: (text: string) =>
    text
      .split(/\s+/)
      .filter(Boolean)
      .map((_, i) => i),
};

test('buildMessages: system prompt, template with {prompt} and row fields, LaTeX braces kept', () => {
  const row = { prompt: 'What is 2+2?', fields: { level: 'Level 3', n: 4, obj: { a: 1 } } };
  assert.deepEqual(buildMessages(row), [{ role: 'user', content: 'What is 2+2?' }]);
  const m = buildMessages(row, {
    systemPrompt: 'Be brief.',
    promptTemplate: '[{level}/{n}] {prompt}\nPut your final answer in \\boxed{}. {obj} {missing}',
  });
  assert.deepEqual(m, [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: '[Level 3/4] What is 2+2?\nPut your final answer in \\boxed{}. {obj} {missing}' },
  ]);
  assert.equal(fillTemplate('{prompt}{prompt}', 'x'), 'xx');
});

test('renderPrompt: chat template with generation prompt, raw template, plain', () => {
  const msgs = buildMessages({ prompt: 'Q?' }, { systemPrompt: 'S' });
  assert.equal(
    renderPrompt(msgs, chatml, { useChatTemplate: true }),
    '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(
    renderPrompt(msgs, null, {
      useChatTemplate: false,
      rawTemplate: 'A conversation. {system}\nUser: {prompt}\nAssistant: <think>',
    }),
    'A conversation. S\nUser: Q?\nAssistant: <think>',
  );
  assert.equal(renderPrompt(msgs, null, { useChatTemplate: false }), 'S\n\nQ?');
  assert.equal(renderPrompt(buildMessages({ prompt: 'Q?' }), chatml, { useChatTemplate: false }), 'Q?');
  assert.throws(() => renderPrompt(msgs, null, { useChatTemplate: true }), ConfigError);
});

test('filterByPromptLength: keeps ≤ maxTokens of the rendered prompt, counts the rest', () => {
  const rows = [{ prompt: 'a b c' }, { prompt: 'a b c d e' }, { prompt: 'a' }];
  assert.deepEqual(filterByPromptLength(rows, chatml.encode, 3), { kept: [rows[0], rows[2]], dropped: 1 });
  // With the chat template the count includes the template's own tokens.
  const render = (r: { prompt: string }) => renderPrompt(buildMessages(r), chatml, { useChatTemplate: true });
  assert.deepEqual(filterByPromptLength(rows, chatml.encode, 3, render).kept, [rows[2]]);
  assert.throws(() => filterByPromptLength(rows, chatml.encode, 0), /max_prompt_length/);
});
