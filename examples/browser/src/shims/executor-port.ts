/**
 * `node:worker_threads` as src/backend/webgpu/executor.mjs sees it when bundled into a Web Worker
 * (gpu-worker.ts): parentPort is the worker's own message port, and workerData.webgpuUrl a module
 * whose create() returns `navigator.gpu` (Dawn's `webgpu` package exports the same create/globals
 * pair in Node), so the executor runs unchanged on the browser's WebGPU.
 */
/// <reference lib="webworker" />
declare const self: DedicatedWorkerGlobalScope;

export const parentPort = {
  on(event: 'message', fn: (data: unknown) => void): void {
    if (event === 'message') self.addEventListener('message', (e) => fn(e.data));
  },
  postMessage(msg: unknown, transfer?: Transferable[]): void {
    self.postMessage(msg, transfer ?? []);
  },
};

const NAVIGATOR_GPU_MODULE =
  'export const globals = {}; export function create() { if (!navigator.gpu) throw new Error("navigator.gpu is undefined (this browser has no WebGPU, or it is disabled)"); return navigator.gpu; }';

export const workerData = {
  webgpuUrl: `data:text/javascript,${encodeURIComponent(NAVIGATOR_GPU_MODULE)}`,
  // every optional feature the executor knows (it requests those the adapter has; device.ts's
  // GPG_RL_WEBGPU_FEATURES is a Node setting)
  features: ['shader-f16', 'subgroups', 'timestamp-query'],
};
