/**
 * @module generate/remote
 * Rollouts on OpenAI-compatible completions servers (vLLM, SGLang, `gpg-rl serve`), the way TRL
 * and verl use a vLLM fleet: prompts dealt round-robin over the servers that are up, one
 * `/v1/completions` request per server (its prompts as token-id lists, n = G, the sampling
 * settings, seeds, `logprobs: 0`, `return_tokens_as_token_ids: true`). A failed request is retried
 * on the same server (`retries` times, short backoff), then the server is marked down with a
 * warning and its prompts are dealt over the others; when no server is left the call throws
 * RolloutServersError. A server marked
 * down is tried again at the next weight sync, and counts as up once that succeeds.
 *
 * Without weight syncs (`gpg-rl eval` on a fleet serving a fixed model), `connect` reads each
 * server's model id from `GET /v1/models` (or checks the `model` option is listed there) before
 * the first request.
 *
 * Weight sync (`syncFull` / `syncAdapter`): the caller writes the policy to shared storage, then
 * every server reloads it, SGLang's `POST /update_weights_from_disk {model_path}` for a full HF
 * folder, vLLM's `POST /v1/unload_lora_adapter` + `/v1/load_lora_adapter {lora_name, lora_path}`
 * for a PEFT adapter (requests then name the adapter as their `model`).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { GpgRlError } from '../errors.ts';

/** Every rollout server failed (or none answered at the start); the step cannot be generated. */
export class RolloutServersError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_ROLLOUT_SERVERS');
    this.name = 'RolloutServersError';
  }
}

export interface RemoteSampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  /** 0 = off (sent as -1, vLLM's "off"). */
  topK: number;
  /** The policy's vocabulary: an answer with other ids comes from another model. */
  vocabSize: number;
  /** Token ids that also end a completion, sent as vLLM's / SGLang's `stop_token_ids` when given. */
  stopTokenIds?: number[];
}

export interface RemoteResult {
  tokens: number[][];
  logps: number[][];
  finished: boolean[];
}

interface ServerState {
  url: string;
  /** The id of the served base model (GET /v1/models), the `model` of full-weight requests. */
  modelId: string | null;
  up: boolean;
  lastError: string;
}

export interface RolloutServersOptions {
  retries: number;
  timeoutMs: number;
  log: (line: string) => void;
  /** Wait before retry k (ms); default 200·2^k. Tests set 0. */
  backoffMs?: (k: number) => number;
  /** The `model` of every request (vLLM's `--served-model-name`); default: the id `GET /v1/models` lists. */
  model?: string;
  /** Names the servers in the all-failed error (default `rollout_servers`, the config key). */
  name?: string;
  /** The end of the all-failed error: what to do (default: start them again, or local rollouts). */
  allDownHint?: string;
}

export class RolloutServers {
  private readonly servers: ServerState[];
  /** The adapter name requests use (after syncAdapter), else the base model. */
  private adapter: string | null = null;
  private next = 0;
  /** While start() deals: where each request's "handed to the OS" promise goes. */
  private collectSends: Promise<void>[] | null = null;

  constructor(
    urls: string[],
    private readonly o: RolloutServersOptions,
  ) {
    this.servers = urls.map((u) => ({ url: u.replace(/\/+$/, ''), modelId: null, up: true, lastError: '' }));
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** Servers currently up. */
  get live(): string[] {
    return this.servers.filter((s) => s.up).map((s) => s.url);
  }

  /**
   * Before the first request without a weight sync: every server's `GET /v1/models` (retried; a
   * server that does not answer is marked down with a warning). Each request then names the
   * listed base model, or the `model` option, which the server must list. Throws
   * RolloutServersError when no server answers.
   */
  async connect(): Promise<void> {
    await Promise.all(
      this.servers.map(async (s) => {
        try {
          await this.withRetries(s, () => this.ensureModelId(s));
        } catch (e) {
          if (e instanceof RolloutServersError && e.message.startsWith('rollout server ')) throw e; // a bad answer
          this.markDown(s, e, 'it gets no prompts');
        }
      }),
    );
    if (!this.servers.some((s) => s.up)) throw this.allDown();
  }

  /** Full weights: every server loads the HF folder `dir` (SGLang /update_weights_from_disk). */
  async syncFull(dir: string): Promise<void> {
    this.adapter = null;
    await this.syncEach('update the weights', async (s) => {
      await this.ensureModelId(s);
      await this.post(s, '/update_weights_from_disk', { model_path: dir });
    });
  }

  /** A LoRA policy: every server (re)loads the PEFT adapter folder `dir` as `name` (vLLM). */
  async syncAdapter(name: string, dir: string): Promise<void> {
    this.adapter = name;
    await this.syncEach('load the adapter', async (s) => {
      await this.ensureModelId(s);
      try {
        await this.post(s, '/v1/unload_lora_adapter', { lora_name: name });
      } catch (e) {
        if (!(e instanceof HttpStatusError)) throw e; // "not loaded" is fine; a dead server is not
      }
      await this.post(s, '/v1/load_lora_adapter', { lora_name: name, lora_path: dir });
    });
  }

  /**
   * G completions for each prompt (token ids); `seeds[k]` holds prompt k's G sequence seeds: sent
   * as `sequence_seeds` (gpg-rl serve samples completion j from `new Rng(seeds[k][j])`, as the local
   * engine does) and, folded to one 53-bit `seed`, for vLLM / SGLang (which ignore the extension).
   * Prompts are dealt round-robin over the servers that are up; each server gets one request with
   * its prompts as a list of token-id lists (choices come back prompt-major, vLLM's order), so it
   * can batch all of them. Results in prompt order, G per prompt.
   */
  async generate(prompts: number[][], G: number, sampling: RemoteSampling, seeds: bigint[][]): Promise<RemoteResult> {
    return this.start(prompts, G, sampling, seeds).result;
  }

  /**
   * generate(), in two parts: `sent` resolves once every server's request of the first deal has
   * been handed to the operating system (or failed), `result` as generate()'s promise. The trainer
   * (max_staleness 1) awaits `sent` before its synchronous update blocks the event loop, so the
   * servers generate during the update. Retries and re-dealt shares go out when they can.
   */
  start(
    prompts: number[][],
    G: number,
    sampling: RemoteSampling,
    seeds: bigint[][],
  ): { sent: Promise<void>; result: Promise<RemoteResult> } {
    const out: RemoteResult = {
      tokens: new Array<number[]>(prompts.length * G),
      logps: new Array<number[]>(prompts.length * G),
      finished: new Array<boolean>(prompts.length * G),
    };
    const sends: Promise<void>[] = [];
    // the first deal's requests are created synchronously (up to their first await), so their
    // sends are collected here before `result` is returned
    this.collectSends = sends;
    let result: Promise<RemoteResult>;
    try {
      result = this.deal(
        prompts.map((_, k) => k),
        prompts,
        G,
        sampling,
        seeds,
        out,
      ).then(() => out);
    } finally {
      this.collectSends = null;
    }
    return { sent: Promise.all(sends).then(() => {}), result };
  }

  /** Requests prompts `idx` from the live servers (one request each); a failed server's share is dealt again. */
  private async deal(
    idx: number[],
    prompts: number[][],
    G: number,
    sampling: RemoteSampling,
    seeds: bigint[][],
    out: RemoteResult,
  ): Promise<void> {
    if (idx.length === 0) return;
    const live = this.servers.filter((s) => s.up);
    if (live.length === 0) throw this.allDown();
    const share = live.map(() => [] as number[]);
    idx.forEach((k, i) => share[(i + this.next) % live.length]!.push(k));
    this.next += idx.length;
    await Promise.all(
      live.map(async (s, j) => {
        const mine = share[j]!;
        if (mine.length === 0) return;
        let r: RemoteResult;
        try {
          r = await this.request1(s, mine, prompts, G, sampling, seeds);
        } catch (e) {
          if (e instanceof RolloutServersError && e.message.startsWith('rollout server ')) throw e; // a bad answer
          this.markDown(s, e, 'its prompts go to another server');
          return this.deal(mine, prompts, G, sampling, seeds, out);
        }
        mine.forEach((k, m) => {
          for (let g = 0; g < G; g++) {
            out.tokens[k * G + g] = r.tokens[m * G + g]!;
            out.logps[k * G + g] = r.logps[m * G + g]!;
            out.finished[k * G + g] = r.finished[m * G + g]!;
          }
        });
      }),
    );
  }

  private async request1(
    s: ServerState,
    mine: number[],
    prompts: number[][],
    G: number,
    sampling: RemoteSampling,
    seeds: bigint[][],
  ): Promise<RemoteResult> {
    const sequenceSeeds = mine.flatMap((k) => seeds[k]!);
    const body = await this.withRetries(s, () =>
      this.post(s, '/v1/completions', {
        model: this.adapter ?? this.o.model ?? s.modelId ?? undefined,
        prompt: mine.map((k) => prompts[k]!),
        n: G,
        max_tokens: sampling.maxTokens,
        temperature: sampling.temperature,
        top_p: sampling.topP,
        top_k: sampling.topK > 0 ? sampling.topK : -1,
        seed: Number(sequenceSeeds[0]! & ((1n << 53n) - 1n)),
        sequence_seeds: sequenceSeeds.map(String),
        logprobs: 0,
        return_tokens_as_token_ids: true,
        skip_special_tokens: false,
        ...(sampling.stopTokenIds?.length ? { stop_token_ids: sampling.stopTokenIds } : {}),
      }),
    );
    const r = parseCompletion(s.url, body, mine.length * G);
    for (const t of r.tokens) {
      const bad = t.find((id) => id >= sampling.vocabSize);
      if (bad !== undefined)
        throw new RolloutServersError(
          `rollout server ${s.url}: token id ${bad} is outside the policy's vocabulary (${sampling.vocabSize}); is it serving another model?`,
        );
      if (t.length > sampling.maxTokens)
        throw new RolloutServersError(
          `rollout server ${s.url}: a completion of ${t.length} tokens, over max_tokens ${sampling.maxTokens}`,
        );
    }
    return r;
  }

  private async syncEach(what: string, fn: (s: ServerState) => Promise<void>): Promise<void> {
    await Promise.all(
      this.servers.map(async (s) => {
        try {
          await this.withRetries(s, () => fn(s));
          if (!s.up) this.o.log(`rollout server ${s.url} is back up`);
          s.up = true;
        } catch (e) {
          this.markDown(s, e, `could not ${what}; it gets no prompts until a later weight sync succeeds`);
        }
      }),
    );
    if (!this.servers.some((s) => s.up)) throw this.allDown();
  }

  private async withRetries<T>(s: ServerState, fn: () => Promise<T>): Promise<T> {
    for (let k = 0; ; k++) {
      try {
        return await fn();
      } catch (e) {
        // a 4xx is our request's fault: retrying it elsewhere would fail the same way
        if (e instanceof HttpStatusError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429)
          throw new RolloutServersError(`rollout server ${s.url}: ${e.message}`);
        if (k >= this.o.retries) throw e;
        const wait = this.o.backoffMs?.(k) ?? 200 * 2 ** k;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private markDown(s: ServerState, e: unknown, then: string): void {
    s.lastError = describe(e);
    if (s.up)
      this.o.log(
        `warning: rollout server ${s.url} failed after ${this.o.retries + 1} attempt(s) (${s.lastError}); ${then}`,
      );
    s.up = false;
  }

  private allDown(): RolloutServersError {
    return new RolloutServersError(
      `${this.o.name ?? 'rollout_servers'}: all ${this.servers.length} server(s) failed (${this.servers.map((s) => `${s.url}: ${s.lastError || 'down'}`).join('; ')}); ${this.o.allDownHint ?? 'start them again, or set rollout_servers: [] for local rollouts'}`,
    );
  }

  private async ensureModelId(s: ServerState): Promise<void> {
    if (s.modelId !== null) return;
    const r = (await this.request(s, 'GET', '/v1/models')) as { data?: Array<{ id?: unknown; parent?: unknown }> };
    const want = this.o.model;
    if (want !== undefined) {
      const ids = (r.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
      if (!ids.includes(want))
        throw new RolloutServersError(
          `rollout server ${s.url}: does not serve the model \`${want}\` (GET /v1/models lists ${ids.length ? ids.join(', ') : 'none'})`,
        );
      s.modelId = want;
      return;
    }
    const base = r.data?.find((m) => typeof m.id === 'string' && (m.parent === null || m.parent === undefined));
    if (!base) throw new RolloutServersError(`rollout server ${s.url}: GET /v1/models lists no model`);
    s.modelId = base.id as string;
  }

  private post(s: ServerState, path: string, body: unknown): Promise<unknown> {
    return this.request(s, 'POST', path, body);
  }

  /**
   * One HTTP request (node:http, so the moment the request has been handed to the OS is known:
   * see start()); a non-2xx answer is an HttpStatusError with the server's message.
   */
  private async request(s: ServerState, method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const url = new URL(s.url + path);
    let sent: (() => void) | undefined;
    this.collectSends?.push(new Promise<void>((r) => (sent = r)));
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        {
          method,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : undefined,
          signal: AbortSignal.timeout(this.o.timeoutMs),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', (e) => {
        sent?.();
        reject(e);
      });
      req.end(payload, () => sent?.());
    });
    if (status < 200 || status >= 300) {
      let msg = text.slice(0, 300);
      try {
        const j = JSON.parse(text) as { error?: { message?: string }; message?: string; detail?: string };
        msg = j.error?.message ?? j.message ?? j.detail ?? msg;
      } catch {
        // not JSON: the raw text
      }
      throw new HttpStatusError(status, `${method} ${path} → ${status}: ${msg}`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpStatusError(502, `${method} ${path} answered non-JSON: ${text.slice(0, 100)}`);
    }
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: { code?: string; message?: string; name?: string } }).cause;
    if (e.name === 'TimeoutError' || (e.name === 'AbortError' && cause?.name === 'TimeoutError')) return 'timed out';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ABORT_ERR') return code;
    return cause?.code ?? cause?.message ?? e.message;
  }
  return String(e);
}

/** Token ids, log-probs and finish of the n choices (vLLM's `token_id:<id>` tokens). */
export function parseCompletion(url: string, body: unknown, n: number): RemoteResult {
  const fail = (what: string) => new RolloutServersError(`rollout server ${url}: ${what}`);
  const choices = (body as { choices?: unknown }).choices;
  if (!Array.isArray(choices) || choices.length !== n)
    throw fail(`expected ${n} choices, got ${Array.isArray(choices) ? choices.length : 'none'}`);
  const out: RemoteResult = { tokens: [], logps: [], finished: [] };
  const sorted = [...choices].sort(
    (a, b) => ((a as { index: number }).index ?? 0) - ((b as { index: number }).index ?? 0),
  );
  for (const c of sorted as Array<{
    logprobs?: { tokens?: unknown[]; token_logprobs?: unknown[] } | null;
    finish_reason?: unknown;
  }>) {
    const lp = c.logprobs;
    if (!lp || !Array.isArray(lp.tokens) || !Array.isArray(lp.token_logprobs))
      throw fail('a choice has no logprobs.tokens / token_logprobs (does it support logprobs?)');
    const ids = lp.tokens.map((t) => {
      const m = typeof t === 'string' ? /^token_id:(\d+)$/.exec(t) : null;
      if (!m)
        throw fail(
          `token ${JSON.stringify(t)} is not "token_id:<id>" (the server ignored return_tokens_as_token_ids; vLLM ≥ 0.6 supports it)`,
        );
      return Number(m[1]);
    });
    out.tokens.push(ids);
    out.logps.push(lp.token_logprobs.map((x) => (typeof x === 'number' ? x : NaN)));
    out.finished.push(c.finish_reason === 'stop');
  }
  return out;
}
