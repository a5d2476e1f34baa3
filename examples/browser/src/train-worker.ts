/**
 * The training worker: WebGPU first (webgpu-backend.ts), then the demo loop (demo-loop.ts, loaded
 * only now, so src/tensor finds webgpu as its default backend). Posts DemoEvents to the page.
 * Messages in: { t: 'start', options }.
 */
/// <reference lib="webworker" />
import { useBrowserWebGpu } from './webgpu-backend.ts';
import type { BrowserDemoOptions, DemoEvent, WarmStartFiles } from './demo-loop.ts';

/** A warm-start folder served over HTTP (`?warmstart=URL`): config.json, model.safetensors, the tokenizer files. */
async function fetchFolder(url: string): Promise<WarmStartFiles> {
  const base = url.endsWith('/') ? url : url + '/';
  const get = async (name: string, optional = false) => {
    const r = await fetch(new URL(name, new URL(base, self.location.href)));
    if (!r.ok) {
      if (optional) return null;
      throw new Error(`warm start: ${base}${name}: HTTP ${r.status}`);
    }
    return r;
  };
  const [config, generation, tokenizer, tokenizerConfig, weights] = await Promise.all([
    get('config.json').then((r) => r!.json()),
    get('generation_config.json', true).then((r) => r?.json()),
    get('tokenizer.json').then((r) => r!.json()),
    get('tokenizer_config.json').then((r) => r!.json()),
    get('model.safetensors').then((r) => r!.arrayBuffer()),
  ]);
  return { source: base, config, generation, tokenizer, tokenizerConfig, safetensors: new Uint8Array(weights) };
}

declare const self: DedicatedWorkerGlobalScope;

const post = (e: DemoEvent | { t: 'adapter'; adapter: unknown } | { t: 'error'; message: string }) =>
  self.postMessage(e);

type Start = { t: 'start'; options: Partial<BrowserDemoOptions> & { warmstartUrl?: string } };

self.addEventListener('message', async (e: MessageEvent<Start>) => {
  if (e.data?.t !== 'start') return;
  try {
    const { warmstartUrl, ...options } = e.data.options;
    if (warmstartUrl) options.warmStart = await fetchFolder(warmstartUrl);
    const adapter = await useBrowserWebGpu();
    post({ t: 'adapter', adapter });
    const { runBrowserDemo } = await import('./demo-loop.ts');
    await runBrowserDemo(options, post);
  } catch (err) {
    const x = err as Error;
    post({ t: 'error', message: `${x?.name ?? 'Error'}: ${x?.message ?? String(err)}` });
    console.error(err);
  }
});
self.postMessage({ t: 'ready' });
