/**
 * @module backend/webgpu/device
 * The main thread's handle on the WebGPU device, which lives in a worker (executor.mjs) because
 * WebGPU reads back asynchronously and the Backend seam is synchronous. Commands are queued here
 * and posted in batches (many dispatches per submit); only read() and sync() block, on a
 * SharedArrayBuffer the worker signals when the batch has run. Errors of a batch (validation,
 * out of memory) surface at the next read() or sync() as a WebGpuOpError naming the kernel.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GpgRlError, WebGpuUnavailableError } from '../../errors.ts';
import type { AdapterInfo } from '../types.ts';
import { withEnables } from './wgsl.ts';

/** Commands queued before a batch is posted without waiting (the worker then runs it while the host goes on). */
const MAX_QUEUED = 256;
/** How long a blocking read waits for the worker before giving up. */
const SYNC_TIMEOUT_MS = 10 * 60 * 1000;

export type { AdapterInfo } from '../types.ts';

/** A kernel or a transfer failed on the device; the message starts with the kernel's name. */
export class WebGpuOpError extends GpgRlError {
  constructor(message: string) {
    super(`webgpu: ${message}`, 'GPG_WEBGPU_OP');
    this.name = 'WebGpuOpError';
  }
}

const INSTALL =
  'on Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers (lavapipe, software Vulkan), or a GPU Vulkan driver';

type Command = unknown[];

/** The optional adapter features the device is created with when the adapter has them. */
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

/**
 * The optional features to request, from GPG_RL_WEBGPU_FEATURES: unset or `all` every one the
 * adapter has, `none` none (the fp32 shared-memory kernels everywhere: how tests check the
 * fallbacks on an adapter that has the features), or a comma-separated list of them.
 */
export function requestedFeatures(env: string | undefined = process.env.GPG_RL_WEBGPU_FEATURES): string[] {
  const v = (env ?? '').trim();
  if (v === '' || v === 'all') return [...OPTIONAL_FEATURES];
  if (v === 'none') return [];
  const list = v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  for (const f of list)
    if (!(OPTIONAL_FEATURES as readonly string[]).includes(f))
      throw new GpgRlError(
        `GPG_RL_WEBGPU_FEATURES: unknown feature "${f}" (give all, none, or a comma-separated list of ${OPTIONAL_FEATURES.join(', ')})`,
        'GPG_BACKEND',
      );
  return list;
}

/** A storage binding: a whole buffer (its id), or a window of one: [id, byteOff (a multiple of 256), bytes]. */
export type Binding = number | [id: number, byteOff: number, bytes: number];

/**
 * The device worker as GpuDevice uses it: node's worker_threads Worker by default, or what a
 * browser bundle's setExecutorSpawner() returns (a Web Worker running executor.mjs on
 * `navigator.gpu`, wrapped to this shape; examples/browser).
 */
export interface ExecutorWorker {
  postMessage(msg: unknown, transfer?: ArrayBuffer[]): void;
  once(event: 'message', fn: (reply: any) => void): unknown;
  once(event: 'error', fn: (e: Error) => void): unknown;
  unref(): void;
  terminate(): Promise<unknown>;
}

let spawnExecutor: (() => ExecutorWorker) | null = null;

/**
 * Where acquire() gets its device worker: by default executor.mjs on Dawn (the `webgpu` package)
 * in a worker_threads Worker; a browser bundle passes a function starting a Web Worker on
 * `navigator.gpu` (the main thread must then itself be a worker: read() blocks in Atomics.wait,
 * which needs cross-origin isolation for SharedArrayBuffer). null restores the default.
 */
export function setExecutorSpawner(spawn: (() => ExecutorWorker) | null): void {
  spawnExecutor = spawn;
}

export class GpuDevice {
  private queued: Command[] = [];
  private transfer: ArrayBuffer[] = [];
  private nextId = 1;
  private compiled = new Set<string>();
  /** Kernels posted since the last sync (named by an error of that batch). */
  private lastOps = new Set<string>();
  private ctrl = new SharedArrayBuffer(8);
  private err = new SharedArrayBuffer(4096);
  /** Counters since acquire: kernels queued, batches posted to the worker, blocking round trips. */
  readonly stats = { dispatches: 0, batches: 0, syncs: 0 };
  private constructor(
    private readonly worker: ExecutorWorker,
    readonly adapter: AdapterInfo,
  ) {}

  /** Starts the worker and acquires an adapter and device; a one-line WebGpuUnavailableError when there is none. */
  static async acquire(): Promise<GpuDevice> {
    const worker = spawnExecutor ? spawnExecutor() : GpuDevice.dawnWorker();
    const reply = await new Promise<{ ok: boolean; message?: string; adapter?: AdapterInfo }>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (e: Error) => resolve({ ok: false, message: e.message }));
      worker.postMessage({ t: 'init' });
    });
    if (!reply.ok || !reply.adapter) {
      await worker.terminate();
      throw new WebGpuUnavailableError(`webgpu backend: no WebGPU adapter (${reply.message}); ${INSTALL}`);
    }
    worker.unref();
    return new GpuDevice(worker, reply.adapter);
  }

  /** executor.mjs on Dawn (the `webgpu` npm package) in a worker_threads Worker. */
  private static dawnWorker(): ExecutorWorker {
    let webgpuUrl: string;
    try {
      webgpuUrl = import.meta.resolve('webgpu');
    } catch {
      try {
        // Node before 20.6 has no import.meta.resolve
        webgpuUrl = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
      } catch {
        throw new WebGpuUnavailableError(
          'webgpu backend: the `webgpu` npm package (Dawn) is not installed: npm install webgpu@0.6.2',
        );
      }
    }
    return new Worker(new URL('./executor.mjs', import.meta.url), {
      workerData: { webgpuUrl, features: requestedFeatures() },
    });
  }

  /** A new storage buffer of `bytes` (a multiple of 4); returns its id. */
  create(bytes: number): number {
    const id = this.nextId++;
    this.push(['create', id, bytes]);
    return id;
  }
  destroy(id: number): void {
    this.push(['destroy', id]);
  }
  /** Host bytes → buffer (copied now, so the caller may reuse `data`); byteOff and length multiples of 4. */
  write(id: number, byteOff: number, data: Uint8Array): void {
    const copy = data.slice();
    this.transfer.push(copy.buffer);
    this.push(['write', id, byteOff, copy]);
  }
  clear(id: number, byteOff: number, bytes: number): void {
    if (bytes > 0) this.push(['clear', id, byteOff, bytes]);
  }
  copy(src: number, srcOff: number, dst: number, dstOff: number, bytes: number): void {
    if (bytes > 0) this.push(['copy', src, srcOff, dst, dstOff, bytes]);
  }
  /**
   * Queues one kernel: pipeline `key` (compiled from `wgsl` on first use), storage buffers (or
   * windows of them) bound at 1..n in order, `uniforms` (≤ 256 bytes) at binding 0, the given workgroup counts.
   */
  dispatch(
    key: string,
    wgsl: () => string,
    op: string,
    ids: Binding[],
    uniforms: Uint32Array,
    wg: [number, number, number],
  ): void {
    if (!this.compiled.has(key)) {
      this.compiled.add(key);
      this.push(['pipeline', key, withEnables(wgsl())]);
    }
    this.stats.dispatches++;
    this.push(['dispatch', key, op, ids, uniforms, wg[0], wg[1], wg[2]]);
  }
  /** Runs everything queued, then returns `bytes` (a multiple of 4) of buffer `id` from byteOff. */
  read(id: number, byteOff: number, bytes: number): Uint8Array {
    if (bytes === 0) {
      this.sync();
      return new Uint8Array(0);
    }
    const result = new SharedArrayBuffer(bytes);
    this.post([id, byteOff, bytes], result);
    return new Uint8Array(result).slice();
  }
  /** Runs everything queued and waits for it (errors surface here). */
  sync(): void {
    this.post(null, null, true);
  }

  private push(c: Command): void {
    this.queued.push(c);
    if (this.queued.length >= MAX_QUEUED) this.post(null, null, false);
  }

  private post(read: [number, number, number] | null, result: SharedArrayBuffer | null, wait = true): void {
    const cmds = this.queued;
    for (const c of cmds) if (c[0] === 'dispatch') this.lastOps.add(c[2] as string);
    const transfer = this.transfer;
    this.queued = [];
    this.transfer = [];
    this.stats.batches++;
    if (!wait) {
      this.worker.postMessage({ cmds, read: null, result: null, ctrl: null, err: null }, transfer);
      return;
    }
    const ctrl = new Int32Array(this.ctrl);
    this.stats.syncs++;
    Atomics.store(ctrl, 0, 0);
    this.worker.postMessage({ cmds, read, result, ctrl: this.ctrl, err: this.err }, transfer);
    if (Atomics.wait(ctrl, 0, 0, SYNC_TIMEOUT_MS) === 'timed-out')
      throw new WebGpuOpError(`the device worker did not answer within ${SYNC_TIMEOUT_MS / 1000} s`);
    const ops = [...this.lastOps].join(', ');
    this.lastOps.clear();
    if (Atomics.load(ctrl, 0) === 2) {
      const text = new TextDecoder().decode(new Uint8Array(this.err, 0, ctrl[1]!).slice());
      // Dawn's message: the first line says what failed, the rest which encoder call
      throw new WebGpuOpError(`${text.split('\n')[0]} (kernels since the last sync: ${ops})`);
    }
  }
}
