/**
 * @module eval/protocols
 * Evaluation protocols: the prompt, template, sampling, length and grading rules of the harnesses
 * behind the GPG paper's tables (arXiv 2504.02546), as a typed preset table, so `gpg-rl eval
 * --protocol lighteval` reproduces the 1.5B table's setting and `--protocol qwen-math` the 7B
 * table's. `default` is gpg-rl's own setting (greedy, 2,048 tokens, Qwen2.5-Math's CoT system
 * message through the tokenizer's chat template). Every field can be overridden (EvalOptions /
 * the `gpg-rl eval` flags); `resolveProtocol` returns the values in force and which of them
 * differ from the preset, and both go into summary.json (`protocol`, `protocol_settings`,
 * `protocol_overrides`). Sources of each value are in the comments; docs/eval/protocols.md has
 * the table and the known differences from the original harnesses.
 *
 *   const { settings, overrides } = resolveProtocol('lighteval', { maxNewTokens: 64 });
 *   settings.temperature; // 0.6
 *   overrides; // ['maxNewTokens']
 */
import { GpgRlError } from '../errors.ts';
import type { Grader } from '../rewards/math-verify/pool.ts';

export type ProtocolName = 'default' | 'lighteval' | 'qwen-math';

export const PROTOCOL_NAMES: readonly ProtocolName[] = ['default', 'lighteval', 'qwen-math'];

/** The fields of a protocol that can be overridden one by one. */
export interface ProtocolSettings {
  /** System message; '' for none. */
  systemPrompt: string;
  /** The user turn: `{prompt}` is the problem text; other braces (`\boxed{}`, `{ANSWER}`) stay literal. */
  promptTemplate: string;
  /** Render through the tokenizer's chat template (with the generation prompt); false: `rawTemplate`. */
  useChatTemplate: boolean;
  /**
   * The prompt text when the chat template is off or the tokenizer has none: `{system}` is the
   * system message, `{prompt}` the filled user turn; an empty system message drops its
   * placeholder together with one newline right after it.
   */
  rawTemplate: string;
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus mass; 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  /** Completions per problem (k); pass@1 is their mean. */
  samples: number;
  maxNewTokens: number;
  /** Sampling seed (our sampler is not vLLM's, so equal seeds do not give equal samples). */
  seed: number;
  /**
   * Tokens that also end a completion (besides the model's eos ids), when the tokenizer has them
   * as single tokens.
   */
  stopTokens: string[];
  /** Answer extraction and equivalence: math-verify (Math-Verify semantics) or qwen (Qwen2.5-Math's grader). */
  grader: Grader;
}

export interface EvalProtocol extends ProtocolSettings {
  name: ProtocolName;
  /** One line: which harness and which table. */
  description: string;
}

/** Qwen2.5-Math's chain-of-thought instruction (its evaluation's `qwen25-math-cot` system message). */
export const QWEN_COT_SYSTEM_PROMPT = 'Please reason step by step, and put your final answer within \\boxed{}.';

/**
 * lighteval's math prompt as open-r1 and open-rs use it (knoveleng/open-rs and huggingface/open-r1
 * `src/open_r1/evaluate.py`, also huggingface/lighteval `src/lighteval/tasks/default_prompts.py`
 * `math_500`): the problem goes where `{prompt}` is. The double space after "clearly." is theirs;
 * `{ANSWER}` is literal text (their `{{ANSWER}}` before `str.format`).
 */
export const LIGHTEVAL_MATH_QUERY_TEMPLATE =
  "Solve the following math problem efficiently and clearly.  The last line of your response should be of the following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes) where ANSWER is just the final number or expression that solves the problem. Think step by step before answering.\n\n{prompt}";

/**
 * The `qwen25-math-cot` prompt of QwenLM/Qwen2.5-Math `evaluation/utils.py` PROMPT_TEMPLATES: a
 * fixed ChatML text written by the harness, not the tokenizer's chat template (its `sh/eval.sh`
 * does not pass `--apply_chat_template`).
 */
export const QWEN25_MATH_COT_FRAME =
  '<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n';

const PRESETS: Record<ProtocolName, EvalProtocol> = {
  default: {
    name: 'default',
    description: "gpg-rl's own setting: greedy, 2,048 tokens, Qwen2.5-Math's CoT system message, the chat template",
    systemPrompt: QWEN_COT_SYSTEM_PROMPT,
    promptTemplate: '{prompt}',
    useChatTemplate: true,
    // A base model without a chat template gets the problem, then the instruction.
    rawTemplate: '{prompt}\n{system}\n',
    temperature: 0,
    topP: 1,
    topK: 0,
    samples: 1,
    // Qwen2.5-Math evaluation's `--max_tokens_per_call` default (evaluation/math_eval.py).
    maxNewTokens: 2048,
    seed: 0,
    stopTokens: [],
    grader: 'math-verify',
  },
  lighteval: {
    name: 'lighteval',
    description:
      "the GPG paper's 1.5B table: lighteval as open-rs runs it (MATH_QUERY_TEMPLATE, no system prompt, T=0.6, top-p 0.95, 32,768 tokens, one sample)",
    // lighteval's `--system-prompt` defaults to none; open-rs README's eval command passes none.
    systemPrompt: '',
    promptTemplate: LIGHTEVAL_MATH_QUERY_TEMPLATE,
    // open-rs README (knoveleng/open-rs) and open-r1 README: `lighteval vllm ... --use-chat-template`.
    useChatTemplate: true,
    // Without a chat template lighteval sends system prompt + query, concatenated with nothing
    // between (huggingface/lighteval src/lighteval/tasks/prompt_manager.py get_examples).
    rawTemplate: '{system}{prompt}',
    // open-rs README / open-r1 README MODEL_ARGS:
    // generation_parameters={max_new_tokens:32768,temperature:0.6,top_p:0.95}.
    temperature: 0.6,
    topP: 0.95,
    topK: 0, // vLLM's top_k=-1 (off); lighteval passes none
    // open-rs src/open_r1/evaluate.py: every math task uses the single-sample extractive-match
    // metric (no num_samples / pass@k:n), so pass@1 is one sampled completion per problem.
    samples: 1,
    maxNewTokens: 32768,
    // huggingface/lighteval src/lighteval/models/vllm/vllm_model.py VLLMModelConfig.seed default.
    seed: 1234,
    // lighteval stops on eos only when the chat template is used (vllm_model.py greedy_until: stop_tokens = []).
    stopTokens: [],
    // open-rs evaluate.py: multilingual_extractive_match_metric (Math-Verify) with
    // pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)),
    // fallback_mode="first_match", precision=5; gold: LaTeX (MATH-500, Minerva, OlympiadBench) or
    // expression (AIME24, AMC23) extraction. Our math-verify grader: Math-Verify's default parse.
    grader: 'math-verify',
  },
  'qwen-math': {
    name: 'qwen-math',
    description:
      "the GPG paper's 7B table: the Qwen2.5-Math evaluation harness, prompt qwen25-math-cot, greedy, 2,048 tokens, its grader",
    // QwenLM/Qwen2.5-Math evaluation/utils.py PROMPT_TEMPLATES["qwen25-math-cot"].
    systemPrompt: QWEN_COT_SYSTEM_PROMPT,
    promptTemplate: '{prompt}',
    useChatTemplate: false,
    rawTemplate: QWEN25_MATH_COT_FRAME,
    // evaluation/sh/eval.sh: --temperature 0 --n_sampling 1 --top_p 1 --seed 0 (also
    // math_eval.py's defaults); math_eval.py forces top_p = 1 when temperature is 0.
    temperature: 0,
    topP: 1,
    topK: 0,
    samples: 1,
    // evaluation/math_eval.py `--max_tokens_per_call` default 2048 (sh/eval.sh does not set it).
    maxNewTokens: 2048,
    seed: 0,
    // evaluation/math_eval.py: stop words "</s>", "<|im_end|>", "<|endoftext|>" (and stop_token_ids
    // 151645, 151643 for Qwen2 models).
    stopTokens: ['<|im_end|>', '<|endoftext|>', '</s>'],
    // evaluation/parser.py extract_answer + grader.py math_equal = our src/rewards/math-verify/qwen.ts.
    grader: 'qwen',
  },
};

/** The preset named `name` (a copy: callers may change it). */
export function getProtocol(name: ProtocolName): EvalProtocol {
  const p = PRESETS[name];
  if (!p)
    throw new GpgRlError(
      `evaluate: unknown protocol "${String(name)}"; known: ${PROTOCOL_NAMES.join(', ')}`,
      'GPG_EVAL',
    );
  return { ...p, stopTokens: [...p.stopTokens] };
}

/** Checks a protocol name given as text (a flag); null when it is none of PROTOCOL_NAMES. */
export function parseProtocolName(s: string): ProtocolName | null {
  return (PROTOCOL_NAMES as readonly string[]).includes(s) ? (s as ProtocolName) : null;
}

export const SETTING_KEYS: readonly (keyof ProtocolSettings)[] = [
  'systemPrompt',
  'promptTemplate',
  'useChatTemplate',
  'rawTemplate',
  'temperature',
  'topP',
  'topK',
  'samples',
  'maxNewTokens',
  'seed',
  'stopTokens',
  'grader',
];

export interface ResolvedProtocol {
  name: ProtocolName;
  description: string;
  settings: ProtocolSettings;
  /** The settings that differ from the preset, in SETTING_KEYS order. */
  overrides: (keyof ProtocolSettings)[];
}

const same = (a: unknown, b: unknown): boolean =>
  Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b;

/** The preset `name` with every defined field of `over` in its place. */
export function resolveProtocol(name: ProtocolName, over: Partial<ProtocolSettings> = {}): ResolvedProtocol {
  const p = getProtocol(name);
  const settings = {} as Record<keyof ProtocolSettings, unknown>;
  const overrides: (keyof ProtocolSettings)[] = [];
  for (const k of SETTING_KEYS) {
    const v = over[k];
    settings[k] = v === undefined ? p[k] : v;
    if (v !== undefined && !same(v, p[k])) overrides.push(k);
  }
  return { name, description: p.description, settings: settings as unknown as ProtocolSettings, overrides };
}

/** Fills a raw template: `{system}` and `{prompt}`; an empty system message takes one newline after it along. */
export function fillRawTemplate(raw: string, system: string, user: string): string {
  const t = system === '' ? raw.replace(/\{system\}\n?/g, '') : raw;
  return t.replace(/\{(system|prompt)\}/g, (_, k: string) => (k === 'system' ? system : user));
}
