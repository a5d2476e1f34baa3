/**
 * @module generate/generate
 * The rollout engine: sampling with a paged KV cache (vLLM's design, arXiv:2309.06180, on our
 * kernels), used by training rollouts, evaluation and `gpg-rl generate`.
 *
 * - Prefix sharing: identical prompts (a GRPO/GPG group's G copies) are prefilled once; their
 *   completions share the prompt's full KV blocks (the last, partial block is copied per member
 *   when they fork), so prompt compute and prompt KV memory are divided by G.
 * - Prefill computes logits only at the last prompt position: [1, V] per group, never [P, V].
 * - Continuous batching: sequences decode together (one row each, no padding); a finished
 *   sequence frees its blocks at once and waiting groups are admitted as soon as the KV budget
 *   (`kvCacheBytes`, in blocks of `blockSize` positions) and `batchSize` allow. A group is admitted
 *   only when its worst case (prompt + maxNewTokens for every member) fits, so nothing is ever
 *   preempted or recomputed.
 * - Every sequence samples from its own seeded stream (seeds drawn from `rng` in prompt order), and
 *   every kernel on the decode path computes a row independently of the other rows in the call, so a
 *   sequence's tokens do not depend on the schedule: shared = unshared and continuous = static,
 *   token for token.
 * - Sampling: temperature, top-k, top-p or greedy, in one pass over each row's logits on the
 *   backend; returns the sampling policy's log-probs log_softmax(logits / T)[token] over the full
 *   vocabulary (DESIGN §4). Stops on eos ids, stop strings or maxNewTokens. Per step only the
 *   sampled ids and their log-probs (2 numbers per running sequence) are read back.
 * - Generation weights (`weightsDtype`): the products read a copy of each weight packed for the
 *   decode kernel, in float32 or bfloat16 (half the bytes streamed; fp32 accumulation), made on
 *   first use in the call and freed when it returns (so training never holds them).
 */
import { Tensor, tidy } from '../tensor/tensor.ts';
import { sampleTokens, type SampleOptions } from '../tensor/ops/sample.ts';
import { copyRows } from '../tensor/ops/copy.ts';
import { setGenerationWeights, type GenerationDtype } from '../tensor/ops/matmul.ts';
import type { CausalLM, PagedKV } from '../model/decoder.ts';
import { Rng } from '../data/rng.ts';
import { GpgRlError } from '../errors.ts';
import type { Backend } from '../backend/index.ts';

export type { GenerationDtype };

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
  /** Generation ends once the decoded completion contains one of these (kept in the output). */
  stopStrings?: string[];
  /** Token ids -> text; needed for stop strings and `texts`. */
  decode?: (ids: number[]) => string;
  /** Source of the per-sequence sampling seeds (required unless greedy or `seeds`). */
  rng?: Rng;
  /**
   * One sampling seed per prompt (overrides `rng`): sequence i samples from `new Rng(seeds[i])`.
   * `gpg-rl serve` draws them per request, so a request's completions do not depend on which
   * other requests share its engine call.
   */
  seeds?: bigint[];
  /** Most sequences decoded together (vLLM's max_num_seqs); default 256. */
  batchSize?: number;
  /** KV-cache budget in bytes (all layers, keys and values); default 2 GiB. */
  kvCacheBytes?: number;
  /** Positions per KV block; default 16. */
  blockSize?: number;
  /** Share the KV of identical prompts (default true; false only to test that sharing changes nothing). */
  sharePrefix?: boolean;
  /** Weight copy the products read: 'float32' (default) or 'bfloat16'. */
  weightsDtype?: GenerationDtype;
  /**
   * Called after every decoding step with the number of new tokens produced in that step and the
   * number of sequences finished so far (eos, a stop string or the token limit).
   */
  onStep?: (newTokens: number, finishedSequences: number) => void;
}

export interface GenerateResult {
  /** Generated ids per sequence (eos included when produced; no padding). */
  tokens: number[][];
  /** log_softmax(logits / T)[token] per generated token. */
  logps: number[][];
  /** True when the sequence ended with eos or a stop string; false when cut at maxNewTokens. */
  finished: boolean[];
  texts: string[] | null;
  /** What the engine did: prefills, decode steps, peak running sequences, KV blocks. */
  stats: EngineStats;
}

export interface EngineStats {
  prefills: number;
  prefillTokens: number;
  decodeSteps: number;
  maxRunning: number;
  kvBlocks: number;
  kvBlocksPeak: number;
}

const DEFAULT_KV_BYTES = 2 * 1024 ** 3;

/**
 * Sampling settings of the sequences one `Engine.add` queues (each field defaults to the engine's
 * options): rows with different settings share decode steps and are sampled class by class.
 */
export interface SequenceSampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  greedy?: boolean;
  stopStrings?: string[];
}

/** A group: one prompt, prefilled once, and the sequences (members) that continue it. */
interface Group {
  prompt: number[];
  members: number[];
  /** Worst-case blocks of the whole group (shared full prompt blocks + each member's own). */
  need: number;
  /** Token limit of its members. */
  maxNew: number;
  /** Its members' sampling settings and the key of their class (rows of one class sample together). */
  sample: SampleOptions;
  sampleKey: string;
  stop: string[];
}

interface Seq {
  group: number;
  rng: Rng | null;
  tokens: number[];
  logps: number[];
  blocks: number[];
  /** KV positions filled (prompt + fed tokens). */
  ctx: number;
  finished: boolean;
  /** Blocks still reserved for this sequence's growth. */
  reserve: number;
  /** Stopped (finished or cut at its token limit); its blocks are freed. */
  done?: boolean;
}

/** Free list + reference counts over the pool's blocks (shared prompt blocks have several owners). */
class BlockPool {
  private free: number[];
  private refs: Int32Array;
  inUse = 0;
  peak = 0;
  constructor(readonly size: number) {
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
    this.refs = new Int32Array(size);
  }
  alloc(): number {
    const b = this.free.pop();
    if (b === undefined) throw new GpgRlError('generate: KV block pool exhausted (reservation bug)', 'GPG_GENERATE');
    this.refs[b] = 1;
    this.inUse++;
    this.peak = Math.max(this.peak, this.inUse);
    return b;
  }
  retain(b: number): void {
    this.refs[b]!++;
  }
  release(b: number): void {
    if (--this.refs[b]! === 0) {
      this.free.push(b);
      this.inUse--;
    }
  }
}

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

/** Parameters from which `generation_dtype: auto` picks bfloat16 (measured: no gain at 39M, 1.41× at 494M). */
export const AUTO_BF16_MIN_PARAMS = 100e6;

/**
 * `auto` → bfloat16 for a model of AUTO_BF16_MIN_PARAMS or more on a backend build with bf16 dot
 * products (the CPU's x86-64-v4-bf16 addon), else float32; an explicit dtype is kept.
 */
export function resolveGenerationDtype(
  d: GenerationDtype | 'auto',
  params: number,
  backend: Pick<Backend, 'name' | 'benchmarks'>,
): GenerationDtype {
  if (d !== 'auto') return d;
  const bf16Hardware = backend.name === 'cpu' && (backend.benchmarks?.build().name ?? '').includes('bf16');
  return bf16Hardware && params >= AUTO_BF16_MIN_PARAMS ? 'bfloat16' : 'float32';
}

/** Generates completions for `prompts` (token ids, unpadded); identical prompts share their prefill. */
export function generate(model: CausalLM, prompts: number[][], o: GenerateOptions): GenerateResult {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new GpgRlError(`generate: maxNewTokens must be a positive integer (got ${o.maxNewTokens})`, 'GPG_GENERATE');
  if (!o.greedy && !o.rng && !o.seeds)
    throw new GpgRlError('generate: sampling needs an rng or seeds (or greedy: true)', 'GPG_GENERATE');
  if (o.seeds && o.seeds.length !== prompts.length)
    throw new GpgRlError(
      `generate: seeds has ${o.seeds.length} entries for ${prompts.length} prompts; give one per prompt`,
      'GPG_GENERATE',
    );
  const empty = (stats: EngineStats): GenerateResult => ({
    tokens: [],
    logps: [],
    finished: [],
    texts: o.decode ? [] : null,
    stats,
  });
  if (prompts.length === 0) {
    checkEngineOptions(o);
    return empty({ prefills: 0, prefillTokens: 0, decodeSteps: 0, maxRunning: 0, kvBlocks: 0, kvBlocksPeak: 0 });
  }
  // one seed per sequence, drawn in prompt order: a sequence's stream does not depend on the schedule
  const seeds = o.greedy
    ? undefined
    : (o.seeds ?? prompts.map(() => (BigInt(o.rng!.nextUint32()) << 32n) | BigInt(o.rng!.nextUint32())));
  // the pool: the budget, but never more than everything at once needs
  const engine = new Engine(model, o, Engine.blocksFor(model, prompts, o.maxNewTokens, o));
  try {
    const ids = engine.add(prompts, { maxNewTokens: o.maxNewTokens, seeds });
    let ended = 0;
    while (!engine.idle) {
      const r = engine.step();
      ended += r.finished.length;
      o.onStep?.(r.newTokens, ended);
    }
    const out = ids.map((i) => engine.sequence(i));
    const stats = engine.close();
    return {
      tokens: out.map((s) => s.tokens),
      logps: out.map((s) => s.logps),
      finished: out.map((s) => s.finished),
      texts: o.decode ? out.map((s) => o.decode!(s.tokens)) : null,
      stats,
    };
  } finally {
    engine.close();
  }
}

/** The engine's fixed settings: sampling, stops and capacities (GenerateOptions less the per-request ones). */
export type EngineOptions = Omit<GenerateOptions, 'maxNewTokens' | 'rng' | 'seeds' | 'onStep'>;

/** One decoding step of an Engine: tokens produced, and the sequences that ended in it. */
export interface EngineStep {
  newTokens: number;
  finished: number[];
}

function checkEngineOptions(o: EngineOptions): void {
  if (o.stopStrings?.length && !o.decode)
    throw new GpgRlError('generate: stop strings need a decode function', 'GPG_GENERATE');
  for (const [k, v] of [
    ['batchSize', o.batchSize ?? 256],
    ['blockSize', o.blockSize ?? 16],
  ] as const)
    if (!Number.isInteger(v) || v < 1)
      throw new GpgRlError(`generate: ${k} must be a positive integer (got ${v})`, 'GPG_GENERATE');
}

/**
 * The rollout engine as an object that admits work between decoding steps (continuous batching
 * across callers, as `gpg-rl serve` uses it): `add` queues prompts (each with its own seeds, token
 * limit and sampling settings: temperature, top-k, top-p, greedy, stop strings) at any time,
 * `step` runs one admission + sampling + decode step, `sequence(i)` reads a sequence's tokens
 * (`forget(i)` drops them once read). A sequence's tokens do not depend on when it was added or what it
 * shares steps with (own seeded stream, row-independent kernels). The KV pool holds `numBlocks`
 * blocks (default: the `kvCacheBytes` budget); `close` frees it and the generation weight copies.
 */
export class Engine {
  readonly stats: EngineStats;
  readonly numBlocks: number;
  private readonly groups: Group[] = [];
  private readonly seqs: Seq[] = [];
  private readonly pool: BlockPool;
  private readonly cache: PagedKV;
  private readonly eos: Set<number>;
  private readonly bs: number;
  private readonly maxSeqs: number;
  private readonly budget: number;
  private outstanding = 0; // blocks promised to running sequences and not yet taken
  private nextGroup = 0;
  private running: number[] = [];
  private last: Tensor | null = null; // logits of the previous decode step, rows in `running` order
  private closed = false;

  /** KV blocks that `prompts` need all at once (capped by the budget): the pool of a one-shot call. */
  static blocksFor(model: CausalLM, prompts: number[][], maxNewTokens: number, o: EngineOptions): number {
    const bs = o.blockSize ?? 16;
    const budget = Math.floor((o.kvCacheBytes ?? DEFAULT_KV_BYTES) / model.kvBytesPerBlock(bs));
    const counts = new Map<string, number>();
    for (const [i, p] of prompts.entries()) {
      const key = o.sharePrefix === false ? `#${i}` : p.join(',');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    let all = 0;
    for (const [key, m] of counts) {
      const P = o.sharePrefix === false ? prompts[Number(key.slice(1))]!.length : key.split(',').length;
      all += groupNeed(P, m, maxNewTokens, bs);
    }
    return Math.max(1, Math.min(budget, all));
  }

  constructor(
    private readonly model: CausalLM,
    private readonly o: EngineOptions,
    numBlocks?: number,
  ) {
    checkEngineOptions(o);
    this.bs = o.blockSize ?? 16;
    this.maxSeqs = o.batchSize ?? 256;
    this.budget = Math.floor((o.kvCacheBytes ?? DEFAULT_KV_BYTES) / model.kvBytesPerBlock(this.bs));
    this.numBlocks = Math.min(numBlocks ?? this.budget, this.budget);
    this.stats = {
      prefills: 0,
      prefillTokens: 0,
      decodeSteps: 0,
      maxRunning: 0,
      kvBlocks: this.numBlocks,
      kvBlocksPeak: 0,
    };
    this.eos = new Set(o.eosTokenIds);
    this.pool = new BlockPool(this.numBlocks);
    this.cache = model.newPagedCache(this.numBlocks, this.bs);
  }

  /** No sequence running or waiting. */
  get idle(): boolean {
    return this.nextGroup >= this.groups.length && this.running.length === 0;
  }

  /** Sequences running or waiting. */
  get pending(): number {
    let n = this.running.length;
    for (let g = this.nextGroup; g < this.groups.length; g++) n += this.groups[g]!.members.length;
    return n;
  }

  /** Whether a group of `members` copies of a `promptLength`-token prompt can ever fit the pool. */
  fits(promptLength: number, members: number, maxNewTokens: number): boolean {
    return groupNeed(promptLength, members, maxNewTokens, this.bs) <= this.numBlocks;
  }

  /** Sequences running (decoding), not counting the waiting ones. */
  get runningSequences(): number {
    return this.running.length;
  }

  /**
   * Queues prompts (identical ones in this call share a prefill); returns their sequence ids.
   * Callable at any time, also between the steps of a running batch: the new groups are admitted
   * at the next `step` whose KV budget allows. `seeds`: one per prompt (required unless greedy);
   * `sampling`: these sequences' settings (default: the engine's).
   */
  add(prompts: number[][], r: { maxNewTokens: number; seeds?: bigint[]; sampling?: SequenceSampling }): number[] {
    const N = r.maxNewTokens;
    if (!Number.isInteger(N) || N < 1)
      throw new GpgRlError(`generate: maxNewTokens must be a positive integer (got ${N})`, 'GPG_GENERATE');
    const o = this.o;
    const q = r.sampling ?? {};
    const greedy = !!(q.greedy ?? o.greedy);
    const sample: SampleOptions = {
      temperature: greedy ? 1 : (q.temperature ?? o.temperature ?? 1),
      topK: greedy ? 0 : (q.topK ?? o.topK ?? 0),
      topP: greedy ? 1 : (q.topP ?? o.topP ?? 1),
      greedy,
    };
    if (!(sample.temperature > 0))
      throw new GpgRlError(`generate: temperature must be > 0 (got ${sample.temperature})`, 'GPG_GENERATE');
    const stop = (q.stopStrings ?? o.stopStrings ?? []).filter((x) => x.length > 0);
    if (stop.length && !o.decode) throw new GpgRlError('generate: stop strings need a decode function', 'GPG_GENERATE');
    const sampleKey = greedy ? 'greedy' : `${sample.temperature},${sample.topK},${sample.topP}`;
    if (!greedy && (!r.seeds || r.seeds.length !== prompts.length))
      throw new GpgRlError('generate: sampling needs one seed per prompt (or greedy: true)', 'GPG_GENERATE');
    const V = this.model.cfg.vocabSize;
    for (const [b, p] of prompts.entries()) {
      if (p.length === 0) throw new GpgRlError(`generate: prompt ${b} is empty`, 'GPG_GENERATE');
      for (const id of p)
        if (!Number.isInteger(id) || id < 0 || id >= V)
          throw new GpgRlError(
            `generate: prompt ${b} has token id ${id} outside the vocabulary (${V})`,
            'GPG_GENERATE',
          );
    }
    const first = this.groups.length;
    const byKey = new Map<string, number>();
    const ids = prompts.map((p, i) => {
      const key = this.o.sharePrefix === false ? `#${i}` : p.join(',');
      let g = byKey.get(key);
      if (g === undefined) {
        g = this.groups.length;
        byKey.set(key, g);
        this.groups.push({ prompt: p, members: [], need: 0, maxNew: N, sample, sampleKey, stop });
      }
      const id = this.seqs.length;
      this.groups[g]!.members.push(id);
      this.seqs.push({
        group: g,
        rng: greedy ? null : new Rng(r.seeds![i]!),
        tokens: [],
        logps: [],
        blocks: [],
        ctx: 0,
        finished: false,
        reserve: 0,
      });
      return id;
    });
    let biggest = 0;
    for (let g = first; g < this.groups.length; g++) {
      const G = this.groups[g]!;
      G.need = groupNeed(G.prompt.length, G.members.length, N, this.bs);
      biggest = Math.max(biggest, G.need);
    }
    if (biggest > this.numBlocks) {
      this.groups.length = first;
      this.seqs.length = ids[0]!;
      const perBlock = this.model.kvBytesPerBlock(this.bs);
      throw new GpgRlError(
        `generate: the KV budget of ${((this.o.kvCacheBytes ?? DEFAULT_KV_BYTES) / 2 ** 20).toFixed(0)} MiB holds ${this.budget} blocks ` +
          `of ${this.bs} positions, but one group (its prompt + ${N} new tokens for each of its members) needs ${biggest} ` +
          `(${((biggest * perBlock) / 2 ** 20).toFixed(0)} MiB); raise the budget or lower max new tokens`,
        'GPG_GENERATE',
      );
    }
    return ids;
  }

  /** A sequence's generated ids, log-probs and whether it ended (eos / stop string); `done` once it stopped. */
  sequence(i: number): { tokens: number[]; logps: number[]; finished: boolean; done: boolean } {
    const s = this.seqs[i]!;
    return { tokens: s.tokens, logps: s.logps, finished: s.finished, done: s.done === true };
  }

  /** Drops a stopped sequence's tokens and log-probs (a long-lived engine keeps only what runs). */
  forget(i: number): void {
    const s = this.seqs[i]!;
    if (!s.done) throw new GpgRlError(`generate: sequence ${i} has not stopped`, 'GPG_GENERATE');
    s.tokens = [];
    s.logps = [];
  }

  /** Admits waiting groups that fit, samples one token for every running sequence, decodes the survivors. */
  step(): EngineStep {
    if (this.closed) throw new GpgRlError('generate: the engine is closed', 'GPG_GENERATE');
    const { model, cache, pool, seqs, groups, bs, o } = this;
    const V = model.cfg.vocabSize;
    const prevWeights = setGenerationWeights(o.weightsDtype ?? 'float32');
    try {
      // admit whole groups while the worst case fits
      const fresh: Array<{ group: number; logits: Tensor }> = [];
      while (this.nextGroup < groups.length) {
        const g = groups[this.nextGroup]!;
        const count = this.running.length + fresh.reduce((a, f) => a + groups[f.group]!.members.length, 0);
        if (
          count > 0 &&
          (pool.inUse + this.outstanding + g.need > this.numBlocks || count + g.members.length > this.maxSeqs)
        )
          break;
        const own = ownBlocks(g.prompt.length, g.maxNew, bs);
        fresh.push({ group: this.nextGroup, logits: prefill(model, cache, pool, g, seqs, bs, own) });
        for (const i of g.members) this.outstanding += seqs[i]!.reserve;
        this.stats.prefills++;
        this.stats.prefillTokens += g.prompt.length;
        g.prompt = []; // prefilled: its KV holds it (a long-lived engine keeps no prompt it ran)
        this.nextGroup++;
      }
      // rows to sample: decoded ones first (their logits are `last`), then the fresh groups' members
      const running = this.running;
      const rows = [...running];
      for (const f of fresh) rows.push(...groups[f.group]!.members);
      const B = rows.length;
      if (B === 0) return { newTokens: 0, finished: [] };
      this.stats.maxRunning = Math.max(this.stats.maxRunning, B);
      const u = new Float32Array(B);
      for (let r = 0; r < B; r++) {
        const rng = seqs[rows[r]!]!.rng;
        if (rng) u[r] = Math.min(rng.next(), 0.99999994);
      }
      // rows by sampling class (one class: the whole batch in one call)
      const classes = new Map<string, number[]>();
      for (let r = 0; r < B; r++) {
        const k = groups[seqs[rows[r]!]!.group]!.sampleKey;
        const c = classes.get(k);
        if (c) c.push(r);
        else classes.set(k, [r]);
      }
      const last = this.last;
      const sampled = tidy(() => {
        let logits: Tensor;
        if (fresh.length === 0) logits = last!;
        else {
          logits = Tensor.empty([B, V]);
          if (last) copyRows(logits, last, { rows: running.length, cols: V, dstStride: V, srcStride: V });
          let r = running.length;
          for (const f of fresh)
            for (let m = 0; m < groups[f.group]!.members.length; m++, r++)
              copyRows(logits, f.logits, { rows: 1, cols: V, dstStride: V, srcStride: V, dstOff: r * V });
        }
        const optsOf = (r: number) => groups[seqs[rows[r]!]!.group]!.sample;
        if (classes.size === 1) {
          const res = sampleTokens(logits, Tensor.fromArray(u, [B]), optsOf(0));
          return { ids: res.ids.toArray() as Int32Array, lps: res.logps.toFloat32() };
        }
        // several classes: each one's rows gathered (runs of consecutive rows copied at once),
        // sampled, scattered back; the kernel computes each row on its own, so this changes no row
        const ids = new Int32Array(B);
        const lps = new Float32Array(B);
        for (const rs of classes.values()) {
          const sub = Tensor.empty([rs.length, V]);
          const us = new Float32Array(rs.length);
          for (let a = 0; a < rs.length;) {
            let b = a + 1;
            while (b < rs.length && rs[b] === rs[b - 1]! + 1) b++;
            copyRows(sub, logits, {
              rows: b - a,
              cols: V,
              dstStride: V,
              srcStride: V,
              dstOff: a * V,
              srcOff: rs[a]! * V,
            });
            a = b;
          }
          rs.forEach((r, j) => (us[j] = u[r]!));
          const res = sampleTokens(sub, Tensor.fromArray(us, [rs.length]), optsOf(rs[0]!));
          const ci = res.ids.toArray() as Int32Array;
          const cl = res.logps.toFloat32();
          rs.forEach((r, j) => {
            ids[r] = ci[j]!;
            lps[r] = cl[j]!;
          });
        }
        return { ids, lps };
      });
      this.last?.dispose();
      this.last = null;
      for (const f of fresh) f.logits.dispose();
      const finished: number[] = [];
      const cont: number[] = [];
      for (let r = 0; r < B; r++) {
        const i = rows[r]!;
        const s = seqs[i]!;
        const tok = sampled.ids[r]!;
        s.tokens.push(tok);
        s.logps.push(sampled.lps[r]!);
        const stop = groups[s.group]!.stop;
        if (this.eos.has(tok)) s.finished = true;
        else if (stop.length) {
          const text = o.decode!(s.tokens);
          if (stop.some((x) => text.includes(x))) s.finished = true;
        }
        if (s.finished || s.tokens.length >= groups[s.group]!.maxNew) {
          finished.push(i);
          s.done = true;
          for (const b of s.blocks) pool.release(b);
          this.outstanding -= s.reserve;
          s.reserve = 0;
          s.blocks = [];
        } else cont.push(i);
      }
      this.running = cont;
      if (cont.length > 0) {
        const before = pool.inUse;
        this.last = decodeStep(model, cache, pool, seqs, cont, bs);
        this.outstanding -= pool.inUse - before; // new blocks come out of the sequences' own reserves
        this.stats.decodeSteps++;
      }
      return { newTokens: B, finished };
    } finally {
      setGenerationWeights(prevWeights);
    }
  }

  /** Frees the KV pool and the generation weight copies (idempotent); returns the stats. */
  close(): EngineStats {
    if (!this.closed) {
      this.closed = true;
      this.last?.dispose();
      this.last = null;
      this.model.disposePagedCache(this.cache);
      this.model.lmHeadWeight().backend.releasePackedWeights(); // the generation copies never outlive the engine
      this.stats.kvBlocksPeak = this.pool.peak;
    }
    return this.stats;
  }
}

/** Blocks one member owns beyond the shared full prompt blocks (its partial block and its growth). */
function ownBlocks(P: number, N: number, bs: number): number {
  return Math.ceil((P + N - 1) / bs) - Math.floor(P / bs);
}

/** Worst-case blocks of a group: shared full prompt blocks + each member's own. */
function groupNeed(P: number, members: number, N: number, bs: number): number {
  return Math.floor(P / bs) + members * ownBlocks(P, N, bs);
}

/**
 * Prefills a group's prompt once (B 1 × T P) into fresh blocks and forks its members: they share
 * the full prompt blocks, the first member takes the partial last block and the others get copies
 * of it. Returns the logits at the last prompt position [1, V].
 */
function prefill(
  model: CausalLM,
  cache: PagedKV,
  pool: BlockPool,
  g: Group,
  seqs: Seq[],
  bs: number,
  own: number,
): Tensor {
  const P = g.prompt.length;
  const nBlocks = Math.ceil(P / bs);
  const blocks = Array.from({ length: nBlocks }, () => pool.alloc());
  const slots = new Int32Array(P);
  for (let t = 0; t < P; t++) slots[t] = blocks[Math.floor(t / bs)]! * bs + (t % bs);
  const logits = model.pagedStep(cache, {
    ids: Int32Array.from(g.prompt),
    pos: Int32Array.from({ length: P }, (_, t) => t),
    slots,
    table: Int32Array.from(blocks),
    ctx: Int32Array.of(P),
    B: 1,
    T: P,
    maxBlocks: nBlocks,
  });
  const full = Math.floor(P / bs);
  const partial = P % bs !== 0 ? blocks[full]! : -1;
  for (const [m, i] of g.members.entries()) {
    const s = seqs[i]!;
    s.ctx = P;
    s.blocks = blocks.slice(0, full);
    if (m > 0) for (const b of s.blocks) pool.retain(b);
    s.reserve = own;
    if (partial >= 0) {
      // copy-on-write of the partial block, done at the fork: member 0 keeps the original
      const b = m === 0 ? partial : pool.alloc();
      if (m > 0) copyBlock(cache, b, partial, P % bs);
      s.blocks.push(b);
      s.reserve--;
    }
  }
  return logits;
}

/** Copies the first `n` positions of block `src` into block `dst` in every layer's pools. */
function copyBlock(cache: PagedKV, dst: number, src: number, n: number): void {
  const row = cache.k[0]!.size / (cache.numBlocks * cache.blockSize);
  const at = {
    rows: 1,
    cols: n * row,
    dstStride: 0,
    srcStride: 0,
    dstOff: dst * cache.blockSize * row,
    srcOff: src * cache.blockSize * row,
  };
  for (let l = 0; l < cache.k.length; l++) {
    copyRows(cache.k[l]!, cache.k[l]!, at);
    copyRows(cache.v[l]!, cache.v[l]!, at);
  }
}

/** Feeds each running sequence's last token (one row each) and returns the next logits [B, V]. */
function decodeStep(
  model: CausalLM,
  cache: PagedKV,
  pool: BlockPool,
  seqs: Seq[],
  running: number[],
  bs: number,
): Tensor {
  const B = running.length;
  let maxBlocks = 1;
  const ids = new Int32Array(B);
  const pos = new Int32Array(B);
  const slots = new Int32Array(B);
  const ctx = new Int32Array(B);
  for (const [r, i] of running.entries()) {
    const s = seqs[i]!;
    if (s.ctx % bs === 0) {
      s.blocks.push(pool.alloc());
      s.reserve--;
    }
    ids[r] = s.tokens[s.tokens.length - 1]!;
    pos[r] = s.ctx;
    slots[r] = s.blocks[Math.floor(s.ctx / bs)]! * bs + (s.ctx % bs);
    s.ctx++;
    ctx[r] = s.ctx;
    maxBlocks = Math.max(maxBlocks, s.blocks.length);
  }
  const table = new Int32Array(B * maxBlocks);
  for (const [r, i] of running.entries()) table.set(seqs[i]!.blocks, r * maxBlocks);
  return model.pagedStep(cache, { ids, pos, slots, table, ctx, B, T: 1, maxBlocks });
}
