// A deliberately misbehaving verifier worker for the pool tests: "HANG" loops forever, "OOM"
// allocates until the heap cap kills the thread, "THROW" crashes it; anything else answers
// equal when gold === pred.
import { parentPort } from 'node:worker_threads';

parentPort.on('message', (m) => {
  if (m.pred === 'HANG') for (;;);
  if (m.pred === 'OOM') {
    const keep = [];
    for (;;) keep.push(new Array(1e6).fill(Math.random()));
  }
  if (m.pred === 'THROW')
    setImmediate(() => {
      throw new Error('boom');
    });
  else parentPort.postMessage({ id: m.id, equal: m.gold === m.pred });
});
parentPort.postMessage({ ready: true });
