/**
 * @module serve/server
 * `gpg-rl serve`: an OpenAI-compatible completions server (the subset vLLM and SGLang serve for
 * RL rollouts) on the rollout engine of src/generate, over node:http.
 *
 * Endpoints: GET /v1/models, GET /health, POST /v1/completions; the weight reloads RL trainers
 * call between steps: vLLM's POST /v1/load_lora_adapter {lora_name, lora_path} and
 * /v1/unload_lora_adapter {lora_name}, SGLang's POST /update_weights_from_disk {model_path}.
 *
 * Scheduling: continuous batching across requests on one live `Engine`. The scheduler runs in
 * slices on the event loop (one decode step each, then setImmediate), so requests are parsed while
 * others decode. A request for the model the engine serves (the base, or one adapter) joins it at
 * once (`Engine.add`) and its groups enter the running batch at the next decode-step boundary the
 * KV budget (`kvCacheBytes`) and `maxNumSeqs` allow; a finished sequence frees its blocks and slot
 * at once, and a request is answered as soon as its own sequences stop. Every request keeps its
 * own settings (max_tokens, temperature, top_p, top_k, stop, greedy): rows with different
 * sampling settings share the decode steps and are sampled class by class. A request for another
 * model (a different adapter, or the base while an adapter serves) waits until the requests ahead
 * of it finish, then the engine reopens for it (requests are admitted in arrival order). Reloads
 * are queued the same way: one runs once every completion that arrived before it has finished,
 * and completions that arrive after it wait for it. Each request samples from its own
 * seeded streams (`seed`, drawn per sequence as `generate` draws them from `new Rng(seed)`), and
 * the engine computes each row independently, so a request's completions do not depend on which
 * requests share its steps or when it joined: `seed` S and n = G on prompt p give what
 * `generate(model, G × [p], { rng: new Rng(S) })` gives locally. The gpg-rl extension
 * `sequence_seeds` (n × prompts unsigned 64-bit seeds, decimal strings) gives each choice its own
 * stream, `new Rng(seed)`, so a trainer reproduces its local engine's draws exactly (vLLM ignores
 * the field and uses `seed`).
 *
 * Log-probs are the engine's log_softmax(logits / T)[token] over the full vocabulary (the
 * sampling policy before top-k/top-p truncation; T = 1 for greedy, temperature 0), vLLM's
 * `processed_logprobs` rather than its raw ones when T ≠ 1. `top_logprobs` (logprobs ≥ 1) comes
 * from a scoring pass over prompt + completion. Tokens are decoded one by one; with
 * `return_tokens_as_token_ids` they read "token_id:<id>" as in vLLM.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CausalLM } from '../model/decoder.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { readGenerationConfig } from '../model/config.ts';
import { specialTokens } from '../model/special.ts';
import { ADAPTER_CONFIG_FILE, loadAdapter } from '../model/lora.ts';
import { Engine, type GenerationDtype } from '../generate/generate.ts';
import { Rng } from '../data/rng.ts';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { noGrad } from '../tensor/tape.ts';
import { GpgRlError } from '../errors.ts';

export interface ServeOptions {
  /** The model folder (config.json, *.safetensors, tokenizer.json for text prompts). */
  modelDir: string;
  /** Name in /v1/models and the `model` field (default: modelDir as given, as vLLM does). */
  servedModelName?: string;
  host?: string;
  /** 0 = a free port (read it from `url` after start). */
  port?: number;
  /** Weights the engine reads (default float32). */
  weightsDtype?: GenerationDtype;
  /** KV pool of the live engine in bytes (default 2 GiB): requests join while their worst case fits. */
  kvCacheBytes?: number;
  /** Most sequences decoded together (vLLM's max_num_seqs; default 256). */
  maxNumSeqs?: number;
  /** How long a request arriving at an idle engine waits for others to start with it (default 2 ms). */
  batchWaitMs?: number;
  /** Access log and notices (default: stderr). */
  log?: (line: string) => void;
}

/** A request the server refuses: HTTP status, message naming the field, OpenAI error type. */
export class ServeRequestError extends GpgRlError {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message, 'GPG_SERVE_REQUEST');
    this.name = 'ServeRequestError';
  }
}

const bad = (param: string, message: string) => new ServeRequestError(400, `${param}: ${message}`, param);

/** The validated engine settings of one /v1/completions request. */
interface CompletionRequest {
  model: string;
  adapter: string | null;
  /** One entry per prompt: its token ids (text prompts tokenized). */
  prompts: Array<{ ids: number[] }>;
  n: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: bigint | null;
  /** gpg-rl extension `sequence_seeds`: one 64-bit seed per choice (prompt-major), overriding `seed`. */
  sequenceSeeds: bigint[] | null;
  stop: string[];
  logprobs: number | null;
  tokensAsIds: boolean;
}

interface Job {
  req: CompletionRequest;
  resolve: (body: unknown) => void;
  reject: (e: unknown) => void;
  /** Its sequence ids in the live engine (prompt-major, n per prompt) once admitted. */
  ids?: number[];
  /** Sequences not yet stopped. */
  left?: number;
}

/** What waits for the engine, in arrival order: a completion, or a reload (run once nothing decodes). */
type Queued = { job: Job } | { reload: () => unknown; resolve: (body: unknown) => void; reject: (e: unknown) => void };

const MAX_BODY = 64 * 1024 * 1024;
const MAX_LOGPROBS = 20;

export class CompletionServer {
  readonly modelName: string;
  private model: CausalLM;
  private readonly tokenizer: TextTokenizer | null;
  private readonly eosTokenIds: number[];
  /** Registered adapters (name → folder); at most one is attached to the model at a time. */
  private readonly adapters = new Map<string, string>();
  private attached: string | null = null;
  private readonly queue: Queued[] = [];
  /** The live engine (open while requests decode), the adapter it serves (null: the base), its requests. */
  private engine: Engine | null = null;
  private mode: string | null = null;
  private readonly active: Job[] = [];
  private readonly owner = new Map<number, Job>();
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** Counters reported on /health. */
  private readonly counts = { decodeSteps: 0, requestsJoinedRunningBatch: 0, engineStarts: 0 };
  private server: Server | null = null;
  private readonly log: (line: string) => void;
  private readonly created = Math.floor(Date.now() / 1000);
  url = '';

  constructor(private readonly o: ServeOptions) {
    this.log = o.log ?? ((s) => process.stderr.write(s + '\n'));
    this.modelName = o.servedModelName ?? o.modelDir;
    this.model = CausalLM.load(o.modelDir);
    this.tokenizer = existsSync(join(o.modelDir, 'tokenizer.json')) ? TextTokenizer.fromDir(o.modelDir) : null;
    const gen = readGenerationConfig(o.modelDir, this.model.cfg);
    this.eosTokenIds = specialTokens(this.model.cfg, this.tokenizer, gen, o.modelDir, {
      requireEos: false,
    }).eosTokenIds;
  }

  /** Listens; resolves with the base URL (`http://host:port`). */
  async start(): Promise<string> {
    const host = this.o.host ?? '127.0.0.1';
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port ?? 8000, host, () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.o.port;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = null;
    const down = new ServeRequestError(503, 'server shutting down');
    for (const q of this.queue.splice(0)) ('job' in q ? q.job.reject : q.reject)(down);
    for (const j of this.active.splice(0)) j.reject(down);
    this.closeEngine();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.model.dispose();
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const path = (req.url ?? '/').split('?')[0]!;
    let status = 200;
    let body: unknown;
    try {
      body = await this.route(req.method ?? 'GET', path, req);
    } catch (e) {
      const err =
        e instanceof ServeRequestError
          ? e
          : new ServeRequestError(
              e instanceof GpgRlError ? 400 : 500,
              e instanceof Error ? e.message.split('\n')[0]! : String(e),
            );
      status = err.status;
      body = {
        error: {
          message: err.message,
          type: status >= 500 ? 'internal_error' : status === 404 ? 'not_found_error' : 'invalid_request_error',
          param: err.param,
          code: status,
        },
      };
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    this.log(`${req.method} ${path} ${status} ${(performance.now() - t0).toFixed(1)}ms`);
  }

  private async route(method: string, path: string, req: IncomingMessage): Promise<unknown> {
    const routes: Record<string, [string, () => Promise<unknown>]> = {
      '/health': ['GET', async () => this.health()],
      '/v1/models': ['GET', async () => this.models()],
      '/v1/completions': ['POST', async () => this.enqueue(this.parseCompletion(await readJson(req)))],
      '/v1/load_lora_adapter': ['POST', async () => this.reload(await readJson(req), (b) => this.loadLora(b))],
      '/v1/unload_lora_adapter': ['POST', async () => this.reload(await readJson(req), (b) => this.unloadLora(b))],
      '/update_weights_from_disk': ['POST', async () => this.reload(await readJson(req), (b) => this.updateWeights(b))],
    };
    const r = routes[path];
    if (!r) throw new ServeRequestError(404, `no route ${path} (served: ${Object.keys(routes).join(', ')})`);
    if (method !== r[0]) throw new ServeRequestError(405, `${path} takes ${r[0]} (got ${method})`);
    return r[1]();
  }

  /** `status` plus the scheduler's state (gpg-rl extension; vLLM answers an empty 200). */
  private health(): unknown {
    return {
      status: 'ok',
      requests_running: this.active.length,
      requests_waiting: this.queue.filter((q) => 'job' in q).length,
      reloads_waiting: this.queue.filter((q) => 'reload' in q).length,
      sequences_running: this.engine?.runningSequences ?? 0,
      decode_steps: this.counts.decodeSteps,
      requests_joined_running_batch: this.counts.requestsJoinedRunningBatch,
      engine_starts: this.counts.engineStarts,
    };
  }

  private models(): unknown {
    const entry = (id: string, parent: string | null) => ({
      id,
      object: 'model',
      created: this.created,
      owned_by: 'gpg-rl',
      root: parent === null ? this.o.modelDir : this.adapters.get(id),
      parent,
      max_model_len: this.model.cfg.maxPositionEmbeddings,
    });
    return {
      object: 'list',
      data: [entry(this.modelName, null), ...[...this.adapters.keys()].map((a) => entry(a, this.modelName))],
    };
  }

  // -------------------------------------------------------------------------------------------
  // reloads: queued like completions and run once every completion that arrived before them has
  // finished (nothing decoding, the engine closed); completions that arrive after them wait

  private reload(b: Record<string, unknown>, run: (b: Record<string, unknown>) => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ reload: () => run(b), resolve, reject });
      this.schedule();
    });
  }

  private loadLora(b: Record<string, unknown>): unknown {
    const name = str(b, 'lora_name');
    const path = str(b, 'lora_path');
    if (name === this.modelName) throw bad('lora_name', `must differ from the base model's name ${name}`);
    if (!existsSync(join(path, ADAPTER_CONFIG_FILE)))
      throw bad('lora_path', `${path} holds no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter folder)`);
    if (this.adapters.has(name) && b['load_inplace'] !== true)
      throw bad('lora_name', `adapter ${name} is already loaded; unload it first or pass load_inplace: true`);
    this.attach(name, path); // read now, so a bad adapter is this request's error
    this.adapters.set(name, path);
    return { success: true, message: `Success: LoRA adapter '${name}' added successfully.` };
  }

  private unloadLora(b: Record<string, unknown>): unknown {
    const name = str(b, 'lora_name');
    if (!this.adapters.has(name))
      throw new ServeRequestError(404, `lora_name: no adapter ${name} is loaded`, 'lora_name');
    this.adapters.delete(name);
    if (this.attached === name) this.detach();
    return { success: true, message: `Success: LoRA adapter '${name}' removed successfully.` };
  }

  private updateWeights(b: Record<string, unknown>): unknown {
    const path = str(b, 'model_path');
    if (!existsSync(join(path, 'config.json'))) throw bad('model_path', `${path} holds no config.json`);
    const next = CausalLM.load(path);
    const have = this.model.params;
    const mismatch = [...next.params].find(([n, t]) => {
      const h = have.get(n);
      return !h || h.shape.join(',') !== t.shape.join(',');
    });
    if (mismatch || next.params.size !== have.size) {
      next.dispose();
      throw bad(
        'model_path',
        `${path} does not have the served model's parameters (${mismatch ? `${mismatch[0]} [${mismatch[1].shape}]` : `${next.params.size} vs ${have.size} tensors`}); /update_weights_from_disk keeps the architecture`,
      );
    }
    this.detach();
    this.model.dispose();
    this.model = next;
    return { success: true, message: `Succeeded to update model weights from ${path}.`, num_paused_requests: 0 };
  }

  private attach(name: string, path: string): void {
    this.detach();
    loadAdapter(this.model, path);
    this.attached = name;
  }

  private detach(): void {
    const lora = this.model.lora;
    if (lora) {
      for (const p of lora.pairs.values()) {
        p.A.dispose();
        p.B.dispose();
      }
      this.model.lora = null;
    }
    this.attached = null;
  }

  // -------------------------------------------------------------------------------------------
  // /v1/completions

  private parseCompletion(b: Record<string, unknown>): CompletionRequest {
    for (const k of ['stream', 'echo'] as const)
      if (b[k] !== undefined && b[k] !== false && b[k] !== null) throw bad(k, 'is not supported (only false)');
    for (const k of ['presence_penalty', 'frequency_penalty'] as const)
      if (b[k] !== undefined && b[k] !== 0 && b[k] !== null) throw bad(k, 'is not supported (only 0)');
    if (b['repetition_penalty'] !== undefined && b['repetition_penalty'] !== 1 && b['repetition_penalty'] !== null)
      throw bad('repetition_penalty', 'is not supported (only 1)');
    const model = b['model'] === undefined || b['model'] === null ? this.modelName : b['model'];
    if (typeof model !== 'string') throw bad('model', `must be a string (got ${typeof model})`);
    let adapter: string | null = null;
    if (model !== this.modelName) {
      if (!this.adapters.has(model))
        throw new ServeRequestError(
          404,
          `model: the model \`${model}\` does not exist (served: ${[this.modelName, ...this.adapters.keys()].join(', ')})`,
          'model',
        );
      adapter = model;
    }
    const V = this.model.cfg.vocabSize;
    const prompts = this.parsePrompts(b['prompt'], V);
    const n = intField(b, 'n', 1, 1, 1024);
    const maxTokens = intField(b, 'max_tokens', 16, 1, Number.MAX_SAFE_INTEGER);
    const temperature = numField(b, 'temperature', 1, 0, Infinity);
    const topP = numField(b, 'top_p', 1, Number.MIN_VALUE, 1);
    const topK = intField(b, 'top_k', -1, -1, Number.MAX_SAFE_INTEGER);
    let seed: bigint | null = null;
    if (b['seed'] !== undefined && b['seed'] !== null) {
      const s = b['seed'];
      if (typeof s !== 'number' || !Number.isSafeInteger(s)) throw bad('seed', `must be an integer (got ${show(s)})`);
      seed = BigInt.asUintN(64, BigInt(s));
    }
    let sequenceSeeds: bigint[] | null = null;
    const ss = b['sequence_seeds'];
    if (ss !== undefined && ss !== null) {
      const want = prompts.length * n;
      if (!Array.isArray(ss) || ss.length !== want)
        throw bad('sequence_seeds', `must be a list of ${want} seeds (n × prompts; got ${show(ss)})`);
      sequenceSeeds = ss.map((x, i) => {
        const ok =
          (typeof x === 'string' && /^\d{1,20}$/.test(x)) ||
          (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
        const v = ok ? BigInt(x as string | number) : -1n;
        if (v < 0n || v >= 1n << 64n)
          throw bad(
            'sequence_seeds',
            `entry ${i} must be an unsigned 64-bit integer (a decimal string; got ${show(x)})`,
          );
        return v;
      });
    }
    let stop: string[] = [];
    const st = b['stop'];
    if (typeof st === 'string') stop = [st];
    else if (Array.isArray(st) && st.every((x) => typeof x === 'string')) stop = st as string[];
    else if (st !== undefined && st !== null)
      throw bad('stop', `must be a string or a list of strings (got ${show(st)})`);
    stop = stop.filter((x) => x.length > 0);
    if (stop.length && !this.tokenizer) throw bad('stop', 'needs tokenizer.json in the model folder');
    let logprobs: number | null = null;
    if (b['logprobs'] !== undefined && b['logprobs'] !== null && b['logprobs'] !== false) {
      logprobs = b['logprobs'] === true ? 0 : intField(b, 'logprobs', 0, 0, MAX_LOGPROBS);
    }
    const tokensAsIds = b['return_tokens_as_token_ids'] === true;
    if (b['return_tokens_as_token_ids'] !== undefined && typeof b['return_tokens_as_token_ids'] !== 'boolean')
      throw bad('return_tokens_as_token_ids', `must be true or false (got ${show(b['return_tokens_as_token_ids'])})`);
    const maxPos = this.model.cfg.maxPositionEmbeddings;
    for (const [i, p] of prompts.entries())
      if (p.ids.length + maxTokens > maxPos)
        throw bad(
          'max_tokens',
          `prompt ${i} (${p.ids.length} tokens) + max_tokens ${maxTokens} is past the model's maximum context length ${maxPos}`,
        );
    return {
      model,
      adapter,
      prompts,
      n,
      maxTokens,
      temperature,
      topP,
      topK,
      seed,
      sequenceSeeds,
      stop,
      logprobs,
      tokensAsIds,
    };
  }

  private parsePrompts(p: unknown, V: number): Array<{ ids: number[] }> {
    const ids = (x: unknown[], where: string): number[] => {
      if (x.length === 0) throw bad('prompt', `${where} is empty`);
      for (const id of x)
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= V)
          throw bad('prompt', `${where} has token id ${show(id)} outside the vocabulary (0..${V - 1})`);
      return x as number[];
    };
    const text = (s: string, where: string): number[] => {
      if (!this.tokenizer) throw bad('prompt', 'text prompts need tokenizer.json in the model folder; send token ids');
      if (s.length === 0) throw bad('prompt', `${where} is empty`);
      return this.tokenizer.encode(s, { addSpecialTokens: false });
    };
    if (typeof p === 'string') return [{ ids: text(p, 'the prompt') }];
    if (Array.isArray(p) && p.length > 0) {
      if (p.every((x) => typeof x === 'number')) return [{ ids: ids(p, 'the prompt') }];
      return p.map((x, i) => {
        if (typeof x === 'string') return { ids: text(x, `prompt ${i}`) };
        if (Array.isArray(x)) return { ids: ids(x, `prompt ${i}`) };
        throw bad('prompt', `entry ${i} must be a string or a list of token ids (got ${show(x)})`);
      });
    }
    throw bad('prompt', `must be a string, a list of token ids, or a list of those (got ${show(p)})`);
  }

  /** Queues a request for the engine; resolves with its response body. */
  private enqueue(req: CompletionRequest): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { req, resolve, reject } });
      this.schedule();
    });
  }

  /**
   * Runs `pump` soon: at once (setImmediate) while requests decode, after `batchWaitMs` when the
   * engine is idle (so a burst of requests starts together).
   */
  private schedule(): void {
    if (this.timer || this.immediate) return;
    if (this.active.length > 0) this.immediate = setImmediate(() => this.pump());
    else
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, this.o.batchWaitMs ?? 2);
  }

  /**
   * One slice of the scheduler, between two decode steps: reloads at the head of the queue run
   * when nothing decodes; queued completions for the live engine's model join it (its `add`; they
   * are admitted at the next step the KV budget allows); then one decode step, and the requests
   * whose sequences all stopped are answered. Yields to the event loop after every step, so
   * requests are parsed and admitted while others decode.
   */
  private pump(): void {
    this.immediate = null;
    try {
      if (this.active.length === 0) {
        for (let q = this.queue[0]; q && 'reload' in q; q = this.queue[0]) {
          this.queue.shift();
          this.closeEngine();
          try {
            q.resolve(q.reload());
          } catch (e) {
            q.reject(e);
          }
        }
        const head = this.queue[0];
        if (head && 'job' in head && this.engine && head.job.req.adapter !== this.mode) this.closeEngine();
      }
      this.admit();
      if (this.active.length > 0) this.step();
    } catch (e) {
      // the engine failed mid-step: its requests fail with the error, the next ones get a fresh engine
      for (const j of this.active.splice(0)) j.reject(e);
      this.owner.clear();
      this.closeEngine();
    }
    if (this.active.length === 0) this.closeEngine();
    if (this.active.length > 0 || this.queue.length > 0) this.schedule();
  }

  /** Moves the queued completions at the head of the queue that the live engine serves into it. */
  private admit(): void {
    for (let q = this.queue[0]; q && 'job' in q; q = this.queue[0]) {
      const job = q.job;
      const r = job.req;
      if (r.adapter !== null && !this.adapters.has(r.adapter)) {
        this.queue.shift();
        job.reject(new ServeRequestError(404, `model: the adapter ${r.adapter} was unloaded`, 'model'));
        continue;
      }
      if (this.engine && r.adapter !== this.mode) break; // the other model's turn once this one drains
      this.queue.shift();
      const joined = (this.engine?.runningSequences ?? 0) > 0;
      try {
        const engine = this.engine ?? this.openEngine(r.adapter);
        const greedy = r.temperature === 0;
        const prompts: number[][] = [];
        const seeds: bigint[] = [];
        const rng = new Rng(r.seed ?? BigInt('0x' + randomBytes(8).toString('hex')));
        let c = 0;
        for (const p of r.prompts)
          for (let j = 0; j < r.n; j++, c++) {
            prompts.push(p.ids);
            seeds.push(r.sequenceSeeds?.[c] ?? (BigInt(rng.nextUint32()) << 32n) | BigInt(rng.nextUint32()));
          }
        job.ids = engine.add(prompts, {
          maxNewTokens: r.maxTokens,
          seeds: greedy ? undefined : seeds,
          sampling: {
            greedy,
            temperature: greedy ? 1 : r.temperature,
            topP: r.topP,
            topK: Math.max(0, r.topK),
            stopStrings: r.stop,
          },
        });
      } catch (e) {
        job.reject(e);
        continue;
      }
      job.left = job.ids.length;
      for (const i of job.ids) this.owner.set(i, job);
      this.active.push(job);
      if (joined) this.counts.requestsJoinedRunningBatch++;
    }
  }

  private openEngine(adapter: string | null): Engine {
    if (adapter !== null && this.attached !== adapter) this.attach(adapter, this.adapters.get(adapter)!);
    const decode = (ids: number[]) => this.decode(ids);
    this.engine = new Engine(this.model, {
      eosTokenIds: this.eosTokenIds,
      decode: this.tokenizer ? decode : undefined,
      batchSize: this.o.maxNumSeqs,
      kvCacheBytes: this.o.kvCacheBytes,
      weightsDtype: this.o.weightsDtype,
    });
    this.mode = adapter;
    this.counts.engineStarts++;
    return this.engine;
  }

  private closeEngine(): void {
    this.engine?.close();
    this.engine = null;
  }

  /** Runs `fn` on the model the live engine serves: a base request while an adapter is attached runs with it off. */
  private asMode<T>(fn: () => T): T {
    return this.mode === null && this.model.lora ? this.model.lora.disabled(fn) : fn();
  }

  private decode(ids: number[]): string {
    return this.tokenizer?.decode(ids, { skipSpecialTokens: true, dropUnknown: true }) ?? '';
  }

  /** One decode step of the live engine; answers the requests whose sequences all stopped. */
  private step(): void {
    const engine = this.engine!;
    const r = this.asMode(() => engine.step());
    this.counts.decodeSteps++;
    for (const i of r.finished) {
      const job = this.owner.get(i)!;
      this.owner.delete(i);
      if (--job.left! > 0) continue;
      this.active.splice(this.active.indexOf(job), 1);
      try {
        job.resolve(this.asMode(() => this.body(job)));
      } catch (e) {
        job.reject(e);
      }
      for (const id of job.ids!) engine.forget(id);
    }
  }

  /** The response body of a request whose sequences all stopped. */
  private body(job: Job): unknown {
    const r = job.req;
    const engine = this.engine!;
    const greedy = r.temperature === 0;
    const choices: unknown[] = [];
    let completionTokens = 0;
    let at = 0;
    for (const p of r.prompts)
      for (let j = 0; j < r.n; j++, at++) {
        const seq = engine.sequence(job.ids![at]!);
        const tokens = seq.tokens;
        completionTokens += tokens.length;
        let text = this.decode(tokens);
        // OpenAI: the matched stop string is not part of the text
        const cut = Math.min(...r.stop.map((s) => text.indexOf(s)).filter((i) => i >= 0));
        if (Number.isFinite(cut)) text = text.slice(0, cut);
        choices.push({
          index: choices.length,
          text,
          logprobs: r.logprobs === null ? null : this.logprobsOf(r, p.ids, tokens, seq.logps, greedy),
          finish_reason: seq.finished ? 'stop' : 'length',
          stop_reason: null,
        });
      }
    const promptTokens = r.prompts.reduce((a, p) => a + p.ids.length, 0);
    return {
      id: `cmpl-${randomBytes(12).toString('hex')}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: r.model,
      choices,
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    };
  }

  /** OpenAI / vLLM completion log-probs: tokens, token_logprobs, top_logprobs, text_offset. */
  private logprobsOf(
    r: CompletionRequest,
    prompt: number[],
    tokens: number[],
    logps: number[],
    greedy: boolean,
  ): unknown {
    const name = (id: number) =>
      r.tokensAsIds || !this.tokenizer ? `token_id:${id}` : this.tokenizer.decode([id], { skipSpecialTokens: false });
    const names = tokens.map(name);
    const offsets: number[] = [];
    let off = 0;
    for (const id of tokens) {
      offsets.push(off);
      off += this.tokenizer ? this.tokenizer.decode([id], { skipSpecialTokens: true }).length : 0;
    }
    let top: Array<Record<string, number>>;
    if (r.logprobs === 0 || tokens.length === 0) top = tokens.map((_, i) => ({ [names[i]!]: logps[i]! }));
    else top = this.topLogprobs(prompt, tokens, r.logprobs!, greedy ? 1 : r.temperature, name, names, logps);
    return { tokens: names, token_logprobs: logps, top_logprobs: top, text_offset: offsets };
  }

  /** The k most likely tokens at each completion position (a scoring pass), plus the sampled one. */
  private topLogprobs(
    prompt: number[],
    tokens: number[],
    k: number,
    temperature: number,
    name: (id: number) => string,
    names: string[],
    logps: number[],
  ): Array<Record<string, number>> {
    const seq = [...prompt, ...tokens];
    const T = seq.length;
    const V = this.model.cfg.vocabSize;
    const P = prompt.length;
    const logits = noGrad(() =>
      tidy(() =>
        this.model
          .logits(
            Tensor.fromArray(Int32Array.from(seq), [1, T], 'int32'),
            Tensor.fromArray(new Int32Array(T).fill(1), [1, T], 'int32'),
          )
          .toFloat32(),
      ),
    );
    const out: Array<Record<string, number>> = [];
    for (let i = 0; i < tokens.length; i++) {
      const row = logits.subarray((P - 1 + i) * V, (P + i) * V);
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, row[v]! / temperature);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(row[v]! / temperature - max);
      const lse = max + Math.log(sum);
      // the k largest logits (k ≤ 20: an insertion list, not a sort of the vocabulary)
      const best: number[] = [];
      for (let v = 0; v < V; v++) {
        if (best.length === k && row[v]! <= row[best[k - 1]!]!) continue;
        let j = Math.min(best.length, k - 1);
        best[j] = v;
        for (; j > 0 && row[best[j - 1]!]! < row[v]!; j--) [best[j - 1], best[j]] = [v, best[j - 1]!];
      }
      const d: Record<string, number> = {};
      for (const v of best) d[name(v)] = row[v]! / temperature - lse;
      d[names[i]!] = logps[i]!; // the sampled token, always present (vLLM)
      out.push(d);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// request parsing

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new ServeRequestError(413, `request body over ${MAX_BODY / 2 ** 20} MiB`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ServeRequestError(400, `the body is not JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ServeRequestError(400, 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function str(b: Record<string, unknown>, k: string): string {
  const v = b[k];
  if (typeof v !== 'string' || v.length === 0) throw bad(k, `must be a non-empty string (got ${show(v)})`);
  return v;
}

function intField(b: Record<string, unknown>, k: string, dflt: number, min: number, max: number): number {
  const v = b[k];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw bad(k, `must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}] (got ${show(v)})`);
  return v;
}

function numField(b: Record<string, unknown>, k: string, dflt: number, min: number, max: number): number {
  const v = b[k];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw bad(k, `must be a number in ${min === Number.MIN_VALUE ? '(0' : `[${min}`}, ${max}] (got ${show(v)})`);
  return v;
}
