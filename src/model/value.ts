/**
 * @module model/value
 * A value model: a decoder backbone with a scalar head on every position, in Hugging Face's
 * `…ForTokenClassification` layout with `num_labels = 1` (transformers' `GenericForTokenClassification`:
 * `model.*` is the backbone, `Qwen2Model` / `LlamaModel` / `Qwen3Model`, and `score` an
 * `nn.Linear(hidden, 1)` with bias). The critic of PPO (InstructGPT; TRL's PPOTrainer; verl's
 * critic, which is this very class) reads it as
 *
 *   h = backbone(ids, mask)                # [B, T, C], after the final norm (no lm_head)
 *   V[b, t-1] = score.weight · h[b, t-1] + score.bias   # the value of the state before token t
 *
 * so values line up with token log-probs (lp[b, t-1] = log p(ids[t] | ids[<t]), DESIGN §4).
 * transformers applies dropout to h before the head (hidden_dropout, 0.1 unless configured) in
 * train mode; like TRL (which disables dropout in PPO) we never do.
 *
 * Loads from a `…ForTokenClassification` folder, a `…ForSequenceClassification` folder (a reward
 * model, TRL's usual value_model_path: the same `score.weight` [1, C], no bias) or a `…ForCausalLM`
 * folder (the head is initialised as transformers does: normal(0, initializer_range), bias 0); saves
 * `…ForTokenClassification` folders that `AutoModelForTokenClassification.from_pretrained` loads.
 */
import { existsSync, readFileSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../tensor/tensor.ts';
import { linear } from '../tensor/ops/matmul.ts';
import { reshape } from '../tensor/ops/reshape.ts';
import { embedding } from '../tensor/ops/embedding.ts';
import { CausalLM, positionIds, type TokenBatch } from './decoder.ts';
import { modelConfigToJson, parameterNames, parseModelConfig, type ModelConfig } from './config.ts';
import { loadModelTensors, tensorSource, TOKENIZER_FILES, type HostTensor } from './folder.ts';
import { writeSafetensorsFile, type StSource } from './safetensors.ts';
import { fillNormal, makeRng } from './init.ts';
import { replaceDirAtomic, writeFileAtomic } from '../io/atomic.ts';
import { ModelLoadError, TensorOpError } from '../errors.ts';

export const SCORE_WEIGHT = 'score.weight';
export const SCORE_BIAS = 'score.bias';

/** `Qwen2ForCausalLM` → `Qwen2ForTokenClassification` (and back, for the backbone's config). */
const HEADS = ['ForTokenClassification', 'ForSequenceClassification', 'ForCausalLM'] as const;

function splitArch(a: string): { base: string; head: (typeof HEADS)[number] } | null {
  for (const h of HEADS) if (a.endsWith(h)) return { base: a.slice(0, -h.length), head: h };
  return null;
}

/** The backbone's config: the folder's config read as the causal LM of the same family, with no lm_head. */
function backboneConfig(json: Record<string, unknown>, source: string): { cfg: ModelConfig; head: string } {
  const archs = json['architectures'];
  const a = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : null;
  const split = a ? splitArch(a) : null;
  if (a && !split)
    throw new ModelLoadError(
      `${source}: architecture "${a}" is not a value model (expected …ForTokenClassification, …ForSequenceClassification or …ForCausalLM)`,
    );
  const head = split?.head ?? 'ForCausalLM';
  const asCausal = { ...json, architectures: split ? [`${split.base}ForCausalLM`] : archs };
  const cfg = parseModelConfig(asCausal, source);
  if (head !== 'ForCausalLM') {
    const labels = json['num_labels'] ?? (isObj(json['id2label']) ? Object.keys(json['id2label']).length : undefined);
    if (labels !== undefined && labels !== 1)
      throw new ModelLoadError(
        `${source}: a value model has one output (num_labels 1), this ${a} has ${JSON.stringify(labels)}`,
      );
  }
  // the backbone never uses an lm_head: read as tied, an untied folder's lm_head.weight is ignored
  return { cfg: { ...cfg, tieWordEmbeddings: true }, head };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class ValueModel {
  /** The decoder without lm_head (its config reads as tied, so no lm_head parameter exists). */
  readonly backbone: CausalLM;
  /** [1, C] and [1]. */
  readonly score: Tensor;
  readonly scoreBias: Tensor;
  /** The architecture written to config.json (`Qwen2ForTokenClassification`, …). */
  readonly architecture: string;
  /** Whether the policy the backbone came from ties its embeddings (recorded in config.json). */
  private readonly tied: boolean;

  private constructor(backbone: CausalLM, score: Tensor, scoreBias: Tensor, tied: boolean) {
    this.backbone = backbone;
    this.score = score;
    this.scoreBias = scoreBias;
    this.tied = tied;
    score.name = SCORE_WEIGHT;
    scoreBias.name = SCORE_BIAS;
    const split = splitArch(backbone.cfg.architecture)!;
    this.architecture = `${split.base}ForTokenClassification`;
  }

  /**
   * A value model from the policy's weights (copied): the backbone is the policy's decoder, the
   * head is new, normal(0, initializer_range) with bias 0 (transformers' `_init_weights`), seeded.
   */
  static fromPolicy(policy: CausalLM, seed: number): ValueModel {
    const cfg = { ...policy.cfg, tieWordEmbeddings: true };
    const host = new Map<string, HostTensor>();
    for (const { name } of parameterNames(cfg)) {
      const p = policy.params.get(name)!;
      host.set(name, { shape: [...p.shape], data: p.toFloat32() });
    }
    return ValueModel.build(cfg, host, null, seed, policy.cfg.tieWordEmbeddings);
  }

  /** Loads a `…ForTokenClassification`, `…ForSequenceClassification` or `…ForCausalLM` folder. */
  static load(dir: string, seed = 0): ValueModel {
    const path = join(dir, 'config.json');
    if (!existsSync(path)) throw new ModelLoadError(`${dir}: no config.json (value_model_path must be a model folder)`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new ModelLoadError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (!isObj(json)) throw new ModelLoadError(`${path}: must be a JSON object`);
    const { cfg, head } = backboneConfig(json, path);
    const C = cfg.hiddenSize;
    const tensors = loadModelTensors(dir, cfg, {
      optional: head === 'ForCausalLM' ? {} : { [SCORE_WEIGHT]: [1, C], [SCORE_BIAS]: [1] },
    });
    if (head !== 'ForCausalLM' && !tensors.has(SCORE_WEIGHT))
      throw new ModelLoadError(`${dir}: ${String((json.architectures as string[])[0])} folder has no ${SCORE_WEIGHT}`);
    const tied = json['tie_word_embeddings'] !== false;
    return ValueModel.build(cfg, tensors, tensors.has(SCORE_WEIGHT) ? tensors : null, seed, tied);
  }

  private static build(
    cfg: ModelConfig,
    backbone: Map<string, HostTensor>,
    head: Map<string, HostTensor> | null,
    seed: number,
    tied: boolean,
  ): ValueModel {
    const C = cfg.hiddenSize;
    let w = head?.get(SCORE_WEIGHT)?.data;
    let b = head?.get(SCORE_BIAS)?.data;
    if (!w) {
      w = new Float32Array(C);
      const std = typeof cfg.raw['initializer_range'] === 'number' ? cfg.raw['initializer_range'] : 0.02;
      fillNormal(w, std, makeRng(seed));
    }
    b ??= new Float32Array(1); // ForSequenceClassification heads have no bias: 0
    return new ValueModel(
      CausalLM.fromHost(cfg, backbone),
      Tensor.fromArray(w, [1, C]).keep(),
      Tensor.fromArray(b, [1]).keep(),
      tied,
    );
  }

  get cfg(): ModelConfig {
    return this.backbone.cfg;
  }

  /** Every parameter by HF name (backbone in HF order, then the head), as the optimizer and checkpoints see them. */
  trainableParameters(): Array<[string, Tensor]> {
    return [...this.backbone.trainableParameters(), [SCORE_WEIGHT, this.score], [SCORE_BIAS, this.scoreBias]];
  }

  parameters(): Tensor[] {
    return this.trainableParameters().map(([, t]) => t);
  }

  setRequiresGrad(on: boolean): void {
    for (const [, p] of this.trainableParameters()) p.requiresGrad = on;
  }

  numParameters(): number {
    return this.backbone.numParameters() + this.score.size + this.scoreBias.size;
  }

  /**
   * Values at the positions selected by `select` (a host mask over [B, T-1], as tokenLogps): the
   * compact values [N] (with gradient to the parameters) and each one's flat index in [B, T-1].
   * Only the selected hidden rows go through the head.
   */
  values(
    batch: TokenBatch,
    opts: { select?: ArrayLike<number>; checkpoint?: boolean } = {},
  ): { values: Tensor; index: Int32Array } {
    const { ids: idsH, mask: maskH, B, T } = batch;
    if (idsH.length !== B * T || maskH.length !== B * T)
      throw new TensorOpError(
        'ValueModel.values',
        `ids (${idsH.length}) and mask (${maskH.length}) must hold B·T = ${B}·${T} values`,
      );
    if (opts.select && opts.select.length !== B * Math.max(0, T - 1))
      throw new TensorOpError(
        'ValueModel.values',
        `select has ${opts.select.length} entries, expected B·(T−1) = ${B * Math.max(0, T - 1)}`,
      );
    const rows: number[] = [];
    const index: number[] = [];
    for (let b = 0; b < B; b++)
      for (let t = 1; t < T; t++) {
        const j = b * (T - 1) + (t - 1);
        const sel = opts.select ? opts.select[j]! !== 0 : maskH[b * T + t]! !== 0 && maskH[b * T + t - 1]! !== 0;
        if (!sel) continue;
        rows.push(b * T + t - 1);
        index.push(j);
      }
    const h = this.backbone.hidden(
      Tensor.fromArray(idsH, [B, T], 'int32'),
      Tensor.fromArray(maskH, [B, T], 'int32'),
      Tensor.fromArray(positionIds(maskH, B, T), [B, T], 'int32'),
      { checkpoint: opts.checkpoint },
    );
    const C = this.cfg.hiddenSize;
    const hSel = embedding(reshape(h, [B * T, C]), Tensor.fromArray(Int32Array.from(rows), [rows.length], 'int32'));
    const v = linear(hSel, this.score, this.scoreBias); // [N, 1]
    return { values: reshape(v, [rows.length]), index: Int32Array.from(index) };
  }

  /** Host copies of every parameter by HF name. */
  toHost(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [name, p] of this.trainableParameters()) out.set(name, { shape: [...p.shape], data: p.toFloat32() });
    return out;
  }

  /** config.json of the `…ForTokenClassification` folder (transformers 4 and 5 load it). */
  configJson(): Record<string, unknown> {
    const out = modelConfigToJson(this.cfg);
    out['architectures'] = [this.architecture];
    out['tie_word_embeddings'] = this.tied;
    out['num_labels'] = 1;
    out['id2label'] = { '0': 'LABEL_0' };
    out['label2id'] = { LABEL_0: 0 };
    return out;
  }

  /**
   * Writes an HF `…ForTokenClassification` folder at `dir` (atomically: staged, then swapped in):
   * config.json, model.safetensors (F32), tokenizer files copied from `tokenizerFrom`, `extraFiles`.
   */
  save(dir: string, opts: { tokenizerFrom?: string; extraFiles?: Record<string, string> } = {}): void {
    replaceDirAtomic(dir, (stage) => this.writeInto(stage, opts));
  }

  /** save() into an existing (staging) folder. */
  writeInto(stage: string, opts: { tokenizerFrom?: string; extraFiles?: Record<string, string> } = {}): void {
    // streamed from the backend a piece at a time (no host copy of the model)
    const tensors = new Map<string, StSource>();
    for (const [name, p] of this.trainableParameters()) tensors.set(name, tensorSource(p));
    writeSafetensorsFile(join(stage, 'model.safetensors'), tensors, { format: 'pt' });
    writeFileAtomic(join(stage, 'config.json'), JSON.stringify(this.configJson(), null, 2) + '\n');
    if (opts.tokenizerFrom)
      for (const f of TOKENIZER_FILES) {
        const src = join(opts.tokenizerFrom, f);
        if (existsSync(src) && statSync(src).isFile()) copyFileSync(src, join(stage, f));
      }
    for (const [f, text] of Object.entries(opts.extraFiles ?? {})) writeFileAtomic(join(stage, f), text);
  }

  /** Copies another value model's weights into this one (same shapes). */
  copyFrom(other: ValueModel): void {
    const src = new Map(other.trainableParameters());
    for (const [name, p] of this.trainableParameters()) {
      const s = src.get(name);
      if (!s) throw new ModelLoadError(`value model has no tensor ${name}`);
      p.copyFrom(s);
    }
  }

  dispose(): void {
    this.backbone.dispose();
    this.score.grad?.dispose();
    this.score.dispose();
    this.scoreBias.grad?.dispose();
    this.scoreBias.dispose();
  }
}
