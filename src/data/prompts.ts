/**
 * @module data/prompts
 * From a dataset row to the prompt text the model sees: the user message (optionally through a
 * `prompt_template` such as "{prompt}\nPut your final answer in \\boxed{}."), an optional system
 * message, then either the tokenizer's chat template (with the generation prompt, as TRL does)
 * or a raw text template. Also the prompt-length filter (rows longer than `max_prompt_length`
 * tokens are dropped and counted rather than truncated).
 */
import { ConfigError } from '../errors.ts';
import type { PromptRow } from './dataset.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What prompt rendering needs from a tokenizer (src/model/tokenizer.ts `TextTokenizer` has it). */
export interface ChatTokenizer {
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: true }): string;
  encode(text: string): number[];
}

export interface MessageOptions {
  systemPrompt?: string;
  /** `{prompt}` is the row's prompt; `{<field>}` any string/number row field; other braces stay literal (so `\boxed{}` is safe) */
  promptTemplate?: string;
}

/**
 * Fills `{name}` placeholders: `prompt` and any row field holding a string or number. Other brace
 * groups (`\boxed{}`, `{x}` with no such field) are left as written.
 */
export function fillTemplate(template: string, prompt: string, fields: Record<string, unknown> = {}): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    if (name === 'prompt') return prompt;
    const v = fields[name];
    return typeof v === 'string' || typeof v === 'number' ? String(v) : whole;
  });
}

/** [system?, user] messages for one row. */
export function buildMessages(
  row: Pick<PromptRow, 'prompt'> & Partial<Pick<PromptRow, 'fields'>>,
  opts: MessageOptions = {},
): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (opts.systemPrompt !== undefined && opts.systemPrompt !== '')
    messages.push({ role: 'system', content: opts.systemPrompt });
  const content =
    opts.promptTemplate !== undefined ? fillTemplate(opts.promptTemplate, row.prompt, row.fields) : row.prompt;
  messages.push({ role: 'user', content });
  return messages;
}

export interface RenderOptions {
  /** true: the tokenizer's chat template with the generation prompt appended */
  useChatTemplate: boolean;
  /** without the chat template: a raw template with `{system}` and `{prompt}` (the user message) */
  rawTemplate?: string;
}

/**
 * The prompt text: chat template (tokenizer required), else `rawTemplate`, else the system
 * message and the user message separated by a blank line (just the user message without system).
 */
export function renderPrompt(messages: ChatMessage[], tokenizer: ChatTokenizer | null, opts: RenderOptions): string {
  if (opts.useChatTemplate) {
    if (tokenizer === null) {
      throw new ConfigError(
        "use_chat_template: true needs the model's tokenizer with a chat template; set use_chat_template: false and a prompt template, or load the tokenizer",
      );
    }
    return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  }
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  const user = messages
    .filter((m) => m.role !== 'system')
    .map((m) => m.content)
    .join('\n\n');
  if (opts.rawTemplate !== undefined) {
    return opts.rawTemplate.replace(/\{(system|prompt)\}/g, (_, k: string) => (k === 'system' ? system : user));
  }
  return system ? `${system}\n\n${user}` : user;
}

/**
 * Keeps the rows whose rendered prompt is at most `maxTokens` tokens long.
 * @param render the full prompt text of a row (default: `row.prompt`); pass the chat-template
 *   rendering so the count matches what the model sees
 */
export function filterByPromptLength<T extends { prompt: string }>(
  rows: readonly T[],
  encodeFn: (text: string) => number[],
  maxTokens: number,
  render: (row: T) => string = (r) => r.prompt,
): { kept: T[]; dropped: number } {
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new ConfigError(`max_prompt_length: must be a positive integer (got ${maxTokens})`);
  }
  const kept: T[] = [];
  for (const r of rows) if (encodeFn(render(r)).length <= maxTokens) kept.push(r);
  return { kept, dropped: rows.length - kept.length };
}
