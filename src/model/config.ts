/**
 * @module model/config
 * Hugging Face `config.json` → a plain typed ModelConfig for the three supported decoders
 * (Qwen2ForCausalLM, LlamaForCausalLM, Qwen3ForCausalLM), `generation_config.json` → defaults,
 * and back (`modelConfigToJson`). Reads both transformers-4 files (top-level `rope_theta`, e.g.
 * real Qwen2.5 checkpoints) and transformers-5 files (`rope_parameters.rope_theta`, the fixtures).
 *
 * Anything the decoder does not implement — rope scaling (llama3, yarn, linear, dynamic...), an
 * active sliding window, o_proj / MLP biases, another activation — is a ModelLoadError naming the
 * file and field: a model must never load and silently compute wrong logits (issue 3).
 * Defaults follow transformers' `LlamaConfig`, `Qwen2Config` and `Qwen3Config`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../errors.ts';

export type Architecture = 'Qwen2ForCausalLM' | 'LlamaForCausalLM' | 'Qwen3ForCausalLM';

export interface ModelConfig {
  architecture: Architecture;
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  /** q_proj/k_proj/v_proj carry biases: Qwen2 always; Llama/Qwen3 from `attention_bias` (not supported there, see parse). */
  attentionBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (Qwen3: `self_attn.q_norm` / `k_norm`, weight [headDim]). */
  qkNorm: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The original JSON, kept so saving preserves fields we do not interpret. */
  raw: Record<string, unknown>;
}

export interface GenerationDefaults {
  eosTokenIds: number[];
  padTokenId: number | null;
  bosTokenId: number | null;
  temperature?: number;
  topP?: number;
  topK?: number;
  doSample?: boolean;
  maxNewTokens?: number;
  raw: Record<string, unknown>;
}

const ARCH_BY_MODEL_TYPE: Record<string, Architecture> = {
  qwen2: 'Qwen2ForCausalLM',
  llama: 'LlamaForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};
const MODEL_TYPE_BY_ARCH: Record<Architecture, string> = {
  Qwen2ForCausalLM: 'qwen2',
  LlamaForCausalLM: 'llama',
  Qwen3ForCausalLM: 'qwen3',
};

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// field readers: each names the file and field on error

function posInt(j: Record<string, unknown>, key: string, source: string, dflt?: number): number {
  const v = j[key];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new ModelLoadError(`${source}: missing required field "${key}" (a positive integer); add it to the config`);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw new ModelLoadError(`${source}: field "${key}" must be a positive integer (got ${JSON.stringify(v)})`);
  return v;
}

function posNum(v: unknown, key: string, source: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new ModelLoadError(`${source}: field "${key}" must be a positive number (got ${JSON.stringify(v)})`);
  return v;
}

function bool(j: Record<string, unknown>, key: string, source: string, dflt: boolean): boolean {
  const v = j[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean')
    throw new ModelLoadError(`${source}: field "${key}" must be true or false (got ${JSON.stringify(v)})`);
  return v;
}

function tokenId(v: unknown, key: string, source: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new ModelLoadError(`${source}: field "${key}" must be a token id ≥ 0 or null (got ${JSON.stringify(v)})`);
  return v;
}

function tokenIds(v: unknown, key: string, source: string): number[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.map((x, i) => {
    const id = tokenId(x, Array.isArray(v) ? `${key}[${i}]` : key, source);
    if (id === null) throw new ModelLoadError(`${source}: field "${key}" contains null`);
    return id;
  });
}

// ---------------------------------------------------------------------------------------------
// rope and sliding window: refuse what the decoder does not compute

function ropeTheta(j: Record<string, unknown>, source: string): number {
  const scaling = j['rope_scaling'];
  if (scaling !== undefined && scaling !== null) {
    if (!isObj(scaling))
      throw new ModelLoadError(
        `${source}: field "rope_scaling" must be an object or null (got ${JSON.stringify(scaling)})`,
      );
    const type = scaling['rope_type'] ?? scaling['type'];
    if (type !== 'default') {
      throw new ModelLoadError(
        `${source}: rope_scaling of type ${JSON.stringify(type)} is not supported (only default RoPE); a model with scaled RoPE would compute wrong logits`,
      );
    }
  }
  let fromParams: unknown;
  const params = j['rope_parameters'];
  if (params !== undefined && params !== null) {
    if (!isObj(params))
      throw new ModelLoadError(`${source}: field "rope_parameters" must be an object (got ${JSON.stringify(params)})`);
    if (!('rope_type' in params) && !('rope_theta' in params) && Object.values(params).some(isObj)) {
      throw new ModelLoadError(
        `${source}: per-layer-type "rope_parameters" (${Object.keys(params).join(', ')}) are not supported; only one default RoPE for all layers`,
      );
    }
    const type = params['rope_type'] ?? params['type'] ?? 'default';
    if (type !== 'default') {
      throw new ModelLoadError(
        `${source}: rope_parameters.rope_type ${JSON.stringify(type)} is not supported (only "default" RoPE); a model with scaled RoPE would compute wrong logits`,
      );
    }
    const prf = params['partial_rotary_factor'];
    if (prf !== undefined && prf !== null && prf !== 1)
      throw new ModelLoadError(
        `${source}: rope_parameters.partial_rotary_factor ${JSON.stringify(prf)} is not supported (only 1)`,
      );
    fromParams = params['rope_theta'];
  }
  const prf = j['partial_rotary_factor'];
  if (prf !== undefined && prf !== null && prf !== 1)
    throw new ModelLoadError(
      `${source}: field "partial_rotary_factor" ${JSON.stringify(prf)} is not supported (only 1)`,
    );
  // transformers 5 keeps theta in rope_parameters; transformers 4 at the top level. Both: v5 wins.
  const v = fromParams ?? j['rope_theta'];
  return posNum(v, fromParams !== undefined ? 'rope_parameters.rope_theta' : 'rope_theta', source, 10000.0);
}

function checkSlidingWindow(j: Record<string, unknown>, numLayers: number, maxPos: number, source: string): void {
  const layerTypes = j['layer_types'];
  if (layerTypes !== undefined && layerTypes !== null) {
    if (!Array.isArray(layerTypes))
      throw new ModelLoadError(`${source}: field "layer_types" must be an array (got ${JSON.stringify(layerTypes)})`);
    const bad = layerTypes.findIndex((t) => t !== 'full_attention');
    if (bad >= 0)
      throw new ModelLoadError(
        `${source}: layer_types[${bad}] is ${JSON.stringify(layerTypes[bad])}; only "full_attention" is supported (sliding-window attention is not implemented)`,
      );
  }
  if (j['use_sliding_window'] === true) {
    const win = j['sliding_window'];
    // Qwen2 (transformers 4) slides only on layers i >= max_window_layers.
    const mwl = typeof j['max_window_layers'] === 'number' ? (j['max_window_layers'] as number) : 0;
    const active = typeof win === 'number' && win < maxPos && mwl < numLayers;
    if (active) {
      throw new ModelLoadError(
        `${source}: use_sliding_window is true with sliding_window ${win} < max_position_embeddings ${maxPos} (layers ≥ max_window_layers ${mwl}); sliding-window attention is not implemented — set use_sliding_window to false only if the model was trained without it`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Validates an HF config.json object and returns the typed config. */
export function parseModelConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (!isObj(json)) throw new ModelLoadError(`${source}: must be a JSON object`);
  const j = json;
  let architecture: Architecture;
  const archs = j['architectures'];
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string')
      throw new ModelLoadError(
        `${source}: field "architectures" must be a non-empty array of strings (got ${JSON.stringify(archs)})`,
      );
    const a = archs[0] as string;
    if (!(a in MODEL_TYPE_BY_ARCH))
      throw new ModelLoadError(
        `${source}: architecture "${a}" is not supported (supported: ${Object.keys(MODEL_TYPE_BY_ARCH).join(', ')})`,
      );
    architecture = a as Architecture;
  } else {
    const mt = j['model_type'];
    if (typeof mt !== 'string')
      throw new ModelLoadError(`${source}: missing required field "architectures" (e.g. ["Qwen2ForCausalLM"])`);
    const a = ARCH_BY_MODEL_TYPE[mt];
    if (!a)
      throw new ModelLoadError(
        `${source}: model_type "${mt}" is not supported (supported: ${Object.keys(ARCH_BY_MODEL_TYPE).join(', ')})`,
      );
    architecture = a;
  }
  const modelType = MODEL_TYPE_BY_ARCH[architecture];
  if (j['model_type'] !== undefined && j['model_type'] !== modelType) {
    throw new ModelLoadError(
      `${source}: model_type ${JSON.stringify(j['model_type'])} does not match architecture ${architecture} (expected "${modelType}")`,
    );
  }

  const vocabSize = posInt(j, 'vocab_size', source);
  const hiddenSize = posInt(j, 'hidden_size', source);
  const intermediateSize = posInt(j, 'intermediate_size', source);
  const numLayers = posInt(j, 'num_hidden_layers', source);
  const numHeads = posInt(j, 'num_attention_heads', source);
  const numKvHeads = posInt(j, 'num_key_value_heads', source, numHeads);
  if (numHeads % numKvHeads !== 0)
    throw new ModelLoadError(
      `${source}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  // Qwen3Config defaults head_dim to 128; Llama/Qwen2 derive it from hidden_size.
  const headDimDefault = architecture === 'Qwen3ForCausalLM' ? 128 : hiddenSize / numHeads;
  if (j['head_dim'] == null && !Number.isInteger(headDimDefault))
    throw new ModelLoadError(
      `${source}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and "head_dim" is not given`,
    );
  const headDim = posInt(j, 'head_dim', source, headDimDefault);
  const maxPositionEmbeddings = posInt(
    j,
    'max_position_embeddings',
    source,
    architecture === 'LlamaForCausalLM' ? 2048 : 32768,
  );

  const act = j['hidden_act'] ?? 'silu';
  if (act !== 'silu')
    throw new ModelLoadError(`${source}: hidden_act ${JSON.stringify(act)} is not supported (only "silu")`);
  if (bool(j, 'mlp_bias', source, false))
    throw new ModelLoadError(`${source}: mlp_bias true is not supported (MLP projections without bias only)`);
  let attentionBias: boolean;
  if (architecture === 'Qwen2ForCausalLM') {
    attentionBias = true; // Qwen2Attention: q/k/v bias=True, o_proj bias=False, regardless of config
  } else {
    attentionBias = bool(j, 'attention_bias', source, false);
    // Llama/Qwen3 put the same flag on o_proj too (bias=config.attention_bias), which the decoder does not implement.
    if (attentionBias)
      throw new ModelLoadError(
        `${source}: attention_bias true is not supported for ${architecture} (it also adds an o_proj bias); only Qwen2-style q/k/v biases are implemented`,
      );
  }
  const ropeThetaV = ropeTheta(j, source);
  checkSlidingWindow(j, numLayers, maxPositionEmbeddings, source);

  return {
    architecture,
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    ropeTheta: ropeThetaV,
    rmsNormEps: posNum(j['rms_norm_eps'], 'rms_norm_eps', source, 1e-6),
    tieWordEmbeddings: bool(j, 'tie_word_embeddings', source, false),
    attentionBias,
    qkNorm: architecture === 'Qwen3ForCausalLM',
    maxPositionEmbeddings,
    bosTokenId: tokenId(j['bos_token_id'], 'bos_token_id', source),
    eosTokenIds: tokenIds(j['eos_token_id'], 'eos_token_id', source),
    padTokenId: tokenId(j['pad_token_id'], 'pad_token_id', source),
    raw: structuredClone(j),
  };
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ModelLoadError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelLoadError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Reads and validates `<dir>/config.json`. */
export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path))
    throw new ModelLoadError(
      `${dir}: no config.json; a model folder needs config.json and model.safetensors (or an index)`,
    );
  return parseModelConfig(readJson(path), path);
}

/** Parses a generation_config.json object; ids it lacks come from the model config. */
export function parseGenerationConfig(
  json: unknown,
  cfg: ModelConfig,
  source = 'generation_config.json',
): GenerationDefaults {
  if (!isObj(json)) throw new ModelLoadError(`${source}: must be a JSON object`);
  const j = json;
  const out: GenerationDefaults = {
    eosTokenIds:
      j['eos_token_id'] != null ? tokenIds(j['eos_token_id'], 'eos_token_id', source) : cfg.eosTokenIds.slice(),
    padTokenId: j['pad_token_id'] != null ? tokenId(j['pad_token_id'], 'pad_token_id', source) : cfg.padTokenId,
    bosTokenId: j['bos_token_id'] != null ? tokenId(j['bos_token_id'], 'bos_token_id', source) : cfg.bosTokenId,
    raw: structuredClone(j),
  };
  const num = (key: string, ok: (v: number) => boolean, what: string): number | undefined => {
    const v = j[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !ok(v))
      throw new ModelLoadError(`${source}: field "${key}" must be ${what} (got ${JSON.stringify(v)})`);
    return v;
  };
  const t = num('temperature', (v) => Number.isFinite(v) && v >= 0, 'a number ≥ 0');
  if (t !== undefined) out.temperature = t;
  const p = num('top_p', (v) => v > 0 && v <= 1, 'in (0, 1]');
  if (p !== undefined) out.topP = p;
  const k = num('top_k', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer ≥ 0');
  if (k !== undefined) out.topK = k;
  const m = num('max_new_tokens', (v) => Number.isSafeInteger(v) && v > 0, 'a positive integer');
  if (m !== undefined) out.maxNewTokens = m;
  if (j['do_sample'] != null) out.doSample = bool(j, 'do_sample', source, false);
  return out;
}

/** Reads `<dir>/generation_config.json` when present; otherwise defaults from the model config. */
export function readGenerationConfig(dir: string, cfg: ModelConfig): GenerationDefaults {
  const path = join(dir, 'generation_config.json');
  if (!existsSync(path))
    return { eosTokenIds: cfg.eosTokenIds.slice(), padTokenId: cfg.padTokenId, bosTokenId: cfg.bosTokenId, raw: {} };
  return parseGenerationConfig(readJson(path), cfg, path);
}

/** HF writes a single eos id as a number, several as a list, none as null. */
function idsJson(ids: number[]): number | number[] | null {
  return ids.length === 0 ? null : ids.length === 1 ? ids[0]! : ids.slice();
}

/** Torch dtype names for `torch_dtype` (transformers 4) / `dtype` (transformers 5). */
export const TORCH_DTYPE: Record<'F32' | 'BF16' | 'F16', string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

/**
 * A complete HF config.json for `cfg` that transformers 4 and 5 both load: the original fields
 * kept, every field we interpret rewritten from the typed config.
 */
export function modelConfigToJson(cfg: ModelConfig, dtype: 'F32' | 'BF16' | 'F16' = 'F32'): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(cfg.raw);
  delete out['rope_scaling']; // only default RoPE loads (parseModelConfig); v5 reads rope_parameters
  Object.assign(out, {
    architectures: [cfg.architecture],
    model_type: cfg.modelType,
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    hidden_act: 'silu',
    max_position_embeddings: cfg.maxPositionEmbeddings,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_parameters: { rope_theta: cfg.ropeTheta, rope_type: 'default' },
    tie_word_embeddings: cfg.tieWordEmbeddings,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: idsJson(cfg.eosTokenIds),
    pad_token_id: cfg.padTokenId,
    torch_dtype: TORCH_DTYPE[dtype],
    dtype: TORCH_DTYPE[dtype],
    initializer_range: out['initializer_range'] ?? 0.02,
    attention_dropout: out['attention_dropout'] ?? 0.0,
    use_cache: out['use_cache'] ?? true,
  });
  if (cfg.architecture === 'LlamaForCausalLM') {
    Object.assign(out, {
      attention_bias: cfg.attentionBias,
      mlp_bias: false,
      pretraining_tp: out['pretraining_tp'] ?? 1,
    });
  } else {
    if (cfg.architecture === 'Qwen3ForCausalLM') out['attention_bias'] = cfg.attentionBias;
    Object.assign(out, {
      use_sliding_window: false,
      sliding_window: out['sliding_window'] ?? null,
      max_window_layers: out['max_window_layers'] ?? cfg.numLayers,
      layer_types: Array.from({ length: cfg.numLayers }, () => 'full_attention'),
    });
  }
  return out;
}

/** HF module names inside `model.layers.<i>.` (the decoder and the parameter table both use these). */
export const LAYER = {
  inputNorm: 'input_layernorm',
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  qNorm: 'self_attn.q_norm',
  kNorm: 'self_attn.k_norm',
  postNorm: 'post_attention_layernorm',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
} as const;

/** A module of one decoder layer: a linear layer ([out, in] weight, optional bias) or a norm ([C] weight). */
export interface LayerModule {
  module: string;
  kind: 'linear' | 'norm';
  /** Weight shape: [out, in] for linear, [C] for norm. */
  shape: number[];
  bias: boolean;
}

/** The one per-layer table (HF order): every parameter name and shape follows from it. */
export function layerModules(cfg: ModelConfig): LayerModule[] {
  const { hiddenSize: C, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: D } = cfg;
  const lin = (module: string, out: number, inp: number, bias = false): LayerModule => ({
    module,
    kind: 'linear',
    shape: [out, inp],
    bias,
  });
  const norm = (module: string, n: number): LayerModule => ({ module, kind: 'norm', shape: [n], bias: false });
  const b = cfg.attentionBias;
  return [
    norm(LAYER.inputNorm, C),
    lin(LAYER.q, H * D, C, b),
    lin(LAYER.k, Hkv * D, C, b),
    lin(LAYER.v, Hkv * D, C, b),
    lin(LAYER.o, C, H * D),
    ...(cfg.qkNorm ? [norm(LAYER.qNorm, D), norm(LAYER.kNorm, D)] : []),
    norm(LAYER.postNorm, C),
    lin(LAYER.gate, F, C),
    lin(LAYER.up, F, C),
    lin(LAYER.down, C, F),
  ];
}

/**
 * Every parameter tensor of the decoder with its HF name and shape, in a stable order:
 * embedding, then per layer (norm, attention, norm, MLP), final norm, lm_head when untied.
 * Shapes are torch `nn.Linear` weights: [out_features, in_features].
 */
export function parameterNames(cfg: ModelConfig): Array<{ name: string; shape: number[] }> {
  const { vocabSize: V, hiddenSize: C } = cfg;
  const out: Array<{ name: string; shape: number[] }> = [{ name: 'model.embed_tokens.weight', shape: [V, C] }];
  const mods = layerModules(cfg);
  for (let i = 0; i < cfg.numLayers; i++) {
    for (const m of mods) {
      const p = `model.layers.${i}.${m.module}`;
      out.push({ name: `${p}.weight`, shape: m.shape });
      if (m.bias) out.push({ name: `${p}.bias`, shape: [m.shape[0]!] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [C] });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, C] });
  return out;
}
