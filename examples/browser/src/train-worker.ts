/**
 * The training worker: WebGPU first (webgpu-backend.ts), then the demo loop (demo-loop.ts, loaded
 * only now, so src/tensor finds webgpu as its default backend). Posts DemoEvents to the page.
 * Messages in: { t: 'start', options }.
 */
/// <reference lib="webworker" />
import { useBrowserWebGpu } from './webgpu-backend.ts';
import type { BrowserDemoOptions, DemoEvent } from './demo-loop.ts';

declare const self: DedicatedWorkerGlobalScope;

const post = (e: DemoEvent | { t: 'adapter'; adapter: unknown } | { t: 'error'; message: string }) =>
  self.postMessage(e);

self.addEventListener('message', async (e: MessageEvent<{ t: 'start'; options: Partial<BrowserDemoOptions> }>) => {
  if (e.data?.t !== 'start') return;
  try {
    const adapter = await useBrowserWebGpu();
    post({ t: 'adapter', adapter });
    const { runBrowserDemo } = await import('./demo-loop.ts');
    await runBrowserDemo(e.data.options, post);
  } catch (err) {
    const x = err as Error;
    post({ t: 'error', message: `${x?.name ?? 'Error'}: ${x?.message ?? String(err)}` });
    console.error(err);
  }
});
self.postMessage({ t: 'ready' });
