/**
 * The device worker in the browser: src/backend/webgpu/executor.mjs itself, bundled with
 * `node:worker_threads` replaced by shims/executor-port.ts (its parentPort is this worker's port,
 * its GPU `navigator.gpu`). The training worker (train-worker.ts) starts it and blocks on its
 * SharedArrayBuffer replies exactly as the Node main thread blocks on the Dawn worker.
 */
import '../../../src/backend/webgpu/executor.mjs';
