/**
 * @module model/lora
 * LoRA adapters (Hu et al., arXiv 2106.09685) on the decoder's linear layers, in PEFT's exact
 * file format, so PEFT, transformers and vLLM's LoRA loader read what we write and we read what
 * PEFT writes (`fixtures/peft-lora/` holds an adapter saved by PEFT itself):
 *
 *   y = W x (+ b) + scale · B(A(dropout(x)))     scale = lora_alpha / r   (rsLoRA: lora_alpha / √r)
 *
 * A [r, in] is initialised as PEFT's `reset_lora_parameters` does (kaiming-uniform with a = √5,
 * i.e. U(−1/√in, 1/√in)) and B [out, r] with zeros, so step 0 equals the base model. Dropout acts
 * only in the training forward (gradient recording on and the adapters trainable), with seeded
 * masks (tensor/ops/dropout.ts). The base weights are frozen (no dW product, only dx) and may be
 * kept in bfloat16 (`baseDtype`) to halve their memory.
 *
 * Files (PEFT `save_pretrained`): `adapter_config.json` (every LoraConfig key PEFT writes) and
 * `adapter_model.safetensors` with float32 tensors named
 * `base_model.model.<HF module path>.lora_A.weight` / `.lora_B.weight`
 * (e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
 *
 * `CausalLM.project()` routes every linear layer through `LoraAdapter.project`, and
 * `trainableParameters()` returns the adapter's tensors when one is attached.
 */
import { existsSync, readFileSync, statSync, copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { isGradEnabled, noGrad } from '../tensor/tape.ts';
import { gemmInto } from '../tensor/ops/matmul.ts';
import { loraLinear } from '../tensor/ops/lora.ts';
import { Rng } from '../data/rng.ts';
import { ModelLoadError } from '../errors.ts';
import { replaceDirAtomic, writeFileAtomic } from '../io/atomic.ts';
import { CausalLM } from './decoder.ts';
import { layerModules, readModelConfig, readGenerationConfig, type ModelConfig } from './config.ts';
import { loadModelTensors, saveModelFolder, tensorSource, TOKENIZER_FILES, type HostTensor } from './folder.ts';
import { readSafetensorsFile, toFloat32, writeSafetensorsFile, type StSource, type StTensor } from './safetensors.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PEFT's prefix for a causal LM's module paths (`PeftModelForCausalLM.base_model.model`). */
const PREFIX = 'base_model.model.';
/** The PEFT release whose `adapter_config.json` layout this writer follows (the fixture's). */
const PEFT_FORMAT_VERSION = '0.20.1.dev0';

/** The linear projections of a decoder layer, by PEFT's short names (TRL / PEFT `target_modules`). */
export const LINEAR_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

export interface LoraSettings {
  /** Rank r ≥ 1. */
  r: number;
  /** lora_alpha: the update is scaled by alpha / r (rsLoRA: alpha / √r). */
  alpha: number;
  /** lora_dropout probability on the adapter input, in [0, 1). */
  dropout: number;
  /**
   * PEFT `target_modules`: names matched against the end of each module path (`q_proj` matches
   * `model.layers.3.self_attn.q_proj`), `all-linear`, or one string taken as a regular expression
   * that must match a whole module path.
   */
  targetModules: string[] | string;
  /** rsLoRA (Kalajdzievski, arXiv 2312.03732): scale = alpha / √r. */
  useRslora: boolean;
}

export interface ApplyLoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  /** Default: every attention and MLP projection (LINEAR_MODULES). */
  targetModules?: string[] | string;
  useRslora?: boolean;
  /** Seeds A's initialisation and the dropout masks. */
  seed?: number;
  /** Storage of the frozen base's layer weights: float32 (default) or bfloat16 (half the memory). */
  baseDtype?: 'float32' | 'bfloat16';
}

interface Pair {
  A: Tensor; // [r, in]
  B: Tensor; // [out, r]
}

/** Adapters attached to a CausalLM (model.lora): one (A, B) pair per targeted linear module. */
export class LoraAdapter {
  readonly settings: LoraSettings;
  readonly scale: number;
  /** HF module path (`model.layers.0.self_attn.q_proj`) → its pair, in HF order. */
  readonly pairs: Map<string, Pair>;
  private enabled = true;
  private readonly seed: number;
  private stepSeed: number;
  private calls = 0;

  constructor(settings: LoraSettings, pairs: Map<string, Pair>, seed = 0) {
    this.settings = settings;
    this.scale = settings.useRslora ? settings.alpha / Math.sqrt(settings.r) : settings.alpha / settings.r;
    this.pairs = pairs;
    this.seed = seed;
    this.stepSeed = dropoutStepSeed(seed, 0);
    for (const [module, p] of pairs) {
      p.A.name = peftName(module, 'A');
      p.B.name = peftName(module, 'B');
    }
  }

  /** The adapted projection of `module`, or null when it has no adapter or adapters are off. */
  project(module: string, x: Tensor, W: Tensor, b: Tensor | null): Tensor | null {
    const p = this.enabled ? this.pairs.get(module) : undefined;
    if (!p) return null;
    const train = this.settings.dropout > 0 && isGradEnabled() && p.A.requiresGrad;
    const dropout = train
      ? { p: this.settings.dropout, seed: this.stepSeed * 2 ** 20 + (this.calls++ % 2 ** 20) }
      : null;
    return loraLinear(x, W, b, p.A, p.B, { scale: this.scale, dropout });
  }

  /** Runs fn with the adapters switched off (the base model: the reference for β > 0), then back on. */
  disabled<T>(fn: () => T): T {
    const prev = this.enabled;
    this.enabled = false;
    try {
      return fn();
    } finally {
      this.enabled = prev;
    }
  }

  /**
   * Dropout masks for optimizer step k: a pure function of (seed, k, call order), so a resumed
   * run draws the same masks as an uninterrupted one.
   */
  reseed(k: number): void {
    this.stepSeed = dropoutStepSeed(this.seed, k);
    this.calls = 0;
  }

  /** Adapter tensors by PEFT name, in HF order (per layer and module: lora_A, then lora_B). */
  parameters(): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [module, p] of this.pairs) out.push([peftName(module, 'A'), p.A], [peftName(module, 'B'), p.B]);
    return out;
  }

  /** Host copies by PEFT name (what adapter_model.safetensors holds). */
  toHost(): Map<string, HostTensor> {
    return new Map(this.parameters().map(([n, t]) => [n, { shape: [...t.shape], data: t.toFloat32() }]));
  }

  /** Overwrites the adapter tensors with host values by PEFT name (resume); names and shapes must match. */
  load(tensors: Map<string, HostTensor>, source: string): void {
    if (tensors.size !== this.pairs.size * 2)
      throw new ModelLoadError(
        `${source}: ${tensors.size} adapter tensors for ${this.pairs.size * 2} expected; the adapter targets other modules`,
      );
    for (const [n, t] of this.parameters()) {
      const h = tensors.get(n);
      if (!h) throw new ModelLoadError(`${source}: adapter tensor ${n} is missing`);
      if (!sameShape(h.shape, t.shape))
        throw new ModelLoadError(`${source}: adapter tensor ${n} has shape [${h.shape}], the model needs [${t.shape}]`);
    }
    for (const [n, t] of this.parameters()) t.write(tensors.get(n)!.data);
  }

  dispose(): void {
    for (const p of this.pairs.values())
      for (const t of [p.A, p.B]) {
        t.grad?.dispose();
        t.dispose();
      }
  }
}

function dropoutStepSeed(seed: number, k: number): number {
  return new Rng(seed, 0x10ad + k).nextUint32();
}

/** PEFT's tensor name for a module's lora_A / lora_B. */
export function peftName(module: string, which: 'A' | 'B'): string {
  return `${PREFIX}${module}.lora_${which}.weight`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// ---------------------------------------------------------------------------------------------
// which modules: PEFT's target_modules rule on our module table

/**
 * The linear modules of `cfg` that `targetModules` selects (HF order), with their [out, in]
 * shapes. Follows PEFT's `check_target_module_exists`: a list entry matches a module path equal
 * to it or ending in `.<entry>`; a string is a regular expression matched against the whole
 * path; `all-linear` is every layer projection (PEFT excludes the lm_head). A list entry that
 * matches no linear layer is an error naming it, as PEFT's "Target modules ... not found".
 */
export function targetedModules(
  cfg: ModelConfig,
  targetModules: string[] | string,
  source = 'lora_target_modules',
): Array<{ module: string; shape: [number, number] }> {
  const linears: Array<{ module: string; shape: [number, number] }> = [];
  const mods = layerModules(cfg).filter((m) => m.kind === 'linear');
  for (let i = 0; i < cfg.numLayers; i++)
    for (const m of mods) linears.push({ module: `model.layers.${i}.${m.module}`, shape: m.shape as [number, number] });
  const known = mods.map((m) => m.module.split('.').pop()!).join(', ');
  if (typeof targetModules === 'string') {
    if (targetModules === 'all-linear') return linears;
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targetModules})$`);
    } catch (e) {
      throw new ModelLoadError(
        `${source}: ${JSON.stringify(targetModules)} is not a valid regular expression (${(e as Error).message})`,
      );
    }
    const hit = linears.filter((l) => re.test(l.module));
    if (hit.length === 0)
      throw new ModelLoadError(
        `${source}: the regular expression ${JSON.stringify(targetModules)} matches no linear layer of ${cfg.architecture} (module paths look like model.layers.0.self_attn.q_proj)`,
      );
    return hit;
  }
  if (targetModules.length === 0) throw new ModelLoadError(`${source}: empty; name at least one module (${known})`);
  if (targetModules.includes('all-linear')) return linears;
  const matches = (path: string, t: string) => path === t || path.endsWith(`.${t}`);
  for (const t of targetModules) {
    if (!linears.some((l) => matches(l.module, t)))
      throw new ModelLoadError(
        `${source}: "${t}" matches no linear layer of ${cfg.architecture}; adapters go on ${known} (or all-linear)`,
      );
  }
  return linears.filter((l) => targetModules.some((t) => matches(l.module, t)));
}

function checkSettings(s: LoraSettings, source: string): void {
  if (!Number.isSafeInteger(s.r) || s.r <= 0)
    throw new ModelLoadError(`${source}: r must be an integer ≥ 1 (got ${s.r})`);
  if (!Number.isFinite(s.alpha))
    throw new ModelLoadError(`${source}: lora_alpha must be a finite number (got ${s.alpha})`);
  if (!(s.dropout >= 0 && s.dropout < 1))
    throw new ModelLoadError(`${source}: lora_dropout must be in [0, 1) (got ${s.dropout})`);
}

// ---------------------------------------------------------------------------------------------
// attaching adapters

/**
 * Attaches fresh adapters to `model` (A kaiming-uniform as PEFT, B zero: the model's outputs do
 * not change) and freezes the base; optionally stores the base's layer weights in bfloat16.
 * The benchmark and the trainer call this; returns the adapter (also `model.lora`).
 */
export function applyLora(model: CausalLM, o: ApplyLoraOptions): LoraAdapter {
  const settings: LoraSettings = {
    r: o.r,
    alpha: o.alpha,
    dropout: o.dropout ?? 0,
    targetModules: o.targetModules ?? [...LINEAR_MODULES],
    useRslora: !!o.useRslora,
  };
  checkSettings(settings, 'lora');
  if (model.lora) throw new ModelLoadError('applyLora: the model already carries a LoRA adapter');
  const targets = targetedModules(model.cfg, settings.targetModules);
  const seed = o.seed ?? 0;
  const rng = new Rng(seed, 0x10a);
  const pairs = new Map<string, Pair>();
  for (const { module, shape } of targets) {
    const [N, K] = shape;
    const bound = 1 / Math.sqrt(K); // kaiming_uniform_(a=√5): gain √(2/(1+5)) · √(3/fan_in) = 1/√fan_in
    const a = new Float32Array(settings.r * K);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    pairs.set(module, { A: Tensor.fromArray(a, [settings.r, K]).keep(), B: Tensor.zeros([N, settings.r]).keep() });
  }
  return attach(model, new LoraAdapter(settings, pairs, seed), o.baseDtype ?? 'float32');
}

function attach(model: CausalLM, adapter: LoraAdapter, baseDtype: 'float32' | 'bfloat16'): LoraAdapter {
  for (const p of model.params.values()) {
    p.requiresGrad = false;
    p.grad?.dispose();
    p.grad = null;
  }
  if (baseDtype === 'bfloat16') castLayerWeights(model, 'bfloat16');
  model.lora = adapter;
  return adapter;
}

/** The decoder layers' linear weights (the bulk of the parameters) stored as `dtype`, in place. */
export function castLayerWeights(model: CausalLM, dtype: 'float32' | 'bfloat16'): void {
  const mods = layerModules(model.cfg).filter((m) => m.kind === 'linear');
  for (let i = 0; i < model.cfg.numLayers; i++)
    for (const m of mods) {
      const name = `model.layers.${i}.${m.module}.weight`;
      const w = model.params.get(name)!;
      if (w.dtype === dtype) continue;
      const c = Tensor.fromArray(w.toFloat32(), w.shape, dtype).keep();
      c.name = name;
      w.dispose();
      model.params.set(name, c);
    }
}

/**
 * Loads a base model folder with its layer weights stored as `baseDtype` straight away, tensor by
 * tensor (no float32 copy of the whole model on the host, none of a bf16 base on the device).
 */
export function loadBaseModel(dir: string, baseDtype: 'float32' | 'bfloat16' = 'float32'): CausalLM {
  const cfg = readModelConfig(dir);
  const layerLinear = new Set<string>();
  const mods = layerModules(cfg).filter((m) => m.kind === 'linear');
  for (let i = 0; i < cfg.numLayers; i++) for (const m of mods) layerLinear.add(`model.layers.${i}.${m.module}.weight`);
  const params = new Map<string, Tensor>();
  try {
    loadModelTensors(dir, cfg, {
      onTensor: (name, t) =>
        params.set(name, Tensor.fromArray(t.data, t.shape, layerLinear.has(name) ? baseDtype : 'float32').keep()),
    });
    return new CausalLM(cfg, params);
  } catch (e) {
    for (const p of params.values()) p.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// PEFT files

/** adapter_config.json as PEFT's `LoraConfig.save_pretrained` writes it (every key, PEFT's defaults). */
export function adapterConfigJson(s: LoraSettings, baseModelNameOrPath: string | null): Record<string, unknown> {
  return {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    // PEFT writes auto_mapping only when task_type is null; TRL sets task_type CAUSAL_LM
    auto_mapping: null,
    base_model_name_or_path: baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: s.alpha,
    lora_bias: false,
    lora_dropout: s.dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: PEFT_FORMAT_VERSION,
    qalora_group_size: 16,
    r: s.r,
    rank_pattern: {},
    revision: null,
    // PEFT keeps a list of names as a set and writes it sorted
    target_modules: typeof s.targetModules === 'string' ? s.targetModules : [...new Set(s.targetModules)].sort(),
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: s.useRslora,
    velora_config: null,
  };
}

export interface SaveAdapterOptions {
  /** adapter_config.json's base_model_name_or_path (the folder or hub id of the base). */
  baseModelNameOrPath: string | null;
  /** A folder to copy tokenizer files from (those of TOKENIZER_FILES that exist). */
  tokenizerFrom?: string;
  /** Extra plain files written beside the adapter: name → text. */
  extraFiles?: Record<string, string>;
}

/** Writes adapter_config.json, adapter_model.safetensors and tokenizer files into an existing (staging) folder. */
export function writeAdapterFiles(dir: string, model: CausalLM, o: SaveAdapterOptions): void {
  const lora = requireAdapter(model, 'writeAdapterFiles');
  const tensors = new Map<string, StSource>();
  for (const [n, t] of lora.parameters()) tensors.set(n, tensorSource(t)); // streamed from the backend
  writeSafetensorsFile(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  writeFileAtomic(
    join(dir, ADAPTER_CONFIG_FILE),
    JSON.stringify(adapterConfigJson(lora.settings, o.baseModelNameOrPath), null, 2) + '\n',
  );
  if (o.tokenizerFrom !== undefined)
    for (const f of TOKENIZER_FILES) {
      const src = join(o.tokenizerFrom, f);
      if (existsSync(src) && statSync(src).isFile()) copyFileSync(src, join(dir, f));
    }
  for (const [f, text] of Object.entries(o.extraFiles ?? {})) {
    if (f !== basename(f) || f === '' || f === '.' || f === '..')
      throw new ModelLoadError(`writeAdapterFiles: extra file name ${JSON.stringify(f)} must be a plain file name`);
    writeFileAtomic(join(dir, f), text);
  }
}

/** Saves the model's adapter as a PEFT folder at `dir` (staged beside it, then swapped in). */
export function saveAdapter(dir: string, model: CausalLM, o: SaveAdapterOptions): void {
  requireAdapter(model, 'saveAdapter');
  replaceDirAtomic(dir, (stage) => writeAdapterFiles(stage, model, o));
}

function requireAdapter(model: CausalLM, op: string): LoraAdapter {
  if (!model.lora) throw new ModelLoadError(`${op}: the model carries no LoRA adapter`);
  return model.lora;
}

/** Reads and checks a PEFT adapter_config.json; what we do not compute is refused, naming the field. */
export function readAdapterConfig(dir: string): LoraSettings & { baseModelNameOrPath: string | null } {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(path))
    throw new ModelLoadError(
      `${dir}: no ${ADAPTER_CONFIG_FILE}; is this a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)?`,
    );
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ModelLoadError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new ModelLoadError(`${path}: not a JSON object`);
  const fail = (field: string, msg: string): never => {
    throw new ModelLoadError(`${path}: ${field}: ${msg}`);
  };
  if (j.peft_type !== 'LORA')
    fail('peft_type', `only LORA adapters are supported (got ${JSON.stringify(j.peft_type)})`);
  const num = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(k, `must be a number (got ${JSON.stringify(j[k])})`);
    return v as number;
  };
  const r = num('r', 8);
  if (!Number.isSafeInteger(r) || r <= 0) fail('r', `must be an integer ≥ 1 (got ${r})`);
  const alpha = num('lora_alpha', 8);
  const dropout = num('lora_dropout', 0);
  const tm = j.target_modules;
  let targetModules: string[] | string;
  if (typeof tm === 'string') targetModules = tm;
  else if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) targetModules = tm as string[];
  else fail('target_modules', `must be a list of module names or a regular expression (got ${JSON.stringify(tm)})`);
  // features that change the math: refuse rather than compute something else
  const refuse = (k: string, ok: (v: unknown) => boolean, what: string) => {
    if (j[k] !== undefined && !ok(j[k])) fail(k, `${JSON.stringify(j[k])} is not supported (${what})`);
  };
  const empty = (v: unknown) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0);
  refuse('use_dora', (v) => v === false || v === null, 'DoRA');
  refuse('bias', (v) => v === 'none', 'only bias "none"');
  refuse('lora_bias', (v) => v === false || v === null, 'lora_B biases');
  refuse('fan_in_fan_out', (v) => v === false || v === null, 'Conv1D-layout weights');
  refuse('modules_to_save', (v) => v === null || (Array.isArray(v) && v.length === 0), 'fully trained extra modules');
  refuse('rank_pattern', empty, 'per-module ranks');
  refuse('alpha_pattern', empty, 'per-module alphas');
  refuse('layers_to_transform', (v) => v === null, 'a subset of layers');
  refuse('layer_replication', (v) => v === null, 'replicated layers');
  refuse('trainable_token_indices', (v) => v === null, 'trainable tokens');
  refuse('target_parameters', (v) => v === null || (Array.isArray(v) && v.length === 0), 'parameter targets');
  refuse('exclude_modules', (v) => v === null || (Array.isArray(v) && v.length === 0), 'excluded modules');
  const rs = j.use_rslora ?? false;
  if (typeof rs !== 'boolean') fail('use_rslora', `must be true or false (got ${JSON.stringify(rs)})`);
  const base = j.base_model_name_or_path;
  const settings = { r, alpha, dropout, targetModules: targetModules!, useRslora: rs as boolean };
  checkSettings(settings, path);
  return { ...settings, baseModelNameOrPath: typeof base === 'string' ? base : null };
}

/**
 * Reads a PEFT adapter folder for `model` and attaches it (the base is frozen). Every tensor
 * must be a lora_A / lora_B of a module the config targets, with the shapes that module needs:
 * an adapter made for another base shape is one clear error naming the tensor.
 */
export function loadAdapter(model: CausalLM, dir: string, o: { baseDtype?: 'float32' | 'bfloat16' } = {}): LoraAdapter {
  const settings = readAdapterConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(file))
    throw new ModelLoadError(
      `${dir}: no ${ADAPTER_WEIGHTS_FILE} (only safetensors adapters are supported; PEFT writes it by default)`,
    );
  if (model.lora) throw new ModelLoadError(`loadAdapter: ${dir}: the model already carries a LoRA adapter`);
  const targets = targetedModules(
    model.cfg,
    settings.targetModules,
    `${join(dir, ADAPTER_CONFIG_FILE)}: target_modules`,
  );
  const { tensors } = readSafetensorsFile(file);
  // PEFT also accepts names carrying the adapter name (`lora_A.default.weight`)
  const byName = new Map<string, StTensor>();
  for (const [n, t] of tensors) byName.set(n.replace(/\.lora_([AB])\.default\.weight$/, '.lora_$1.weight'), t);
  const pairs = new Map<string, Pair>();
  try {
    for (const { module, shape } of targets) {
      const [N, K] = shape;
      const get = (which: 'A' | 'B', want: number[]): Tensor => {
        const n = peftName(module, which);
        const t = byName.get(n);
        if (!t) throw new ModelLoadError(`${file}: tensor ${n} is missing (target_modules selects ${module})`);
        if (!sameShape(t.shape, want))
          throw new ModelLoadError(
            `${file}: tensor ${n} has shape [${t.shape}] but ${model.cfg.architecture} with r=${settings.r} needs [${want}]; the adapter was made for another base model`,
          );
        if (t.dtype !== 'F32' && t.dtype !== 'BF16' && t.dtype !== 'F16' && t.dtype !== 'F64')
          throw new ModelLoadError(`${file}: tensor ${n} has dtype ${t.dtype}; expected a float type`);
        byName.delete(n);
        return Tensor.fromArray(toFloat32(t), want).keep();
      };
      const A = get('A', [settings.r, K]);
      pairs.set(module, { A, B: get('B', [N, settings.r]) });
    }
    if (byName.size > 0) {
      const extra = [...byName.keys()];
      throw new ModelLoadError(
        `${file}: ${extra.length} tensor(s) match no module that target_modules selects on this ${model.cfg.architecture} (${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', ...' : ''}); the adapter was made for another base model, or its adapter_config.json does not describe its weights`,
      );
    }
  } catch (e) {
    for (const p of pairs.values()) {
      p.A.dispose();
      p.B.dispose();
    }
    throw e;
  }
  return attach(model, new LoraAdapter(settings, pairs), o.baseDtype ?? 'float32');
}

// ---------------------------------------------------------------------------------------------
// merging

/**
 * The base weights with every adapter folded in, W' = W + scale · B A (float32, on the backend),
 * by HF name: a plain model folder's tensors.
 */
export function mergedWeights(model: CausalLM): Map<string, HostTensor> {
  const lora = requireAdapter(model, 'mergedWeights');
  const out = model.toHost();
  noGrad(() =>
    tidy(() => {
      for (const [module, { A, B }] of lora.pairs) {
        const name = `${module}.weight`;
        const h = out.get(name)!;
        const [N, K] = h.shape as [number, number];
        const W = Tensor.fromArray(h.data, [N, K]);
        gemmInto(W, B, A, { M: N, N: K, K: lora.settings.r, alpha: lora.scale, beta: 1 }); // W += s·B A
        out.set(name, { shape: [N, K], data: W.toFloat32() });
        W.dispose();
      }
    }),
  );
  return out;
}

/** `gpg-rl merge-lora`: base folder + adapter folder → a full HF model folder at `outDir`. */
export function mergeLoraFolder(
  baseDir: string,
  adapterDir: string,
  outDir: string,
): { tensors: number; modules: number } {
  const model = CausalLM.load(baseDir);
  try {
    const lora = loadAdapter(model, adapterDir);
    const weights = mergedWeights(model);
    saveModelFolder(outDir, model.cfg, weights, {
      generation: readGenerationConfig(baseDir, model.cfg),
      tokenizerFrom: baseDir,
    });
    return { tensors: weights.size, modules: lora.pairs.size };
  } finally {
    model.dispose();
  }
}

/**
 * Overwrites the attached adapter's tensors with those of a PEFT adapter folder written for the
 * same settings (resume from a checkpoint); names and shapes must match exactly.
 */
export function loadAdapterWeights(model: CausalLM, dir: string): void {
  const lora = requireAdapter(model, 'loadAdapterWeights');
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(file)) throw new ModelLoadError(`${dir}: no ${ADAPTER_WEIGHTS_FILE}; not a LoRA checkpoint`);
  const host = new Map<string, HostTensor>();
  for (const [n, t] of readSafetensorsFile(file).tensors) host.set(n, { shape: t.shape.slice(), data: toFloat32(t) });
  lora.load(host, file);
}
