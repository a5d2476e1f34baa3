/**
 * @module generate/generate
 * Batched sampling with a KV cache for left-padded prompt batches: temperature, top-k, top-p or
 * greedy; max new tokens; stops on eos ids and on stop strings; returns token ids, the sampling
 * policy's per-token log-probs (log_softmax(logits / T) over the full vocabulary, DESIGN §4) and,
 * with a decoder, the text. Randomness comes from a seeded Rng, so a run is reproducible and a
 * resumed run continues the same stream.
 *
 * Logits, the KV cache and sampling stay on the model's backend: per step only the B sampled ids
 * are read back (to decide eos / stop strings); their log-probs are gathered into a [B, N]
 * tensor read once at the end.
 */
import { Tensor, tidy } from '../tensor/tensor.ts';
import { sampleTokens } from '../tensor/ops/sample.ts';
import { copyRows } from '../tensor/ops/copy.ts';
import type { CausalLM } from '../model/decoder.ts';
import type { Rng } from '../data/rng.ts';
import { GpgRlError } from '../errors.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Sampling temperature (> 0); ignored when greedy. */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables. */
  topP?: number;
  /** Keep only the k most likely tokens; 0 disables. */
  topK?: number;
  greedy?: boolean;
  eosTokenIds: number[];
  padTokenId: number;
  /** Generation ends once the decoded completion contains one of these (kept in the output). */
  stopStrings?: string[];
  /** Token ids -> text; needed for stop strings and `texts`. */
  decode?: (ids: number[]) => string;
  /** Source of uniforms for sampling (required unless greedy). */
  rng?: Rng;
  /** Sequences per forward pass (memory bound); default all. */
  batchSize?: number;
  /** Called after every decoding step with the number of new tokens produced in that step. */
  onStep?: (newTokens: number) => void;
}

export interface GenerateResult {
  /** Generated ids per sequence (eos included when produced; no padding). */
  tokens: number[][];
  /** log_softmax(logits / T)[token] per generated token. */
  logps: number[][];
  /** True when the sequence ended with eos or a stop string; false when cut at maxNewTokens. */
  finished: boolean[];
  texts: string[] | null;
}

/** Generates completions for `prompts` (token ids, unpadded). */
/**
 * A warning when prompt + completion can run past the model's trained positions
 * (max_position_embeddings): RoPE still computes them, but the model has never seen such
 * positions and its output degrades. null when everything fits.
 */
export function positionWarning(maxPositions: number, promptTokens: number, maxNewTokens: number): string | null {
  const total = promptTokens + maxNewTokens;
  if (total <= maxPositions) return null;
  const what =
    promptTokens > 0
      ? `the longest prompt (${promptTokens} tokens) + ${maxNewTokens} new tokens = ${total} positions`
      : `${maxNewTokens} new tokens (before any prompt)`;
  return `${what}, past the model's max_position_embeddings ${maxPositions}; generation past it is unreliable (lower max_completion_length / --max-new-tokens or max_prompt_length)`;
}

export function generate(model: CausalLM, prompts: number[][], o: GenerateOptions): GenerateResult {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new GpgRlError(`generate: maxNewTokens must be a positive integer (got ${o.maxNewTokens})`, 'GPG_GENERATE');
  if (!o.greedy && !o.rng) throw new GpgRlError('generate: sampling needs an rng (or greedy: true)', 'GPG_GENERATE');
  if (o.stopStrings?.length && !o.decode)
    throw new GpgRlError('generate: stop strings need a decode function', 'GPG_GENERATE');
  const bs = Math.max(1, o.batchSize ?? prompts.length);
  const out: GenerateResult = { tokens: [], logps: [], finished: [], texts: o.decode ? [] : null };
  for (let i = 0; i < prompts.length; i += bs) {
    const r = generateBatch(model, prompts.slice(i, i + bs), o);
    out.tokens.push(...r.tokens);
    out.logps.push(...r.logps);
    out.finished.push(...r.finished);
    if (out.texts && r.texts) out.texts.push(...r.texts);
  }
  return out;
}

function generateBatch(model: CausalLM, prompts: number[][], o: GenerateOptions): GenerateResult {
  const B = prompts.length;
  const V = model.cfg.vocabSize;
  const P = Math.max(1, ...prompts.map((p) => p.length));
  for (const [b, p] of prompts.entries()) {
    if (p.length === 0) throw new GpgRlError(`generate: prompt ${b} is empty`, 'GPG_GENERATE');
    for (const id of p)
      if (!Number.isInteger(id) || id < 0 || id >= V)
        throw new GpgRlError(`generate: prompt ${b} has token id ${id} outside the vocabulary (${V})`, 'GPG_GENERATE');
  }
  const N = o.maxNewTokens;
  const eos = new Set(o.eosTokenIds);
  const temperature = o.temperature ?? 1;
  const cache = model.newCache(B, P + N);
  const tokens: number[][] = prompts.map(() => []);
  const finished = new Array<boolean>(B).fill(false);
  const texts: string[] | null = o.decode ? new Array<string>(B).fill('') : null;
  const lpAll = Tensor.zeros([B, N]).keep(); // sampling log-probs, column = step
  try {
    // prefill: left-padded prompts
    const ids = new Int32Array(B * P).fill(o.padTokenId);
    const mask = new Int32Array(B * P);
    for (let b = 0; b < B; b++) {
      const p = prompts[b]!;
      for (let t = 0; t < p.length; t++) {
        ids[b * P + P - p.length + t] = p[t]!;
        mask[b * P + P - p.length + t] = 1;
      }
    }
    let logits: Tensor | null = model.decodeStep(cache, ids, mask, P);
    const next = new Int32Array(B);
    const nextMask = new Int32Array(B);
    const u = new Float32Array(B);
    for (let step = 0; step < N; step++) {
      if (!o.greedy) for (let b = 0; b < B; b++) u[b] = Math.min(o.rng!.next(), 0.99999994);
      const lt: Tensor = logits!;
      const sampled = tidy(() => {
        const r = sampleTokens(lt, Tensor.fromArray(u, [B]), {
          temperature,
          topK: o.topK ?? 0,
          topP: o.topP ?? 1,
          greedy: !!o.greedy,
        });
        copyRows(lpAll, r.logps, { rows: B, cols: 1, dstStride: N, srcStride: 1, dstOff: step });
        return r.ids.toArray() as Int32Array; // the one host read per step
      });
      lt.dispose();
      logits = null;
      let produced = 0;
      for (let b = 0; b < B; b++) {
        if (finished[b]) {
          next[b] = o.padTokenId;
          nextMask[b] = 0;
          continue;
        }
        const tok = sampled[b]!;
        tokens[b]!.push(tok);
        produced++;
        next[b] = tok;
        nextMask[b] = 1;
        if (eos.has(tok)) finished[b] = true;
        else if (o.stopStrings?.length) {
          const text = o.decode!(tokens[b]!);
          if (o.stopStrings.some((s) => text.includes(s))) finished[b] = true;
        }
      }
      o.onStep?.(produced);
      if (finished.every(Boolean) || step === N - 1) break;
      logits = model.decodeStep(cache, next, nextMask, 1);
    }
    logits?.dispose();
  } catch (e) {
    lpAll.dispose();
    throw e;
  } finally {
    model.disposeCache(cache);
  }
  // a row's i-th token was sampled at step i (rows only ever stop early)
  const lpHost = lpAll.toFloat32();
  lpAll.dispose();
  const logps = tokens.map((t, b) => Array.from(lpHost.subarray(b * N, b * N + t.length)));
  if (texts) for (let b = 0; b < B; b++) texts[b] = o.decode!(tokens[b]!);
  return { tokens, logps, finished, texts };
}
