/**
 * The WebGPU backend on `navigator.gpu`, made the default backend. train-worker.ts imports this
 * first, so it runs before src/tensor loads (which would otherwise load the default `cpu` backend,
 * the Node addon). The device worker is gpu-worker.js (src/backend/webgpu/executor.mjs on the
 * browser's WebGPU) instead of a worker_threads Worker on Dawn: device.ts's setExecutorSpawner seam.
 * This worker blocks in Atomics.wait on the device worker's replies, as the Node main thread does,
 * which a dedicated worker may (the page itself may not) once the page is cross-origin isolated.
 */
import { setExecutorSpawner, type ExecutorWorker } from '../../../src/backend/webgpu/device.ts';
import { loadBackend, setDefaultBackend } from '../../../src/backend/index.ts';
import type { AdapterInfo } from '../../../src/backend/webgpu/device.ts';

function spawnGpuWorker(): ExecutorWorker {
  const w = new Worker(new URL('./gpu-worker.js', import.meta.url), { type: 'module', name: 'gpg-rl-gpu' });
  return {
    postMessage: (msg, transfer) => w.postMessage(msg, transfer ?? []),
    once(event: 'message' | 'error', fn: (v: never) => void) {
      const h = (e: Event) => {
        w.removeEventListener(event, h);
        const v =
          event === 'message'
            ? (e as MessageEvent).data
            : new Error((e as ErrorEvent).message || 'the GPU worker failed to start');
        (fn as (v: unknown) => void)(v);
      };
      w.addEventListener(event, h);
    },
    unref() {},
    terminate: async () => w.terminate(),
  } as ExecutorWorker;
}

/** Acquires the adapter and makes webgpu the default backend; the one-line error when there is none. */
export async function useBrowserWebGpu(): Promise<AdapterInfo> {
  if (
    typeof SharedArrayBuffer === 'undefined' ||
    !(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated
  )
    throw new Error(
      'SharedArrayBuffer is unavailable: serve the page cross-origin isolated (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp; serve.mjs does)',
    );
  if (!(navigator as { gpu?: unknown }).gpu)
    throw new Error(
      'this browser has no WebGPU (navigator.gpu is undefined; Chromium: --enable-unsafe-webgpu on Linux)',
    );
  setExecutorSpawner(spawnGpuWorker);
  let b;
  try {
    b = await loadBackend('webgpu');
  } catch (e) {
    // the Node message names Debian packages; here the browser is what lacks an adapter
    const m = (e as Error).message;
    if (/no WebGPU adapter/.test(m))
      throw new Error(
        `this browser gave no WebGPU adapter (${m.replace(/^.*?\(|\);.*$/g, '')}): enable WebGPU (Chromium on Linux: --enable-unsafe-webgpu) or use a browser and machine with it`,
      );
    throw e;
  }
  setDefaultBackend(b);
  return (b as unknown as { adapter: AdapterInfo }).adapter;
}
