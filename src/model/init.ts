/**
 * @module model/init
 * A random model from a shape file (HF config field names, e.g. ../shared/bench/small-50m.json):
 * missing fields take Qwen2 defaults, weights follow transformers' `_init_weights` for these
 * decoders — Linear and Embedding weights ~ normal(0, initializer_range = 0.02), biases 0, RMSNorm
 * weights 1, the padding_idx embedding row 0 — drawn from a seeded PRNG (xoshiro128**), so the
 * same seed gives the same bytes. With `charVocab` a character-level tokenizer is built and the
 * vocab size and pad/eos ids follow it; with a copied tokenizer its eos/pad ids fill unset fields. `gpg-rl init-model` wraps `writeInitModel`.
 */
import { ModelLoadError } from '../errors.ts';
import { parameterNames, parseModelConfig, type GenerationDefaults, type ModelConfig } from './config.ts';
import { saveModelFolder, type HostTensor } from './folder.ts';
import { charLevelTokenizerFiles, PRINTABLE_ASCII } from './tokenizer.ts';

export type InitArch = 'qwen2' | 'llama' | 'qwen3';

const ARCH: Record<InitArch, string> = {
  qwen2: 'Qwen2ForCausalLM',
  llama: 'LlamaForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

export interface InitOptions {
  seed: number;
  /** Build a character-level tokenizer (printable ASCII + newline + ChatML specials) and size the vocab to it. */
  charVocab?: boolean;
  /** Override the architecture of the shape file. */
  arch?: InitArch;
  /**
   * eos / pad ids of a tokenizer copied beside the model (`--tokenizer DIR`): written into
   * config.json and generation_config.json where the shape file leaves them unset, so HF
   * `generate` stops at the tokenizer's eos.
   */
  eosTokenId?: number | null;
  padTokenId?: number | null;
  /** Names the shape file in errors. */
  source?: string;
}

export interface InitModelResult {
  cfg: ModelConfig;
  tensors: Map<string, HostTensor>;
  generation: GenerationDefaults;
  tokenizer?: { tokenizerJson: object; tokenizerConfig: object };
}

/** xoshiro128** (Blackman & Vigna), seeded through splitmix32; uniform in [0, 1). */
export function makeRng(seed: number): () => number {
  let z = seed >>> 0;
  const split = (): number => {
    z = (z + 0x9e3779b9) >>> 0;
    let t = z;
    t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
    t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
    return (t ^ (t >>> 16)) >>> 0;
  };
  let a = split(),
    b = split(),
    c = split(),
    d = split();
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Fills `out` with normal(0, std) values (Box–Muller, both outputs used). */
export function fillNormal(out: Float32Array, std: number, rng: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - rng(); // (0, 1]: log is finite
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}

/** The shape file with Qwen2 defaults filled in (Qwen2Config's, except small context 4096). */
function withDefaults(shape: Record<string, unknown>, opts: InitOptions): Record<string, unknown> {
  const j: Record<string, unknown> = { ...shape };
  if (opts.arch) {
    j['architectures'] = [ARCH[opts.arch]];
    j['model_type'] = opts.arch;
  } else if (j['architectures'] === undefined && j['model_type'] === undefined) {
    j['architectures'] = ['Qwen2ForCausalLM'];
    j['model_type'] = 'qwen2';
  }
  const dflt: Record<string, unknown> = {
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    max_position_embeddings: 4096,
    tie_word_embeddings: true,
    initializer_range: 0.02,
    attention_dropout: 0.0,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: null,
    pad_token_id: null,
  };
  for (const [k, v] of Object.entries(dflt)) if (j[k] === undefined) j[k] = v;
  if (j['rope_theta'] === undefined && j['rope_parameters'] === undefined) j['rope_theta'] = 10000.0;
  if (j['num_key_value_heads'] === undefined && j['num_attention_heads'] !== undefined)
    j['num_key_value_heads'] = j['num_attention_heads'];
  if (
    j['head_dim'] === undefined &&
    typeof j['hidden_size'] === 'number' &&
    typeof j['num_attention_heads'] === 'number'
  ) {
    j['head_dim'] = j['hidden_size'] / j['num_attention_heads'];
  }
  return j;
}

/** The config a shape file gives (defaults filled in, every field checked), without drawing weights. */
export function shapeConfig(shape: Record<string, unknown>, opts: Omit<InitOptions, 'seed'> = {}): ModelConfig {
  const source = opts.source ?? 'shape config';
  if (shape === null || typeof shape !== 'object' || Array.isArray(shape))
    throw new ModelLoadError(`${source}: must be a JSON object of HF config fields`);
  return parseModelConfig(withDefaults(shape, { ...opts, seed: 0 }), source);
}

/** Builds config, random weights and (optionally) a character-level tokenizer. */
export function initModel(shape: Record<string, unknown>, opts: InitOptions): InitModelResult {
  const source = opts.source ?? 'shape config';
  if (shape === null || typeof shape !== 'object' || Array.isArray(shape))
    throw new ModelLoadError(`${source}: must be a JSON object of HF config fields`);
  if (!Number.isSafeInteger(opts.seed))
    throw new ModelLoadError(`initModel: seed must be an integer (got ${opts.seed})`);
  const j = withDefaults(shape, opts);
  let tokenizer: InitModelResult['tokenizer'];
  if (opts.charVocab) {
    tokenizer = charLevelTokenizerFiles(PRINTABLE_ASCII);
    const vocab = (tokenizer.tokenizerJson as { model: { vocab: Record<string, number> } }).model.vocab;
    j['vocab_size'] = Object.keys(vocab).length;
    j['pad_token_id'] = vocab['<|endoftext|>'];
    j['eos_token_id'] = vocab['<|im_end|>'];
    j['bos_token_id'] = null;
  } else {
    if (opts.eosTokenId != null && j['eos_token_id'] == null) j['eos_token_id'] = opts.eosTokenId;
    if (opts.padTokenId != null && j['pad_token_id'] == null) j['pad_token_id'] = opts.padTokenId;
  }
  const cfg = parseModelConfig(j, source);
  const std = typeof j['initializer_range'] === 'number' ? j['initializer_range'] : 0.02;
  if (!(std > 0 && Number.isFinite(std)))
    throw new ModelLoadError(
      `${source}: field "initializer_range" must be a positive number (got ${JSON.stringify(j['initializer_range'])})`,
    );

  const rng = makeRng(opts.seed);
  const tensors = new Map<string, HostTensor>();
  for (const { name, shape: s } of parameterNames(cfg)) {
    const data = new Float32Array(s.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight'))
      data.fill(1); // input/post_attention/final/q/k RMSNorm
    else if (name.endsWith('.bias')) data.fill(0);
    else fillNormal(data, std, rng);
    tensors.set(name, { shape: s, data });
  }
  // nn.Embedding(padding_idx=pad_token_id) zeroes that row in transformers' _init_weights.
  const pad = cfg.padTokenId;
  if (pad !== null && pad < cfg.vocabSize)
    tensors.get('model.embed_tokens.weight')!.data.fill(0, pad * cfg.hiddenSize, (pad + 1) * cfg.hiddenSize);

  const generation: GenerationDefaults = {
    eosTokenIds: cfg.eosTokenIds.slice(),
    padTokenId: cfg.padTokenId,
    bosTokenId: cfg.bosTokenId,
    raw: {},
  };
  return tokenizer ? { cfg, tensors, generation, tokenizer } : { cfg, tensors, generation };
}

/** initModel + saveModelFolder (atomic), with tokenizer files when `charVocab`. */
/** The tokenizer files of a made tokenizer (file name → text), as a model folder holds them. */
export function tokenizerFiles(tok: { tokenizerJson: object; tokenizerConfig: object }): Record<string, string> {
  return {
    'tokenizer.json': JSON.stringify(tok.tokenizerJson, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(tok.tokenizerConfig, null, 2) + '\n',
  };
}

export function writeInitModel(
  outDir: string,
  shape: Record<string, unknown>,
  opts: InitOptions,
  files: Record<string, string> = {},
): InitModelResult {
  const r = initModel(shape, opts);
  const extraFiles: Record<string, string> = { ...files };
  if (r.tokenizer) {
    Object.assign(extraFiles, tokenizerFiles(r.tokenizer));
  }
  saveModelFolder(outDir, r.cfg, r.tensors, { generation: r.generation, extraFiles });
  return r;
}
