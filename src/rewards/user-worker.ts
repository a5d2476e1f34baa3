/**
 * @module rewards/user-worker
 * Body of a user reward's worker thread (see rewards/user.ts): imports the module named in
 * `workerData`, reports `{ ready, kind, exports }` (or `{ loadError }`), then answers
 * `{ id, input }` calls with `{ id, value }` or `{ id, error }`. A reward that loops, crashes or
 * calls `process.exit` takes down only this thread; the trainer's side enforces the time limit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

if (!parentPort) throw new Error('rewards/user-worker must run in a worker thread');
const port = parentPort;
const { file, exportName } = workerData as { file: string; exportName: string };

const oneLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n', 1)[0]!;

let fn: ((input: unknown) => unknown) | null = null;
try {
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const value = mod[exportName];
  port.postMessage({
    ready: true,
    kind: value === null ? 'null' : typeof value,
    exports: Object.keys(mod).filter((k) => k !== '__esModule'),
  });
  if (typeof value === 'function') fn = value as (input: unknown) => unknown;
} catch (e) {
  port.postMessage({ loadError: oneLine(e) });
}

port.on('message', async (m: { id: number; input: unknown }) => {
  try {
    if (!fn) throw new Error('the reward function is not loaded');
    const value = await fn(m.input);
    try {
      port.postMessage({ id: m.id, value });
    } catch (e) {
      port.postMessage({ id: m.id, error: `returned a value that cannot be passed back (${oneLine(e)})` });
    }
  } catch (e) {
    port.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
