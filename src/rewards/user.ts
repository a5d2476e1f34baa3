/**
 * @module rewards/user
 * Loads a user reward function from a module file named in the recipe: `.js`/`.mjs`/`.cjs`, or
 * `.ts`/`.mts` (works because gpg-rl runs under tsx). The path is resolved against the recipe's
 * folder; the export is the default export unless `export` names another. The function gets the
 * TRL-like `{ prompts, completions, completionIds, ...rowFields }` and returns one number (or null)
 * per completion, possibly through a Promise. It runs in a worker thread of its own (IsolatedReward),
 * so its input and result must be plain data (structured-cloneable), and module state lives there.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.ts';
import type { RewardFn } from './index.ts';

export interface UserRewardSpec {
  /** module path, relative to the recipe folder */
  path: string;
  /** export name; default 'default' */
  export?: string;
  /** name for logs (`rewards/<name>/mean`); default the export name, or the file's base name for a default export */
  name?: string;
}

const MODULE_EXTS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

/** Heap cap of a user reward's worker thread (MiB): a runaway reward fails alone, not the trainer. */
const REWARD_WORKER_HEAP_MB = 2048;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * One user reward in its own worker thread. Calls are queued one at a time (a module may keep
 * state); `call` rejects when the reward throws, when its worker dies (a crash, an out-of-memory
 * or `process.exit` in the reward), or when `signal` aborts — the worker is then terminated, so a
 * synchronous busy loop is stopped too, and the next call starts a fresh worker.
 */
export class IsolatedReward {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    readonly exportName: string,
    private readonly label: string,
  ) {}

  /** Starts the worker and checks the export; a ConfigError names what is wrong. */
  async start(): Promise<void> {
    const info = await this.spawn();
    if ('loadError' in info) {
      const hint = extname(this.file).toLowerCase().endsWith('ts')
        ? ' (TypeScript modules need the process to run under tsx, as bin/gpg-rl.mjs does)'
        : '';
      throw new ConfigError(`${this.label}: cannot import the module: ${info.loadError}${hint}`);
    }
    if (info.kind === 'undefined') {
      const have = info.exports;
      throw new ConfigError(
        `${this.label}: has no ${this.exportName === 'default' ? 'default export' : `export '${this.exportName}'`} (exports: ${have.join(', ') || 'none'}); set export: to one of them`,
      );
    }
    if (info.kind !== 'function')
      throw new ConfigError(
        `${this.label}: export '${this.exportName}' is ${info.kind === 'null' ? 'null' : `a ${info.kind}`}, not a function`,
      );
  }

  private spawn(): Promise<{ loadError: string } | { kind: string; exports: string[] }> {
    const worker = new Worker(new URL('./user-worker-entry.mjs', import.meta.url), {
      workerData: { file: this.file, exportName: this.exportName },
      resourceLimits: { maxOldGenerationSizeMb: REWARD_WORKER_HEAP_MB },
    });
    this.worker = worker;
    let settle: (v: { loadError: string } | { kind: string; exports: string[] }) => void = () => {};
    const first = new Promise<{ loadError: string } | { kind: string; exports: string[] }>((r) => (settle = r));
    this.ready = first.then(() => undefined);
    worker.on('message', (m: Record<string, unknown>) => {
      if ('ready' in m) return settle({ kind: m.kind as string, exports: m.exports as string[] });
      if ('loadError' in m) return settle({ loadError: m.loadError as string });
      const p = this.pending.get(m.id as number);
      if (!p) return;
      this.pending.delete(m.id as number);
      if ('error' in m) p.reject(new Error(String(m.error)));
      else p.resolve(m.value);
    });
    const onDeath = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      settle({ loadError: why });
      for (const p of this.pending.values()) p.reject(new Error(`its worker ${why}; the worker is restarted`));
      this.pending.clear();
    };
    worker.on('error', (e) => onDeath(`crashed (${e.name}: ${String(e.message).split('\n', 1)[0]})`));
    worker.on('exit', (code) => onDeath(`exited with code ${code}`));
    // Held (ref) only while it starts or a call is pending: an idle worker never keeps the process
    // alive. (unref after the listeners: adding a 'message' listener refs the port again.)
    void first.then(() => {
      if (this.pending.size === 0) worker.unref();
    });
    return first;
  }

  /** Calls the reward on `input` in the worker; rejects on a throw, a dead worker, or `signal`. */
  call(input: unknown, signal?: AbortSignal): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      if (this.closed) throw new Error('the reward was closed');
      signal?.throwIfAborted();
      if (!this.worker) {
        const info = await this.spawn();
        if ('loadError' in info) throw new Error(`its worker cannot start: ${info.loadError}`);
      }
      await this.ready;
      const worker = this.worker;
      if (!worker) throw new Error('its worker stopped while starting');
      const id = this.nextId++;
      return new Promise<unknown>((resolve, reject) => {
        const onAbort = () => {
          // stop the reward wherever it is (a synchronous loop included); the next call respawns
          this.pending.delete(id);
          if (this.worker === worker) this.worker = null;
          void worker.terminate();
          reject(new Error('stopped at its time limit'));
        };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        const idle = () => {
          signal?.removeEventListener('abort', onAbort);
          if (this.pending.size === 0) worker.unref();
        };
        worker.ref();
        this.pending.set(id, {
          resolve: (v) => {
            idle();
            resolve(v);
          },
          reject: (e) => {
            idle();
            reject(e);
          },
        });
        try {
          worker.postMessage({ id, input });
        } catch (e) {
          this.pending.delete(id);
          signal?.removeEventListener('abort', onAbort);
          reject(new Error(`its input cannot be sent to the worker (${(e as Error).message})`));
        }
      });
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    for (const p of this.pending.values()) p.reject(new Error('the reward was closed'));
    this.pending.clear();
    if (w) await w.terminate();
  }
}

/**
 * Loads a user reward into its own worker thread (see IsolatedReward): the time limit then holds
 * for synchronous code too, and a reward that crashes or exits takes down only its worker.
 * Returns the reward function (which takes an optional abort signal) and `close()`.
 */
export async function loadUserReward(
  spec: UserRewardSpec,
  baseDir: string,
): Promise<{ name: string; fn: RewardFn; close: () => Promise<void>; abortable: true }> {
  const exportName = spec.export ?? 'default';
  const file = resolve(baseDir, spec.path);
  const label = `reward_funcs: ${spec.path}`;
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new ConfigError(`${label}: file not found (resolved to ${file}); paths are relative to the recipe's folder`);
  }
  const ext = extname(file).toLowerCase();
  if (!MODULE_EXTS.has(ext)) {
    throw new ConfigError(
      `${label}: '${ext || '(none)'}' is not a JavaScript/TypeScript module; use .js, .mjs, .cjs, .ts or .mts`,
    );
  }
  const iso = new IsolatedReward(file, exportName, label);
  try {
    await iso.start();
  } catch (e) {
    await iso.close();
    throw e;
  }
  const name = spec.name ?? (exportName !== 'default' ? exportName : basename(file, extname(file)));
  const fn: RewardFn = (input, ctx) => iso.call(input, ctx?.signal) as Promise<(number | null)[]>;
  return { name, fn, close: () => iso.close(), abortable: true };
}
