/**
 * @module rewards/math-verify/worker
 * Body of one verifier worker thread: answers `{ id, gold, pred, grader, anchored }` messages with
 * `{ id, equal, error? }`. Any exception becomes `equal: false` plus its message; a hang or an
 * out-of-memory crash is handled by the pool, which terminates and replaces this thread.
 */
import { parentPort } from 'node:worker_threads';
import { verify } from './verify.ts';
import { qwenVerify } from './qwen.ts';
import type { WorkerRequest, WorkerResponse } from './pool.ts';

if (!parentPort) throw new Error('rewards/math-verify/worker must run in a worker thread');
const port = parentPort;

// Warm the parser (compute-engine builds its dictionaries on first use) before reporting ready.
try {
  verify('\\frac{1}{2}', '\\sqrt{x}+0.5');
} catch {
  /* warming only */
}

port.on('message', (m: WorkerRequest) => {
  let res: WorkerResponse;
  try {
    const equal =
      m.grader === 'qwen' ? qwenVerify(m.gold, m.pred) : verify(m.gold, m.pred, { extractWithoutAnchor: !m.anchored });
    res = { id: m.id, equal };
  } catch (e) {
    res = {
      id: m.id,
      equal: false,
      error: `${(e as Error)?.name ?? 'Error'}: ${String((e as Error)?.message ?? e).split('\n')[0]}`,
    };
  }
  port.postMessage(res);
});
port.postMessage({ ready: true });
