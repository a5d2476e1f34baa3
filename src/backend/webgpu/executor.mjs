// @ts-check
/**
 * @module backend/webgpu/executor
 * The worker thread that owns the WebGPU device (Dawn's `webgpu` package). WebGPU reads back
 * asynchronously and the Backend seam is synchronous, so the device lives here and the main thread
 * (device.ts) posts batches of commands and blocks on a SharedArrayBuffer (Atomics.wait) only when
 * the host asks for data. Kernel logic (WGSL, dispatch sizes) stays on the main thread: this file
 * only creates buffers and pipelines and replays commands:
 *   ['create', id, bytes]                      storage buffer (STORAGE | COPY_SRC | COPY_DST)
 *   ['destroy', id]
 *   ['write', id, byteOff, Uint8Array]         queue.writeBuffer (ends the open command buffer first)
 *   ['clear', id, byteOff, bytes]
 *   ['copy', src, srcOff, dst, dstOff, bytes]
 *   ['pipeline', key, wgsl]                    compiled once; a dispatch names it by key
 *   ['dispatch', key, op, [ids], Uint32Array uniforms (≤ 256 B), wx, wy, wz]
 *                                              an id binds the whole buffer, [id, byteOff, bytes] a window
 *   ['read', id, byteOff, bytes]               into the batch's shared result buffer
 * One command buffer (one compute pass) holds every dispatch up to the next write, read or the end
 * of the batch; the uniforms of all its dispatches go up in one writeBuffer into a 256 KiB ring.
 * Each dispatch runs in its own validation error scope, so a failure names the kernel.
 */
import { parentPort, workerData } from 'node:worker_threads';

const UNIFORM_STRIDE = 256;
/** Limits requested at the adapter's maximum (the device gets what the hardware has). */
const REQUESTED = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
];
/** Limits recorded in AdapterInfo (the device's values): the requested ones and the binding alignment. */
const REPORTED = new Set([...REQUESTED, 'minStorageBufferOffsetAlignment']);
const RING_BYTES = 256 * 1024;

/** @type {any} */ let gpu = null;
/** @type {any} */ let device = null;
/** @type {Map<number, any>} */ const buffers = new Map();
/** @type {Map<string, any>} */ const pipelines = new Map();
/** @type {any} */ let ring = null;
const staging = new Uint8Array(RING_BYTES);
let cursor = 0;
/** @type {any} */ let encoder = null;
/** @type {any} */ let pass = null;
/** @type {any} */ let readback = null;
let readbackBytes = 0;
/** @type {Promise<string | null>[]} */ let scopes = [];
/** First error since the last sync (reported there). */
let failure = '';

async function init() {
  const { create, globals } = await import(workerData.webgpuUrl);
  Object.assign(globalThis, globals);
  gpu = create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { ok: false, message: 'requestAdapter() returned null' };
  // the optional features the host asked for (GPG_RL_WEBGPU_FEATURES, device.ts) that the adapter has
  const want = workerData.features.filter((/** @type {string} */ f) => adapter.features.has(f));
  // the adapter's own maxima, not WebGPU's defaults (128 MiB bindings, 256 MiB buffers, ...)
  const limits = {};
  for (const k of REQUESTED) if (typeof adapter.limits[k] === 'number') limits[k] = adapter.limits[k];
  device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits: limits });
  device.addEventListener('uncapturederror', (/** @type {any} */ e) => {
    failure ||= e.error?.message ?? String(e);
  });
  ring = device.createBuffer({ size: RING_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const info = adapter.info;
  return {
    ok: true,
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      features: [...device.features].sort(),
      limits: Object.fromEntries([...REPORTED].map((k) => [k, device.limits[k]])),
    },
  };
}

function openPass() {
  encoder ??= device.createCommandEncoder();
  pass ??= encoder.beginComputePass();
  return pass;
}
function openEncoder() {
  if (pass) {
    pass.end();
    pass = null;
  }
  encoder ??= device.createCommandEncoder();
  return encoder;
}
/** Submits what is recorded (uniforms first). */
function submit() {
  if (pass) {
    pass.end();
    pass = null;
  }
  if (cursor) device.queue.writeBuffer(ring, 0, staging, 0, cursor);
  cursor = 0;
  if (encoder) device.queue.submit([encoder.finish()]);
  encoder = null;
}

/** @param {any[]} c */
function run(c) {
  switch (c[0]) {
    case 'create':
      buffers.set(
        c[1],
        device.createBuffer({
          size: c[2],
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        }),
      );
      return;
    case 'destroy':
      submit();
      buffers.get(c[1]).destroy();
      buffers.delete(c[1]);
      return;
    case 'write':
      submit();
      device.queue.writeBuffer(buffers.get(c[1]), c[2], c[3]);
      return;
    case 'clear':
      openEncoder().clearBuffer(buffers.get(c[1]), c[2], c[3]);
      return;
    case 'copy':
      openEncoder().copyBufferToBuffer(buffers.get(c[1]), c[2], buffers.get(c[3]), c[4], c[5]);
      return;
    case 'pipeline': {
      const module = device.createShaderModule({ code: c[2], label: c[1] });
      pipelines.set(c[1], device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } }));
      return;
    }
    case 'dispatch': {
      const [, key, op, ids, uniforms, wx, wy, wz] = c;
      if (cursor + UNIFORM_STRIDE > RING_BYTES) submit();
      const off = cursor;
      staging.set(new Uint8Array(uniforms.buffer, uniforms.byteOffset, uniforms.byteLength), off);
      cursor += UNIFORM_STRIDE;
      const pipe = pipelines.get(key);
      device.pushErrorScope('validation');
      const entries = [{ binding: 0, resource: { buffer: ring, offset: off, size: UNIFORM_STRIDE } }];
      for (let i = 0; i < ids.length; i++) {
        const b = ids[i];
        // a number binds the whole buffer; [id, byteOff, bytes] a window of it (a tensor over the binding limit)
        entries.push({
          binding: i + 1,
          resource:
            typeof b === 'number'
              ? { buffer: buffers.get(b) }
              : { buffer: buffers.get(b[0]), offset: b[1], size: b[2] },
        });
      }
      const group = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
      const p = openPass();
      p.setPipeline(pipe);
      p.setBindGroup(0, group);
      p.dispatchWorkgroups(wx, wy, wz);
      scopes.push(device.popErrorScope().then((/** @type {any} */ e) => (e ? `${op}: ${e.message}` : null)));
      return;
    }
    default:
      throw new Error(`webgpu executor: unknown command ${c[0]}`);
  }
}

/** @param {number} bytes */
function readbackBuffer(bytes) {
  if (readbackBytes < bytes) {
    readback?.destroy();
    readbackBytes = Math.max(bytes, 2 * readbackBytes, 1 << 16);
    readback = device.createBuffer({ size: readbackBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }
  return readback;
}

/**
 * @param {{cmds: any[][], read: [number, number, number] | null, result: SharedArrayBuffer | null,
 *          ctrl: SharedArrayBuffer | null, err: SharedArrayBuffer | null}} msg
 */
async function batch(msg) {
  let read = null;
  try {
    device.pushErrorScope('out-of-memory');
    try {
      for (const c of msg.cmds) run(c);
    } catch (e) {
      failure ||= /** @type {Error} */ (e).message;
    }
    if (msg.read && !failure) {
      const [id, byteOff, bytes] = msg.read;
      const rb = readbackBuffer(bytes);
      openEncoder().copyBufferToBuffer(buffers.get(id), byteOff, rb, 0, bytes);
      read = { rb, bytes };
    }
    submit();
    const oom = await device.popErrorScope();
    if (oom) failure ||= `out of GPU memory: ${oom.message}`;
    const done = scopes;
    scopes = [];
    for (const m of await Promise.all(done)) if (m) failure ||= m;
    if (!msg.ctrl) return;
    if (read && !failure) {
      await read.rb.mapAsync(GPUMapMode.READ, 0, read.bytes);
      new Uint8Array(/** @type {SharedArrayBuffer} */ (msg.result)).set(
        new Uint8Array(read.rb.getMappedRange(0, read.bytes)),
      );
      read.rb.unmap();
    } else if (!read) {
      await device.queue.onSubmittedWorkDone();
    }
  } catch (e) {
    failure ||= /** @type {Error} */ (e)?.message ?? String(e);
  }
  if (!msg.ctrl) return;
  // the main thread is blocked in Atomics.wait until this store
  const ctrl = new Int32Array(msg.ctrl);
  if (failure) {
    const text = new TextEncoder().encode(failure).subarray(0, /** @type {SharedArrayBuffer} */ (msg.err).byteLength);
    new Uint8Array(/** @type {SharedArrayBuffer} */ (msg.err)).set(text);
    ctrl[1] = text.length;
    failure = '';
    Atomics.store(ctrl, 0, 2);
  } else Atomics.store(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
}

let chain = Promise.resolve();
parentPort?.on('message', (msg) => {
  if (msg.t === 'init') {
    init().then(
      (r) => parentPort?.postMessage(r),
      (e) => parentPort?.postMessage({ ok: false, message: e?.message ?? String(e) }),
    );
    return;
  }
  // batches run strictly in order: a batch awaiting its readback holds the next one
  chain = chain
    .then(() => batch(msg))
    .catch((e) => {
      failure ||= e?.message ?? String(e);
    });
});
