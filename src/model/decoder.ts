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
import { Tensor, tidy } from '../tensor/tensor.ts';
import { noGrad } from '../tensor/tape.ts';
import { linear } from '../tensor/ops/matmul.ts';
import { add } from '../tensor/ops/add.ts';
import { reshape } from '../tensor/ops/reshape.ts';
import { rmsnorm } from '../tensor/ops/rmsnorm.ts';
import { rope } from '../tensor/ops/rope.ts';
import { swiglu } from '../tensor/ops/swiglu.ts';
import { embedding } from '../tensor/ops/embedding.ts';
import { attention, attentionCached } from '../tensor/ops/attention.ts';
import { tokenLogprobs } from '../tensor/ops/logprobs.ts';
import { copyRows } from '../tensor/ops/copy.ts';
import { LAYER, parameterNames, readModelConfig, type ModelConfig } from './config.ts';
import { loadModelTensors } from './folder.ts';
import { ModelLoadError, TensorOpError } from '../errors.ts';

/** Per-layer key/value cache for decoding: [B, Tmax, Hkv, D] each, plus the key mask [B, Tmax]. */
export interface KVCache {
  B: number;
  Tmax: number;
  /** Number of positions filled so far (the same for every row; left padding is in the mask). */
  length: number;
  k: Tensor[];
  v: Tensor[];
  /** int32 [B, Tmax]: 1 where the cached position is a real token (uploaded from maskHost each step). */
  mask: Tensor;
  maskHost: Int32Array;
  /** Next RoPE position per row (count of real tokens so far). */
  nextPos: Int32Array;
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

  /** Host copies of every parameter, HF names (for saving / checkpoints). */
  toHost(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, p] of this.params) out.set(name, { shape: [...p.shape], data: p.toFloat32() });
    return out;
  }

  /**
   * The parameters the optimizer updates and checkpoints save, by HF name, in a stable (HF) order.
   * Today every parameter; with adapters (LoRA) only theirs.
   */
  trainableParameters(): Array<[string, Tensor]> {
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
    return linear(x, this.p(`${module}.weight`), this.pOpt(`${module}.bias`));
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
    for (const p of this.params.values()) {
      p.grad?.dispose();
      p.dispose();
    }
  }

  /**
   * One decoder layer over `x` [B, T, C]. With `cache`, keys/values of these T new tokens are
   * appended at cache.length and attention reads the cache (no gradient).
   */
  private layer(i: number, x: Tensor, pos: Tensor, mask: Tensor | null, cache: KVCache | null): Tensor {
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
    if (cache) {
      // append the new keys/values to the cache rows [length, length+T) of every batch item
      const row = Hkv * D;
      const at = {
        rows: B,
        cols: T * row,
        dstStride: cache.Tmax * row,
        srcStride: T * row,
        dstOff: cache.length * row,
      };
      copyRows(cache.k[i]!, k, at);
      copyRows(cache.v[i]!, v, at);
      a = attentionCached(q, cache.k[i]!, cache.v[i]!, cache.mask, cache.length + T);
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
  hidden(ids: Tensor, mask: Tensor, positions?: Tensor): Tensor {
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
    for (let i = 0; i < this.cfg.numLayers; i++) x = this.layer(i, x, pos, mask, null);
    return rmsnorm(x, this.p('model.norm.weight'), this.cfg.rmsNormEps);
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
   * expandRows). Only the selected rows go through the lm_head: they are gathered from the hidden
   * states with an embedding lookup, whose backward scatters the gradient back. The batch is
   * uploaded once; nothing is read back but what the caller reads.
   */
  tokenLogps(
    batch: TokenBatch,
    opts: { temperature?: number; select?: ArrayLike<number>; entropy?: boolean } = {},
  ): { logps: Tensor; entropy: Float32Array | null; index: Int32Array } {
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
    const h = this.hidden(ids, mask, pos);
    const C = this.cfg.hiddenSize;
    const hSel = embedding(reshape(h, [B * T, C]), Tensor.fromArray(Int32Array.from(rows), [rows.length], 'int32'));
    const { logps, entropy } = tokenLogprobs(
      hSel,
      this.lmHeadWeight(),
      Tensor.fromArray(Int32Array.from(targets), [targets.length], 'int32'),
      {
        temperature: opts.temperature ?? 1,
        entropy: !!opts.entropy,
      },
    );
    return { logps, entropy: entropy ? entropy.toFloat32() : null, index: Int32Array.from(index) };
  }

  // ------------------------------------------------------------------------------------------
  // decoding with a KV cache

  newCache(B: number, Tmax: number): KVCache {
    const c = this.cfg;
    const k: Tensor[] = [];
    const v: Tensor[] = [];
    for (let i = 0; i < c.numLayers; i++) {
      k.push(Tensor.zeros([B, Tmax, c.numKvHeads, c.headDim]).keep());
      v.push(Tensor.zeros([B, Tmax, c.numKvHeads, c.headDim]).keep());
    }
    const mask = Tensor.zeros([B, Tmax], 'int32').keep();
    return { B, Tmax, length: 0, k, v, mask, maskHost: new Int32Array(B * Tmax), nextPos: new Int32Array(B) };
  }

  /**
   * Feeds T new tokens per row (ids int32 host [B*T], newMask host [B*T]) through the model with
   * the cache; returns the final-position logits [B, V] as a tensor on the model's backend (the
   * caller disposes it; sampling reads them there). No gradient.
   */
  decodeStep(cache: KVCache, ids: Int32Array, newMask: Int32Array, T: number): Tensor {
    const B = cache.B;
    if (cache.length + T > cache.Tmax)
      throw new TensorOpError('decodeStep', `cache of ${cache.Tmax} positions is full (${cache.length} + ${T})`);
    return noGrad(() =>
      tidy(() => {
        const pos = new Int32Array(B * T);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < T; t++) {
            // position = (real tokens so far incl. this one) - 1, clamped at 0 (DESIGN §4)
            const m = newMask[b * T + t]!;
            cache.maskHost[b * cache.Tmax + cache.length + t] = m;
            if (m) cache.nextPos[b] = cache.nextPos[b]! + 1;
            pos[b * T + t] = Math.max(cache.nextPos[b]! - 1, 0);
          }
        }
        cache.mask.write(cache.maskHost);
        const idsT = Tensor.fromArray(ids, [B, T], 'int32');
        const posT = Tensor.fromArray(pos, [B, T], 'int32');
        let x = embedding(this.p('model.embed_tokens.weight'), idsT);
        for (let i = 0; i < this.cfg.numLayers; i++) {
          // one scope per layer: nothing is recorded for backward, so a layer's intermediates go
          // when it returns (a prefill of B·T tokens keeps one layer's, not all of them)
          const prev = x;
          x = tidy(() => this.layer(i, prev, posT, null, cache));
          prev.dispose();
        }
        cache.length += T;
        // last position of each row only
        const C = this.cfg.hiddenSize;
        const last = Tensor.empty([B, C]);
        copyRows(last, x, { rows: B, cols: C, dstStride: C, srcStride: T * C, srcOff: (T - 1) * C });
        const hN = rmsnorm(last, this.p('model.norm.weight'), this.cfg.rmsNormEps);
        return linear(hN, this.lmHeadWeight());
      }),
    );
  }

  disposeCache(cache: KVCache): void {
    for (const t of [...cache.k, ...cache.v, cache.mask]) t.dispose();
  }
}

/** Spreads compact per-row values into a dense [B*(T-1)] host array (0 where not selected). */
export function expandRows(values: ArrayLike<number>, index: Int32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < index.length; i++) out[index[i]!] = values[i]!;
  return out;
}
