/**
 * @module model/decoder
 * The whole decoder-only transformer in one file (nanoGPT style): Qwen2 (q/k/v biases), Llama,
 * and Qwen3 (per-head q_norm/k_norm, explicit head_dim), tied or untied embeddings, with the math
 * of Hugging Face transformers' `modeling_qwen2.py` / `modeling_llama.py` / `modeling_qwen3.py`:
 *
 *   x = embed_tokens[ids]                                   # [B, T, C]
 *   for each layer:
 *     h = input_layernorm(x)
 *     q, k, v = q_proj(h), k_proj(h), v_proj(h)            # [B, T, H|Hkv, D]
 *     q, k = q_norm(q), k_norm(k)                           # Qwen3 only, per head over D
 *     q, k = rope(q, pos), rope(k, pos)                     # rotate-half, pos = max(cumsum(mask)-1, 0)
 *     x = x + o_proj(attention(q, k, v, mask))              # causal GQA, padded keys never attended
 *     x = x + down_proj(silu(gate_proj(h')) * up_proj(h'))  # h' = post_attention_layernorm(x)
 *   logits = lm_head(norm(x))                               # lm_head = embed_tokens when tied
 *
 * Parameters keep their HF names (`model.layers.0.self_attn.q_proj.weight`, ...), so loading and
 * saving are name-for-name. Shapes: B batch, T tokens, C hidden, H heads, Hkv kv heads, D head dim,
 * I intermediate, V vocab.
 */
import { countForward } from '../tensor/passes.ts';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { checkpoint, noGrad } from '../tensor/tape.ts';
import { linear } from '../tensor/ops/matmul.ts';
import { add } from '../tensor/ops/add.ts';
import { reshape } from '../tensor/ops/reshape.ts';
import { rmsnorm } from '../tensor/ops/rmsnorm.ts';
import { rope } from '../tensor/ops/rope.ts';
import { swiglu } from '../tensor/ops/swiglu.ts';
import { embedding } from '../tensor/ops/embedding.ts';
import { attention } from '../tensor/ops/attention.ts';
import { pagedAttention, pagedKvWrite } from '../tensor/ops/paged.ts';
import { tokenLogprobs } from '../tensor/ops/logprobs.ts';
import { copyRows } from '../tensor/ops/copy.ts';
import { LAYER, parameterNames, readModelConfig, type ModelConfig } from './config.ts';
import { loadModelTensors, streamed, type StreamedTensor } from './folder.ts';
import { ModelLoadError, TensorOpError } from '../errors.ts';
import type { LoraAdapter } from './lora.ts';

/**
 * The paged KV cache of the rollout engine (src/generate/engine.ts owns the block bookkeeping): per
 * layer one key pool and one value pool [numBlocks · blockSize, Hkv, D]. A sequence's block table
 * maps its positions to blocks; sequences of one group share the prompt's blocks.
 */
export interface PagedKV {
  blockSize: number;
  numBlocks: number;
  k: Tensor[];
  v: Tensor[];
}

/**
 * One engine step on the host: B rows of T new tokens each (T = the prompt at prefill, 1 when
 * decoding). Row b's tokens sit at positions pos, are written to `slots`, and attend the row's
 * ctx[b] keys (its earlier tokens and these) through its block table row.
 */
export interface PagedStep {
  ids: Int32Array; // [B·T]
  pos: Int32Array; // [B·T] RoPE positions
  slots: Int32Array; // [B·T] pool slot of each new token's key/value
  table: Int32Array; // [B·maxBlocks]
  ctx: Int32Array; // [B] keys per row after this step
  B: number;
  T: number;
  maxBlocks: number;
}

/** Uploaded per step; shared by every layer. */
interface PagedLayerArgs {
  cache: PagedKV;
  slots: Tensor;
  table: Tensor;
  ctx: Tensor;
}

/** A token batch on the host (packBatch's output fits): ids and attention mask, int32 [B, T] row-major. */
export interface TokenBatch {
  ids: Int32Array;
  mask: Int32Array;
  B: number;
  T: number;
}

/** Position ids that count only real tokens: max(cumsum(mask) - 1, 0) (DESIGN §4). */
export function positionIds(mask: Int32Array, B: number, T: number): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) {
      c += mask[b * T + t]! ? 1 : 0;
      pos[b * T + t] = Math.max(c - 1, 0);
    }
  }
  return pos;
}

export class CausalLM {
  readonly cfg: ModelConfig;
  /** HF name → parameter tensor (float32, master weights). */
  readonly params: Map<string, Tensor>;
  /**
   * Activation checkpointing per decoder layer (HF `gradient_checkpointing_enable()`, TRL's
   * `gradient_checkpointing`): while gradients are recorded each layer keeps only its input, and
   * its activations are recomputed in backward (one more forward per layer; gradients unchanged).
   * `hidden()` / `tokenLogps()` take `{ checkpoint }` to override it per call.
   */
  gradientCheckpointing = false;
  /** LoRA adapters (model/lora.ts applyLora / loadAdapter): when set, the only trainable tensors. */
  lora: LoraAdapter | null = null;

  constructor(cfg: ModelConfig, params: Map<string, Tensor>) {
    this.cfg = cfg;
    this.params = params;
    for (const { name, shape } of parameterNames(cfg)) {
      const p = params.get(name);
      if (!p) throw new ModelLoadError(`model is missing tensor ${name}`);
      if (p.shape.length !== shape.length || p.shape.some((d, i) => d !== shape[i])) {
        throw new ModelLoadError(`tensor ${name} has shape [${p.shape}], config expects [${shape}]`);
      }
      p.name = name;
    }
  }

  /** Builds the model from host arrays (as returned by loadModelTensors / initModel). */
  static fromHost(cfg: ModelConfig, tensors: Map<string, { shape: number[]; data: Float32Array }>): CausalLM {
    const params = new Map<string, Tensor>();
    for (const { name } of parameterNames(cfg)) {
      const t = tensors.get(name);
      if (!t) throw new ModelLoadError(`model is missing tensor ${name}`);
      params.set(name, Tensor.fromArray(t.data, t.shape).keep());
    }
    return new CausalLM(cfg, params);
  }

  /** Loads a Hugging Face model folder (config.json + safetensors). */
  static load(dir: string): CausalLM {
    const cfg = readModelConfig(dir);
    return CausalLM.fromHost(cfg, loadModelTensors(dir, cfg));
  }

  /** A copy of the weights on the same backend (no host copy; the frozen reference model). */
  clone(): CausalLM {
    const params = new Map<string, Tensor>();
    for (const [name, p] of this.params) params.set(name, p.clone().keep());
    return new CausalLM(this.cfg, params);
  }

  /** Host copies of every parameter, HF names (for saving / checkpoints). */
  toHost(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, p] of this.params) out.set(name, { shape: [...p.shape], data: p.toFloat32() });
    return out;
  }

  /** Every parameter by HF name, read from its backend buffer a piece at a time when saved (no host copy). */
  streamed(): Map<string, StreamedTensor> {
    const out = new Map<string, StreamedTensor>();
    for (const [name, p] of this.params) out.set(name, streamed(p));
    return out;
  }

  /**
   * The parameters the optimizer updates and checkpoints save, by HF name, in a stable (HF) order.
   * Every parameter; with adapters (LoRA) only theirs, by PEFT name.
   */
  trainableParameters(): Array<[string, Tensor]> {
    if (this.lora) return this.lora.parameters();
    return parameterNames(this.cfg).map(({ name }) => [name, this.params.get(name)!]);
  }

  /** The trainable parameter tensors (trainableParameters() without the names). */
  parameters(): Tensor[] {
    return this.trainableParameters().map(([, t]) => t);
  }

  /** Turns gradient recording on or off for the trainable parameters. */
  setRequiresGrad(on: boolean): void {
    for (const [, p] of this.trainableParameters()) p.requiresGrad = on;
  }

  /**
   * The one projection every linear layer runs through: y = x @ W^T (+ b) for the HF module
   * `module` (e.g. `model.layers.0.self_attn.q_proj`). Adapters attach here.
   */
  project(module: string, x: Tensor): Tensor {
    const W = this.p(`${module}.weight`);
    const b = this.pOpt(`${module}.bias`);
    return this.lora?.project(module, x, W, b) ?? linear(x, W, b);
  }

  numParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  private p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new ModelLoadError(`model has no parameter ${name}`);
    return t;
  }

  private pOpt(name: string): Tensor | null {
    return this.params.get(name) ?? null;
  }

  /** The output projection: lm_head.weight, or embed_tokens.weight when tied. [V, C] */
  lmHeadWeight(): Tensor {
    return this.cfg.tieWordEmbeddings ? this.p('model.embed_tokens.weight') : this.p('lm_head.weight');
  }

  dispose(): void {
    this.lora?.dispose();
    this.lora = null;
    for (const p of this.params.values()) {
      p.grad?.dispose();
      p.dispose();
    }
  }

  /**
   * One decoder layer over `x` [B, T, C]. With `paged`, keys/values of these T new tokens are
   * written to their pool slots and attention reads each row's paged keys (no gradient).
   */
  private layer(i: number, x: Tensor, pos: Tensor, mask: Tensor | null, paged: PagedLayerArgs | null): Tensor {
    const c = this.cfg;
    const [B, T] = x.shape as [number, number, number];
    const H = c.numHeads,
      Hkv = c.numKvHeads,
      D = c.headDim;
    const pre = `model.layers.${i}.`;
    const h = rmsnorm(x, this.p(`${pre}${LAYER.inputNorm}.weight`), c.rmsNormEps);
    let q = reshape(this.project(pre + LAYER.q, h), [B, T, H, D]);
    let k = reshape(this.project(pre + LAYER.k, h), [B, T, Hkv, D]);
    const v = reshape(this.project(pre + LAYER.v, h), [B, T, Hkv, D]);
    if (c.qkNorm) {
      q = rmsnorm(q, this.p(`${pre}${LAYER.qNorm}.weight`), c.rmsNormEps);
      k = rmsnorm(k, this.p(`${pre}${LAYER.kNorm}.weight`), c.rmsNormEps);
    }
    q = rope(q, pos, c.ropeTheta);
    k = rope(k, pos, c.ropeTheta);
    let a: Tensor;
    if (paged) {
      const { cache } = paged;
      pagedKvWrite(cache.k[i]!, cache.v[i]!, k, v, paged.slots);
      a = pagedAttention(q, cache.k[i]!, cache.v[i]!, paged.table, paged.ctx, cache.blockSize);
    } else {
      a = attention(q, k, v, mask);
    }
    x = add(x, this.project(pre + LAYER.o, reshape(a, [B, T, H * D])));
    const h2 = rmsnorm(x, this.p(`${pre}${LAYER.postNorm}.weight`), c.rmsNormEps);
    const g = this.project(pre + LAYER.gate, h2);
    const u = this.project(pre + LAYER.up, h2);
    return add(x, this.project(pre + LAYER.down, swiglu(g, u)));
  }

  /**
   * Final hidden states (after the last norm), [B, T, C].
   * ids, mask: int32 [B, T]; positions default to max(cumsum(mask)-1, 0).
   */
  hidden(ids: Tensor, mask: Tensor, positions?: Tensor, opts: { checkpoint?: boolean } = {}): Tensor {
    // (without `positions` the mask is read back to compute them; tokenLogps passes them from the host batch)
    if (
      ids.dtype !== 'int32' ||
      mask.dtype !== 'int32' ||
      ids.shape.length !== 2 ||
      mask.shape.length !== 2 ||
      ids.shape[0] !== mask.shape[0] ||
      ids.shape[1] !== mask.shape[1]
    ) {
      throw new TensorOpError(
        'CausalLM.hidden',
        `input_ids ${ids.dtype} [${ids.shape}] and attention_mask ${mask.dtype} [${mask.shape}] must both be int32 [B, T]`,
      );
    }
    const [B, T] = ids.shape as [number, number];
    const pos = positions ?? Tensor.fromArray(positionIds(mask.toArray() as Int32Array, B, T), [B, T], 'int32');
    let x = embedding(this.p('model.embed_tokens.weight'), ids);
    const ckpt = opts.checkpoint ?? this.gradientCheckpointing;
    for (let i = 0; i < this.cfg.numLayers; i++)
      x = ckpt ? checkpoint((xi) => this.layer(i, xi, pos, mask, null), [x]) : this.layer(i, x, pos, mask, null);
    const out = rmsnorm(x, this.p('model.norm.weight'), this.cfg.rmsNormEps);
    countForward(B, out.requiresGrad);
    return out;
  }

  /** Full logits [B, T, V] (tests, small batches; training uses tokenLogps, which never stores them). */
  logits(ids: Tensor, mask: Tensor, positions?: Tensor): Tensor {
    return linear(this.hidden(ids, mask, positions), this.lmHeadWeight());
  }

  /**
   * Token log-probs log_softmax(logits[t-1] / temperature)[ids[t]] (DESIGN §4) of a host token
   * batch, for the positions selected by `select` (a host mask over [B, T-1]; default: where
   * target and context are both real). Returns the compact log-probs [N] of the selected positions
   * (gradient flows to the parameters) and `index`, each one's flat position in [B, T-1] (see
   * expandRows). `checkpoint` overrides `gradientCheckpointing` for this call. Only the selected rows go through the lm_head: they are gathered from the hidden
   * states with an embedding lookup, whose backward scatters the gradient back. The batch is
   * uploaded once; nothing is read back but what the caller reads.
   */
  tokenLogps(
    batch: TokenBatch,
    opts: { temperature?: number; select?: ArrayLike<number>; entropy?: boolean; checkpoint?: boolean } = {},
  ): { logps: Tensor; entropy: Float32Array | null; index: Int32Array } {
    const { h, targets, index } = this.selectedHidden(batch, opts);
    const { logps, entropy } = tokenLogprobs(h, this.lmHeadWeight(), targets, {
      temperature: opts.temperature ?? 1,
      entropy: !!opts.entropy,
    });
    return { logps, entropy: entropy ? entropy.toFloat32() : null, index };
  }

  /**
   * The final hidden states [N, C] of the positions tokenLogps selects (the context of each
   * target token; same `select` rule), the targets int32 [N] and each one's flat position in
   * [B, T-1]. The logits of those tokens are `h @ lmHeadWeight()ᵀ` (TRPO's KL and Fisher-vector
   * products need them explicitly, src/rl/update.ts). Gradient flows to the parameters.
   */
  selectedHidden(
    batch: TokenBatch,
    opts: { select?: ArrayLike<number>; checkpoint?: boolean } = {},
  ): { h: Tensor; targets: Tensor; index: Int32Array } {
    const { ids: idsH, mask: maskH, B, T } = batch;
    if (idsH.length !== B * T || maskH.length !== B * T)
      throw new TensorOpError(
        'CausalLM.tokenLogps',
        `ids (${idsH.length}) and mask (${maskH.length}) must hold B·T = ${B}·${T} values`,
      );
    if (opts.select && opts.select.length !== B * Math.max(0, T - 1))
      throw new TensorOpError(
        'CausalLM.tokenLogps',
        `select has ${opts.select.length} entries, expected B·(T−1) = ${B * Math.max(0, T - 1)}`,
      );
    const rows: number[] = [];
    const targets: number[] = [];
    const index: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 1; t < T; t++) {
        const j = b * (T - 1) + (t - 1);
        const sel = opts.select ? opts.select[j]! !== 0 : maskH[b * T + t]! !== 0 && maskH[b * T + t - 1]! !== 0;
        if (!sel) continue;
        rows.push(b * T + t - 1);
        targets.push(idsH[b * T + t]!);
        index.push(j);
      }
    }
    const ids = Tensor.fromArray(idsH, [B, T], 'int32');
    const mask = Tensor.fromArray(maskH, [B, T], 'int32');
    const pos = Tensor.fromArray(positionIds(maskH, B, T), [B, T], 'int32');
    const h = this.hidden(ids, mask, pos, { checkpoint: opts.checkpoint });
    const C = this.cfg.hiddenSize;
    const hSel = embedding(reshape(h, [B * T, C]), Tensor.fromArray(Int32Array.from(rows), [rows.length], 'int32'));
    return {
      h: hSel,
      targets: Tensor.fromArray(Int32Array.from(targets), [targets.length], 'int32'),
      index: Int32Array.from(index),
    };
  }

  // ------------------------------------------------------------------------------------------
  // decoding with the paged KV cache (src/generate/engine.ts schedules the steps)

  /** Key and value pools of numBlocks blocks of blockSize positions for every layer. */
  newPagedCache(numBlocks: number, blockSize: number): PagedKV {
    const c = this.cfg;
    const k: Tensor[] = [];
    const v: Tensor[] = [];
    try {
      for (let i = 0; i < c.numLayers; i++) {
        k.push(Tensor.empty([numBlocks * blockSize, c.numKvHeads, c.headDim]).keep());
        v.push(Tensor.empty([numBlocks * blockSize, c.numKvHeads, c.headDim]).keep());
      }
    } catch (e) {
      for (const t of [...k, ...v]) t.dispose();
      throw e;
    }
    return { blockSize, numBlocks, k, v };
  }

  /** Bytes of KV cache per block (all layers, keys and values). */
  kvBytesPerBlock(blockSize: number): number {
    const c = this.cfg;
    return 2 * c.numLayers * blockSize * c.numKvHeads * c.headDim * 4;
  }

  disposePagedCache(cache: PagedKV): void {
    for (const t of [...cache.k, ...cache.v]) t.dispose();
  }

  /**
   * Feeds one engine step (B rows × T new tokens, see PagedStep) through the model with the paged
   * cache and returns the logits of each row's last position, [B, V], on the model's backend (the
   * caller disposes them). Only those B rows go through the lm_head — never [B, T, V]. No gradient.
   */
  pagedStep(cache: PagedKV, st: PagedStep): Tensor {
    const { B, T } = st;
    if (st.ids.length !== B * T || st.pos.length !== B * T || st.slots.length !== B * T || st.ctx.length !== B)
      throw new TensorOpError('pagedStep', `ids/pos/slots must hold B·T = ${B}·${T} values and ctx ${B}`);
    return noGrad(() =>
      tidy(() => {
        const paged: PagedLayerArgs = {
          cache,
          slots: Tensor.fromArray(st.slots, [B * T], 'int32'),
          table: Tensor.fromArray(st.table, [B, st.maxBlocks], 'int32'),
          ctx: Tensor.fromArray(st.ctx, [B], 'int32'),
        };
        const posT = Tensor.fromArray(st.pos, [B, T], 'int32');
        let x = embedding(this.p('model.embed_tokens.weight'), Tensor.fromArray(st.ids, [B, T], 'int32'));
        for (let i = 0; i < this.cfg.numLayers; i++) {
          // one scope per layer: nothing is recorded for backward, so a layer's intermediates go
          // when it returns (a prefill of T tokens keeps one layer's, not all of them)
          const prev = x;
          x = tidy(() => this.layer(i, prev, posT, null, paged));
          prev.dispose();
        }
        const C = this.cfg.hiddenSize;
        let last = x;
        if (T > 1) {
          last = Tensor.empty([B, C]);
          copyRows(last, x, { rows: B, cols: C, dstStride: C, srcStride: T * C, srcOff: (T - 1) * C });
        }
        const hN = rmsnorm(reshape(last, [B, C]), this.p('model.norm.weight'), this.cfg.rmsNormEps);
        return linear(hN, this.lmHeadWeight());
      }),
    );
  }
}

/** Spreads compact per-row values into a dense [B*(T-1)] host array (0 where not selected). */
export function expandRows(values: ArrayLike<number>, index: Int32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < index.length; i++) out[index[i]!] = values[i]!;
  return out;
}
