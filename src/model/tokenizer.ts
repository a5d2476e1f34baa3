/**
 * @module model/tokenizer
 * Text ↔ token ids from a Hugging Face `tokenizer.json` (via `@huggingface/tokenizers`) and chat
 * prompts from the `chat_template` in `tokenizer_config.json` or `chat_template.jinja` (via
 * `@huggingface/jinja`, rendered with the same variables transformers' `apply_chat_template`
 * passes: messages, add_generation_prompt, bos_token, eos_token, ...).
 * Also builds a small character-level tokenizer in the standard byte-level format (GPT-2's
 * `bytes_to_unicode` token strings, BPE with an empty merge list, so every character is one token),
 * loadable here, by HF `tokenizers` and by transformers' byte-level `Qwen2Tokenizer`;
 * `gpg-rl init-model --char-vocab` writes it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { TokenizerError } from '../errors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function readJsonFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isObj(v)) throw new TokenizerError(`${path}: must be a JSON object`);
  return v;
}

/** tokenizer_config.json stores special tokens as strings or as AddedToken dicts `{content, ...}`. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v['content'] === 'string') return v['content'];
  return null;
}

/** `chat_template` is a string, or (older files) a list of `{name, template}`; pick "default". */
function pickTemplate(v: unknown, source: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v.filter(isObj);
    const t = named.find((x) => x['name'] === 'default') ?? named[0];
    if (t && typeof t['template'] === 'string') return t['template'];
  }
  throw new TokenizerError(`${source}: field "chat_template" must be a string or a list of {name, template}`);
}

export class TextTokenizer {
  /** True when a chat template was found (tokenizer_config.json or chat_template.jinja). */
  readonly hasChatTemplate: boolean;
  private readonly tok: Tokenizer;
  private readonly config: Json;
  private readonly template: Template | null;
  private readonly vocabSizeValue: number;
  private readonly eosId: number | null;
  private readonly padId: number | null;
  private readonly source: string;

  private constructor(tok: Tokenizer, config: Json, templateText: string | null, source: string) {
    this.tok = tok;
    this.config = config;
    this.source = source;
    let maxId = -1;
    for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSizeValue = maxId + 1;
    const idOf = (field: string): number | null => {
      const s = tokenString(config[field]);
      if (s === null) return null;
      const id = tok.token_to_id(s);
      if (id === undefined)
        throw new TokenizerError(`${source}: ${field} ${JSON.stringify(s)} is not in the vocabulary`);
      return id;
    };
    this.eosId = idOf('eos_token');
    this.padId = idOf('pad_token');
    let template: Template | null = null;
    if (templateText !== null) {
      try {
        template = new Template(templateText);
      } catch (e) {
        throw new TokenizerError(
          `${source}: chat_template does not parse as Jinja (${(e as Error).message.split('\n')[0]})`,
        );
      }
    }
    this.template = template;
    this.hasChatTemplate = template !== null;
  }

  /** Loads tokenizer.json (+ tokenizer_config.json and chat_template.jinja when present) from a model folder. */
  static fromDir(dir: string): TextTokenizer {
    const tj = join(dir, 'tokenizer.json');
    if (!existsSync(tj))
      throw new TokenizerError(
        `${dir}: no tokenizer.json (only the fast-tokenizer format is supported; save one with transformers' tokenizer.save_pretrained)`,
      );
    const tc = join(dir, 'tokenizer_config.json');
    const jinja = join(dir, 'chat_template.jinja');
    return TextTokenizer.fromFiles(tj, existsSync(tc) ? tc : undefined, existsSync(jinja) ? jinja : undefined);
  }

  /** Loads from explicit files; `chatTemplatePath` (a .jinja file) overrides the config's template. */
  static fromFiles(tokenizerJsonPath: string, tokenizerConfigPath?: string, chatTemplatePath?: string): TextTokenizer {
    const tj = readJsonFile(tokenizerJsonPath);
    const tc = tokenizerConfigPath !== undefined ? readJsonFile(tokenizerConfigPath) : {};
    let templateText = pickTemplate(tc['chat_template'], tokenizerConfigPath ?? 'tokenizer_config.json');
    if (chatTemplatePath !== undefined) {
      try {
        templateText = readFileSync(chatTemplatePath, 'utf8');
      } catch (e) {
        throw new TokenizerError(
          `${chatTemplatePath}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        );
      }
    }
    return TextTokenizer.fromJson(tj, tc, templateText, tokenizerJsonPath);
  }

  /** From already-parsed objects (e.g. `charLevelTokenizerFiles`). `source` names them in errors. */
  static fromJson(
    tokenizerJson: object,
    tokenizerConfig: object = {},
    chatTemplate?: string | null,
    source = 'tokenizer.json',
  ): TextTokenizer {
    if (!isObj(tokenizerJson) || !isObj(tokenizerJson['model']))
      throw new TokenizerError(`${source}: not a tokenizer.json (no "model" object)`);
    const tc = tokenizerConfig as Json;
    const templateText = chatTemplate !== undefined ? chatTemplate : pickTemplate(tc['chat_template'], source);
    let tok: Tokenizer;
    try {
      // The library reads added_tokens unguarded; default it so a minimal file gives a clear result.
      tok = new Tokenizer({ added_tokens: [], ...tokenizerJson }, tc);
    } catch (e) {
      throw new TokenizerError(`${source}: cannot build the tokenizer (${(e as Error).message.split('\n')[0]})`);
    }
    return new TextTokenizer(tok, tc, templateText, source);
  }

  /** Token ids for `text`; special-token strings in the text map to their ids. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    if (text === '') return [];
    const ids: number[] = this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
    const bad = ids.findIndex((x: unknown) => typeof x !== 'number');
    if (bad >= 0)
      throw new TokenizerError(
        `${this.source}: cannot encode text: no token for piece ${bad} and the tokenizer has no unk_token`,
      );
    return ids;
  }

  /** Text for `ids`; ids outside the vocabulary are an error. */
  /**
   * Token ids → text. An id the tokenizer lacks is an error, unless `dropUnknown`: then it is left
   * out, as Hugging Face tokenizers' decode does — a model's embedding may have more rows than its
   * tokenizer has tokens (Qwen2.5: 151,936 rows, 151,665 tokens), and sampling can reach them.
   */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean; dropUnknown?: boolean } = {}): string {
    if (ids.length === 0) return '';
    if (opts.dropUnknown)
      ids = ids.filter((id) => !Number.isInteger(id) || id < 0 || this.tok.id_to_token(id) !== undefined);
    if (ids.length === 0) return ''; // (every id dropped: the library refuses an empty list)
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || this.tok.id_to_token(id) === undefined) {
        throw new TokenizerError(
          `${this.source}: cannot decode token id ${id}: not in the vocabulary (size ${this.vocabSizeValue})`,
        );
      }
    }
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** One more than the largest token id (model vocab and added tokens). */
  get vocabSize(): number {
    return this.vocabSizeValue;
  }

  get eosTokenId(): number | null {
    return this.eosId;
  }

  get padTokenId(): number | null {
    return this.padId;
  }

  tokenToId(t: string): number | null {
    return this.tok.token_to_id(t) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tok.id_to_token(id) ?? null;
  }

  /** Renders the chat template; `addGenerationPrompt` appends the assistant header (e.g. `<|im_start|>assistant\n`). */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (!this.template)
      throw new TokenizerError(
        `${this.source}: no chat_template (tokenizer_config.json or chat_template.jinja); use a plain prompt template instead`,
      );
    const c = this.config;
    try {
      return this.template.render({
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        bos_token: tokenString(c['bos_token']) ?? '',
        eos_token: tokenString(c['eos_token']) ?? '',
        pad_token: tokenString(c['pad_token']) ?? '',
        unk_token: tokenString(c['unk_token']) ?? '',
      });
    } catch (e) {
      throw new TokenizerError(
        `${this.source}: chat_template failed to render (${(e as Error).message.split('\n')[0]})`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// character-level tokenizer

/** Printable ASCII (space..~) plus newline: the default character set of `--char-vocab`. */
export const PRINTABLE_ASCII = '\n' + Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

/** ChatML, the format Qwen models use; `add_generation_prompt` opens the assistant turn. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface CharTokenizerOptions {
  /** Special tokens first, in id order (default `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`). */
  specialTokens?: string[];
  padToken?: string;
  eosToken?: string;
}

/**
 * GPT-2's `bytes_to_unicode` (openai/gpt-2 encoder.py, also transformers' `bytes_to_unicode`):
 * every byte gets a printable character — `!`..`~`, `¡`..`¬`, `®`..`ÿ` stand for themselves, the
 * other 68 bytes take U+0100 onwards in byte order (space 0x20 → `Ġ` U+0120, newline 0x0A → `Ċ`
 * U+010A, tab → `ĉ`). Byte-level BPE vocabularies (GPT-2, Qwen2) spell their tokens this way.
 */
export function bytesToUnicode(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : 256 + n++));
  return out;
}

/**
 * A character-level tokenizer in the standard byte-level tokenizer.json format: special tokens get
 * ids 0..S-1 (also listed as added tokens), then one id per character of `chars` in order, each
 * spelled as its byte's `bytesToUnicode` character (space is `Ġ`, newline `Ċ`). Model: BPE with no
 * merges, so each character is one token; pre-tokenizer: Split on every character (`[\s\S]`,
 * Isolated) then ByteLevel (no prefix space, no regex); decoder: ByteLevel. Because the tokens are
 * byte-level, transformers 5's `Qwen2Tokenizer` (which re-splits with Qwen2's pattern and maps
 * bytes the same way for `model_type: qwen2`) gives the same ids and keeps spaces and newlines.
 * Characters must be single bytes (ASCII), since there are no merges to join multi-byte ones.
 * Defaults: pad `<|endoftext|>` (id 0), eos `<|im_end|>` (id 2), no bos.
 */
export function charLevelTokenizerFiles(
  chars: string = PRINTABLE_ASCII,
  opts: CharTokenizerOptions = {},
): { tokenizerJson: object; tokenizerConfig: object } {
  const specials = opts.specialTokens ?? ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const pad = opts.padToken ?? '<|endoftext|>';
  const eos = opts.eosToken ?? '<|im_end|>';
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  let next = 0;
  for (const s of specials) {
    if (s in vocab) throw new TokenizerError(`charLevelTokenizerFiles: special token ${JSON.stringify(s)} given twice`);
    vocab[s] = next++;
  }
  for (const ch of Array.from(chars)) {
    const code = ch.codePointAt(0)!;
    if (code > 0x7f)
      throw new TokenizerError(
        `charLevelTokenizerFiles: character ${JSON.stringify(ch)} (U+${code.toString(16).toUpperCase().padStart(4, '0')}) is not ASCII; a byte-level vocabulary without merges holds single-byte characters only`,
      );
    const t = byteChar[code]!;
    if (t in vocab) continue; // repeated characters keep their first id
    vocab[t] = next++;
  }
  for (const [field, t] of [
    ['pad', pad],
    ['eos', eos],
  ] as const) {
    if (!specials.includes(t))
      throw new TokenizerError(
        `charLevelTokenizerFiles: ${field} token ${JSON.stringify(t)} is not among the special tokens`,
      );
  }
  const added = specials.map((content) => ({
    id: vocab[content]!,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const addedDecoder: Record<string, object> = {};
  for (const a of added)
    addedDecoder[String(a.id)] = {
      content: a.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  const tokenizerConfig = {
    added_tokens_decoder: addedDecoder,
    additional_special_tokens: specials.filter((s) => s !== pad && s !== eos),
    bos_token: null,
    eos_token: eos,
    pad_token: pad,
    unk_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: 131072,
    split_special_tokens: false,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig };
}
