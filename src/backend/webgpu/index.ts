/**
 * @module backend/webgpu
 * The WebGPU backend (Dawn through the `webgpu` package; in CI Mesa's lavapipe): buffers are
 * pooled GPU storage buffers, kernels are WGSL compute shaders queued in batches on the device
 * worker (device.ts), and the host blocks only when it reads (download, gradnormSumsq).
 *  - Pool: a freed buffer goes back to a free list per size class (four classes per power of two),
 *    so a training step reuses the same GPU buffers instead of creating and destroying them per op;
 *    queue order makes reuse safe (a later kernel cannot overtake an earlier one). Cached bytes are
 *    capped (GPG_RL_ALLOC_CACHE_MB, default 1024); releaseCache() destroys them.
 *  - Kernels: every op of the seam has one; KERNELS lists them (a kernel suite skips, saying which,
 *    on a backend whose supports() lacks one of its ops).
 *  - Limits: the device is created with the adapter's own maxima (executor.mjs). A buffer may be as
 *    large as maxBufferSize (4 GiB on lavapipe); one storage binding only maxStorageBufferBindingSize
 *    (128 MiB on lavapipe, 2 GiB on the NVIDIA adapter measured; GPG_RL_WEBGPU_MAX_BINDING_MB lowers
 *    it, for tests). The ops that touch a big tensor (a 0.5B model's 545 MB embedding: its gather
 *    and scatter-add, the LM head's products, the optimizer step, zeroing, clipping, casts,
 *    copyRows) bind windows of it, each under the limit, over several dispatches: elementwise ops
 *    (dropout too) in element ranges, the embedding ops in vocabulary row ranges, gemm in blocks
 *    of M, N and K (a block that is not contiguous is gathered into a temporary with copyRows, its
 *    result scattered back; a batched product one item at a time). The row kernels (RMSNorm, RoPE,
 *    sumRows, the log-softmax family, KL, sampling) and attention run in pieces of rows or batch
 *    items (split(): each operand's part a window, or a pooled copy where it would not start on
 *    the 256-byte binding alignment); the paged-KV write in windows of pool slots; paged attention
 *    over pools past the limit gathers each piece's blocks into compact pools. Only a single unit
 *    past the limit (one row of logits, one sequence of attention, one vocabulary row) refuses, in
 *    one line naming the op, the operand, its size and the limit.
 *  - Adapter features: `shader-f16`, `subgroups` and `timestamp-query` are enabled when present
 *    (AdapterInfo.features; GPG_RL_WEBGPU_FEATURES=none or a list narrows them, device.ts). With
 *    `subgroups` the row reductions (wgsl.ts REDUCE: RMSNorm forward and backward, the chunked
 *    log-softmax + gather and entropy, the KL kernels) reduce inside subgroups first
 *    (REDUCE_SUBGROUPS), chosen when the backend is created; without it, the workgroup-memory tree.
 *    Attention keeps its row max / sum per invocation (one invocation owns a query row, so there
 *    is no cross-invocation reduction to speed up) and the grad norm is summed in double on the host.
 *    `shader-f16` is not used: the seam's half type is bfloat16 (fp32's exponent range), which WGSL
 *    stores two per u32 and widens with one shift, at f16's memory cost; f16 storage would change
 *    the numbers the CPU backend gives (range 6.5e4, 10-bit mantissa) and needs its own dtype.
 */
import type { AllocatorStats, Backend, BackendInfo, DType, DeviceBuffer, GemmArgs, Kernels } from '../types.ts';
import {
  checkAdamw,
  checkDropout,
  checkGemm,
  checkHeads,
  checkIds,
  checkPagedRows,
  checkPositions,
  checkRope,
  checkSampling,
  checkSlots,
  checkTargets,
  fail,
  finiteScale,
  need as checkNeed,
  positiveTemperature,
} from '../checks.ts';
import { GpuDevice, WebGpuOpError, type AdapterInfo, type Binding } from './device.ts';
import { grid1d, rows as rowGrid, setKernelFeatures, uniforms } from './wgsl.ts';
import * as ew from './kernels/elementwise.ts';
import { TILE, gemm, gemmKey, type GemmVariant } from './kernels/gemm.ts';
import * as norm from './kernels/rmsnorm.ts';
import * as lay from './kernels/layers.ts';
import * as sm from './kernels/softmax.ts';
import * as at from './kernels/attention.ts';
import * as pg from './kernels/paged.ts';
import * as smp from './kernels/sample.ts';

export type { AdapterInfo } from './device.ts';

/** 1/τ rounded to float32, as native/cpu forms it. */
const invT = (t: number): number => Math.fround(1 / t);

/** Attention pipelines per head-dim bucket (D rounded up to 32). */
const dmax = (D: number): number => Math.ceil(D / 32) * 32;

const ELEM_BYTES: Record<DType, number> = { float32: 4, int32: 4, bfloat16: 2 };

/** The name each buffer was last checked under (need()): what a refusal over the binding limit calls it. */
const names = new WeakMap<DeviceBuffer, string>();

/** checks.ts's need(), remembering the operand's name for the binding-limit message. */
function need(op: string, name: string, b: DeviceBuffer | null | undefined, n: number, dtype?: DType): void {
  checkNeed(op, name, b, n, dtype);
  if (b) names.set(b, name);
}

/** need() for each [name, buffer, elements, dtype] in order. */
function needAll(
  op: string,
  list: readonly (readonly [string, DeviceBuffer | null | undefined, number, DType?])[],
): void {
  for (const [name, b, n, dtype] of list) need(op, name, b, n, dtype);
}

/** The bytes of its GPU buffer a tensor uses (whole 32-bit words). */
const used = (b: GpuBuffer): number => Math.ceil(b.bytes / 4) * 4;
const mib = (bytes: number): string =>
  bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
/** Storage binding offsets are multiples of this (WebGPU's minStorageBufferOffsetAlignment is at most 256). */
const ALIGN = 256;
/** A window of a buffer for one binding: [byteOff, bytes]. */
type Win = [byteOff: number, bytes: number];

class GpuBuffer implements DeviceBuffer {
  freed = false;
  /** int32 buffers: the host's copy of what was uploaded, dropped when a kernel or copy writes the buffer. */
  host: Int32Array | null = null;
  constructor(
    readonly backend: WebGpuBackend,
    /** GPU buffer id (pooled: reused by a later allocation once this one is freed). */
    readonly id: number,
    /** Size class of the GPU buffer (≥ the bytes this buffer uses). */
    readonly capacity: number,
    readonly dtype: DType,
    readonly numel: number,
  ) {}
  get bytes(): number {
    return this.numel * ELEM_BYTES[this.dtype];
  }
}

const g = (b: DeviceBuffer): GpuBuffer => {
  const x = b as GpuBuffer;
  if (x.freed) throw new Error(`webgpu: use of a freed ${x.dtype}[${x.numel}] buffer`);
  return x;
};

/** The bytes a pooled GPU buffer has for a request: 256-byte steps up to 4 KiB, then four classes per power of two. */
export function sizeClass(bytes: number): number {
  const b = Math.max(4, bytes);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(b - 1)) - 2);
  return Math.ceil(b / step) * step;
}

/** Round-to-nearest-even float32 → bfloat16 bits (as native/cpu and the WGSL cast do). */
function toBf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i]!;
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** The ops with a WGSL kernel (every op of Kernels today; kernel suites check this list). */
export const KERNELS: ReadonlySet<keyof Kernels> = new Set<keyof Kernels>([
  'fill',
  'copy',
  'copyRows',
  'castF32Bf16',
  'castBf16F32',
  'addForward',
  'axpy',
  'scale',
  'sumRows',
  'gemm',
  'swigluForward',
  'swigluBackward',
  'rmsnormForward',
  'rmsnormBackward',
  'gradnormSumsq',
  'dropoutForward',
  'dropoutBackward',
  'embeddingForward',
  'embeddingBackward',
  'ropeForward',
  'ropeBackward',
  'adamwStep',
  'klForward',
  'klHvp',
  'logprobsForward',
  'logprobsBackward',
  'logprobsEntropyBackward',
  'attentionForward',
  'attentionBackward',
  'pagedKvWrite',
  'pagedAttentionForward',
  'sampleTokens',
]);

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private live = 0;
  private pool = new Map<number, number[]>();
  private cached = 0;
  private mapped = 0;
  private hits = 0;
  private misses = 0;
  private readonly cap = Number(process.env.GPG_RL_ALLOC_CACHE_MB ?? 1024) * 2 ** 20;
  private readonly dummies: number[] = [];
  /** Bytes one storage binding may span (the device's maxStorageBufferBindingSize, or less by GPG_RL_WEBGPU_MAX_BINDING_MB). */
  private bindLimit: number;
  /** Bytes one buffer may hold (the device's maxBufferSize). */
  private readonly bufferLimit: number;

  constructor(readonly device: GpuDevice) {
    // kernel variants by the device's features (their WGSL is built at pipeline creation)
    setKernelFeatures({ subgroups: device.adapter.features.includes('subgroups') });
    const l = device.adapter.limits;
    this.bufferLimit = l.maxBufferSize ?? 2 ** 28;
    const env = Number(process.env.GPG_RL_WEBGPU_MAX_BINDING_MB);
    this.bindLimit = Math.min(
      l.maxStorageBufferBindingSize ?? 2 ** 27,
      this.bufferLimit,
      env > 0 ? Math.floor(env * 2 ** 20) : Infinity,
    );
  }

  /** The bytes one storage binding may span now. */
  get bindingLimit(): number {
    return this.bindLimit;
  }
  /**
   * Lowers (or restores) the binding limit in effect, so tests reach the split paths with small
   * tensors; at most the device's own limit, at least 4 KiB, rounded down to 256 bytes. Returns the previous.
   */
  setBindingLimit(bytes: number): number {
    const prev = this.bindLimit;
    const dev = Math.min(this.adapter.limits.maxStorageBufferBindingSize ?? 2 ** 27, this.bufferLimit);
    this.bindLimit = Math.max(4096, Math.floor(Math.min(bytes, dev) / 256) * 256);
    return prev;
  }

  /** Adapter name, vendor, features and limits (for logs, trainer_config.json and bench). */
  get adapter(): AdapterInfo {
    return this.device.adapter;
  }

  /** The adapter: name, vendor, architecture, the features enabled and the device's limits. */
  describe(): BackendInfo {
    const a = this.adapter;
    const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter';
    const mib = (k: string) => (a.limits[k] === undefined ? '?' : `${Math.floor(a.limits[k]! / 2 ** 20)} MiB`);
    return {
      name: this.name,
      summary: `${name} (vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}; features: ${a.features.join(', ') || 'none'}; maxStorageBufferBindingSize ${mib('maxStorageBufferBindingSize')}, maxBufferSize ${mib('maxBufferSize')})`,
      adapter: { ...a, features: [...a.features], limits: { ...a.limits } },
    };
  }

  /** True when `op` has a WGSL kernel here. */
  supports(op: keyof Kernels): boolean {
    return KERNELS.has(op);
  }

  // ---- memory
  allocate(dtype: DType, numel: number, zero = false): DeviceBuffer {
    const bytes = numel * ELEM_BYTES[dtype];
    const limit = this.bufferLimit;
    if (bytes > limit)
      throw new WebGpuOpError(
        `allocate ${dtype}[${numel}] (${mib(bytes)}) exceeds this adapter's maxBufferSize (${mib(limit)})`,
      );
    const cls = Math.max(Math.ceil(bytes / 4) * 4, Math.min(sizeClass(bytes), Math.floor(limit / 4) * 4));
    let id = this.pool.get(cls)?.pop();
    if (id !== undefined) {
      this.hits++;
      this.cached -= cls;
    } else {
      this.misses++;
      id = this.device.create(cls);
      this.mapped += cls;
    }
    this.live += bytes;
    if (zero) this.device.clear(id, 0, cls);
    const buf = new GpuBuffer(this, id, cls, dtype, numel);
    if (zero && dtype === 'int32') buf.host = new Int32Array(numel);
    return buf;
  }

  free(buf: DeviceBuffer): void {
    const b = buf as GpuBuffer;
    if (b.freed) return;
    b.freed = true;
    this.live -= b.bytes;
    if (this.cached + b.capacity > this.cap) {
      this.device.destroy(b.id);
      this.mapped -= b.capacity;
      return;
    }
    let list = this.pool.get(b.capacity);
    if (!list) this.pool.set(b.capacity, (list = []));
    list.push(b.id);
    this.cached += b.capacity;
  }

  liveBytes(): number {
    return this.live;
  }
  allocatorStats(): AllocatorStats {
    return {
      cachedBytes: this.cached,
      mappedBytes: this.mapped,
      hits: this.hits,
      misses: this.misses,
      capBytes: this.cap,
    };
  }
  releaseCache(): void {
    for (const ids of this.pool.values()) for (const id of ids) this.device.destroy(id);
    this.mapped -= this.cached;
    this.cached = 0;
    this.pool.clear();
    this.device.sync();
  }
  releasePackedWeights(): void {
    // no packed copies: generation products read the weight itself
  }
  setNumThreads(_n: number): number {
    return 1;
  }
  getNumThreads(): number {
    return 1;
  }

  upload(buf: DeviceBuffer, data: Float32Array | Int32Array, offset = 0): void {
    const b = g(buf);
    if (offset < 0 || offset + data.length > b.numel)
      throw new RangeError(`webgpu upload: ${data.length} elements at ${offset} into ${b.dtype}[${b.numel}]`);
    if (b.dtype !== 'bfloat16') {
      this.device.write(b.id, offset * 4, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (b.dtype === 'int32' && data instanceof Int32Array) {
        if (offset === 0 && data.length === b.numel) b.host = data.slice();
        else if (b.host) b.host.set(data, offset);
      } else b.host = null;
      return;
    }
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    const halves = toBf16Bits(f);
    const w0 = offset >> 1;
    const w1 = (offset + f.length + 1) >> 1;
    const words = new Uint16Array((w1 - w0) * 2);
    if (offset % 2 === 1 || (offset + f.length) % 2 === 1)
      words.set(new Uint16Array(this.device.read(b.id, w0 * 4, (w1 - w0) * 4).buffer));
    words.set(halves, offset - 2 * w0);
    this.device.write(b.id, w0 * 4, new Uint8Array(words.buffer));
  }

  download(buf: DeviceBuffer, offset = 0, count?: number): Float32Array | Int32Array {
    const b = g(buf);
    const n = count ?? b.numel - offset;
    if (offset < 0 || n < 0 || offset + n > b.numel)
      throw new RangeError(`webgpu download: ${n} elements at ${offset} from ${b.dtype}[${b.numel}]`);
    if (b.dtype !== 'bfloat16') {
      const bytes = this.device.read(b.id, offset * 4, n * 4);
      return b.dtype === 'int32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
    }
    const w0 = offset >> 1;
    const w1 = (offset + n + 1) >> 1;
    const halves = new Uint16Array(this.device.read(b.id, w0 * 4, (w1 - w0) * 4).buffer);
    const out = new Float32Array(n);
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = halves[offset - 2 * w0 + i]! << 16;
    return out;
  }

  uploadBytes(buf: DeviceBuffer, bytes: Uint8Array): void {
    const b = g(buf);
    if (bytes.length !== b.bytes) throw new RangeError(`webgpu uploadBytes: ${bytes.length} bytes into ${b.bytes}`);
    b.host = null;
    if (bytes.length % 4 === 0) return this.device.write(b.id, 0, bytes);
    const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
    padded.set(bytes);
    this.device.write(b.id, 0, padded);
  }

  downloadBytes(buf: DeviceBuffer): Uint8Array {
    const b = g(buf);
    return this.device.read(b.id, 0, Math.ceil(b.bytes / 4) * 4).subarray(0, b.bytes);
  }

  /** Runs everything queued and waits (errors of queued kernels surface here). */
  sync(): void {
    this.device.sync();
  }

  /**
   * Queues one kernel; `bufs` are outputs first (`outputs` of them), null for an absent optional
   * buffer. An input that is also an output is read from a copy (Dawn rejects writable aliasing).
   */
  private run(
    key: string,
    wgsl: () => string,
    op: string,
    outputs: number,
    bufs: (DeviceBuffer | null)[],
    u: Uint32Array,
    wg: [number, number, number],
    /** Per binding, a window of its buffer (null or absent: the buffer as it is). */
    windows: (Win | null | undefined)[] = [],
  ): void {
    const ids: Binding[] = bufs.map((x, k) => {
      if (!x) return this.dummy(k);
      const b = g(x);
      const w = windows[k];
      if (w) return [b.id, w[0], w[1]];
      if (b.capacity <= this.bindLimit) return b.id;
      // a size class over the limit around a tensor under it: bind what the tensor uses
      if (used(b) <= this.bindLimit) return [b.id, 0, used(b)];
      throw new WebGpuOpError(
        `${op}: ${names.get(x) ?? `operand ${k + 1}`} (${b.dtype}[${b.numel}], ${mib(b.bytes)}) exceeds this adapter's maxStorageBufferBindingSize (${mib(this.bindLimit)}); ${op} binds it in one piece`,
      );
    });
    const idOf = (k: number): number => {
      const x = ids[k]!;
      return typeof x === 'number' ? x : x[0];
    };
    for (let k = 0; k < outputs; k++) if (bufs[k]) (bufs[k] as GpuBuffer).host = null;
    const temps: DeviceBuffer[] = [];
    for (let k = outputs; k < ids.length; k++) {
      if (!ids.slice(0, outputs).some((_, j) => idOf(j) === idOf(k))) continue;
      const src = g(bufs[k]!);
      const wk = windows[k];
      if (wk) {
        // a window of a big buffer: copy just the window
        const t = this.allocate('float32', wk[1] / 4) as GpuBuffer;
        this.device.copy(src.id, wk[0], t.id, 0, wk[1]);
        ids[k] = [t.id, 0, wk[1]];
        temps.push(t);
        continue;
      }
      const t = this.allocate(src.dtype, src.numel) as GpuBuffer;
      this.device.copy(src.id, 0, t.id, 0, Math.ceil(src.bytes / 4) * 4);
      ids[k] = t.id;
      temps.push(t);
    }
    this.device.dispatch(key, wgsl, op, ids, u, wg);
    // queue order: a later allocation reusing a temp runs after this kernel
    for (const t of temps) this.free(t);
  }

  /** A zeroed 256-byte buffer for binding k where an optional buffer is absent (one per slot: outputs must not alias). */
  private dummy(k: number): number {
    while (this.dummies.length <= k) {
      const id = this.device.create(256);
      this.device.clear(id, 0, 256);
      this.dummies.push(id);
    }
    return this.dummies[k]!;
  }

  /** Whether any of `bufs` spans more than one storage binding. */
  private big(...bufs: (DeviceBuffer | null | undefined)[]): boolean {
    return bufs.some((b) => !!b && used(b as GpuBuffer) > this.bindLimit);
  }

  /** The window of `b` that holds elements [start, start + count): its binding and the first element's offset in it. */
  private win(b: DeviceBuffer, start: number, count: number): { w: Win; res: number } {
    const x = g(b);
    const es = ELEM_BYTES[x.dtype];
    const first = start * es;
    const base = Math.floor(first / ALIGN) * ALIGN;
    const end = Math.min(x.capacity, Math.ceil(((start + count) * es) / 4) * 4);
    return { w: [base, Math.max(4, end - base)], res: (first - base) / es };
  }

  /**
   * An elementwise kernel over units [0, n) (`es[k]`: bytes of operand k per unit; nothing when n is 0): one call `f(0, n)`
   * when every operand fits one binding, else pieces of a multiple of 128 units whose windows
   * (every operand's, at the same unit) each fit; `f(start, len, windows)` queues one piece.
   */
  private pieces(
    n: number,
    bufs: (DeviceBuffer | null)[],
    es: number[],
    f: (start: number, len: number, windows: (Win | null)[]) => void,
  ): void {
    if (n <= 0) return;
    if (!this.big(...bufs)) return f(0, n, []);
    const per = Math.floor(this.bindLimit / Math.max(...es) / 128) * 128;
    for (let start = 0; start < n; start += per) {
      const len = Math.min(per, n - start);
      f(
        start,
        len,
        bufs.map((b, k) => {
          if (!b) return null;
          const off = start * es[k]!;
          return [off, Math.min((b as GpuBuffer).capacity - off, Math.ceil((len * es[k]!) / 4) * 4)];
        }),
      );
    }
  }

  /**
   * A kernel over units [0, n) of its leading dimension (rows, batch items, tokens) whose operands
   * may span more than one binding: one call `f(0, n, bufs, [], false)` with the operands as they
   * are when none does (and n ≤ cap), else pieces of units whose every part fits one binding (a
   * multiple of 64 units where a piece holds that many, so float parts start on the 256-byte
   * binding alignment). A part is [name, buffer, elements per unit, first element]: bound whole
   * when its elements per unit are 0, else, in a piece, as a window of its buffer when that starts
   * aligned or as a pooled temporary copied from it (and, for the first `outputs` parts, back
   * after the piece). `f(u0, un, bufs, windows, true)` queues one piece whose parts start at
   * element 0 (or at the window's start); `extra`: bytes per unit the piece also needs in one
   * binding (paged attention's gathered pool). One line naming the op and operand when a single
   * unit is over the limit.
   */
  private split(
    op: string,
    unit: string,
    n: number,
    outputs: number,
    parts: readonly (readonly [name: string, b: DeviceBuffer | null, per: number, base?: number])[],
    f: (u0: number, un: number, bufs: (DeviceBuffer | null)[], windows: (Win | null)[], split: boolean) => void,
    cap = Infinity,
    extra = 0,
  ): void {
    if (n <= 0) return;
    for (const [name, b] of parts) if (b) names.set(b, name);
    const bufs = parts.map((p) => p[1]);
    if (n <= cap && !this.big(...parts.filter((p) => p[2] > 0).map((p) => p[1])) && n * extra <= this.bindLimit)
      return f(0, n, bufs, [], false);
    let per = Math.min(n, cap);
    // a piece's part is a window only where it starts aligned, else an exact copy: each needs un · bytes ≤ the limit
    for (const [name, b, e] of parts) {
      if (!b || e === 0) continue;
      const bytes = e * ELEM_BYTES[b.dtype];
      if (b.dtype === 'bfloat16') throw new WebGpuOpError(`${op}: ${name} is bfloat16; only 32-bit operands are split`);
      if (bytes > this.bindLimit)
        throw new WebGpuOpError(
          `${op}: one ${unit} of ${name} (${e} ${b.dtype} elements, ${mib(bytes)}) exceeds this adapter's maxStorageBufferBindingSize (${mib(this.bindLimit)})`,
        );
      per = Math.min(per, Math.floor(this.bindLimit / bytes));
    }
    if (extra > this.bindLimit)
      throw new WebGpuOpError(
        `${op}: one ${unit} needs ${mib(extra)} in one binding, over this adapter's maxStorageBufferBindingSize (${mib(this.bindLimit)})`,
      );
    if (extra > 0) per = Math.min(per, Math.floor(this.bindLimit / extra));
    if (per >= 64) per -= per % 64;
    for (let u0 = 0; u0 < n; u0 += per) {
      const un = Math.min(per, n - u0);
      const pb: (DeviceBuffer | null)[] = [];
      const pw: (Win | null)[] = [];
      const temps: { t: DeviceBuffer; b: GpuBuffer; off: number; bytes: number; out: boolean }[] = [];
      parts.forEach(([, b, e, base], k) => {
        if (!b || e === 0) {
          pb.push(b);
          pw.push(null);
          return;
        }
        const x = g(b);
        if (k < outputs) x.host = null;
        const off = ((base ?? 0) + u0 * e) * 4;
        const bytes = un * e * 4;
        if (off % ALIGN === 0) {
          pb.push(b);
          pw.push([off, bytes]);
          return;
        }
        const t = this.allocate(x.dtype, un * e);
        this.device.copy(x.id, off, (t as GpuBuffer).id, 0, bytes);
        temps.push({ t, b: x, off, bytes, out: k < outputs });
        pb.push(t);
        pw.push(null);
      });
      f(u0, un, pb, pw, true);
      for (const { t, b, off, bytes, out } of temps) {
        if (out) this.device.copy((t as GpuBuffer).id, 0, b.id, off, bytes);
        this.free(t);
      }
    }
  }

  // ---- memory kernels
  fill(x: DeviceBuffer, value: number, n: number): void {
    need('fill', 'x', x, n);
    const b = g(x);
    let pattern: number;
    if (b.dtype === 'int32') pattern = value | 0;
    else {
      const bits = new Uint32Array(new Float32Array([value]).buffer)[0]!;
      if (b.dtype === 'float32') pattern = bits;
      else {
        const h = toBf16Bits(new Float32Array([value]))[0]!;
        pattern = (h | (h << 16)) >>> 0;
      }
    }
    const words = b.dtype === 'bfloat16' ? Math.ceil(n / 2) : n;
    const halfLast = b.dtype === 'bfloat16' && n % 2 === 1 ? 1 : 0;
    this.pieces(words, [x], [4], (s0, len, w) =>
      this.run(
        'fill',
        ew.fillWords,
        'fill',
        1,
        [x],
        uniforms('uuu', len, pattern, s0 + len === words ? halfLast : 0),
        grid1d(len),
        w,
      ),
    );
  }

  copy(dst: DeviceBuffer, dstOff: number, src: DeviceBuffer, srcOff: number, n: number): void {
    need('copy', 'dst', dst, dstOff + n);
    need('copy', 'src', src, srcOff + n, dst.dtype);
    const d = g(dst);
    const s = g(src);
    if (n <= 0) return;
    d.host = null;
    if (d.dtype === 'bfloat16') {
      // over the limit: element ranges, each binding the windows of dst and src that hold it
      const big = this.big(dst, src);
      const per = big ? Math.floor((this.bindLimit - 2 * ALIGN) / 256) * 128 : n;
      for (let e0 = 0; e0 < n; e0 += per) {
        const len = Math.min(per, n - e0);
        const dw = big ? this.win(dst, dstOff + e0, len) : { w: null, res: dstOff };
        const sw = big ? this.win(src, srcOff + e0, len) : { w: null, res: srcOff };
        const firstWord = dw.res >> 1;
        const words = ((dw.res + len + 1) >> 1) - firstWord;
        this.run(
          'copy_bf16',
          ew.copyBf16,
          'copy',
          1,
          [dst, src],
          uniforms('uuuuu', len, dw.res, sw.res, firstWord, words),
          grid1d(words),
          [dw.w, sw.w],
        );
      }
    } else if (d.id !== s.id) this.device.copy(s.id, srcOff * 4, d.id, dstOff * 4, n * 4);
    else if (!this.big(dst))
      this.run('copy32', ew.copy32, 'copy', 1, [dst, src], uniforms('uuu', n, dstOff, srcOff), grid1d(n));
    else {
      // within one buffer over the limit: through a temporary (a buffer copy cannot read and write one buffer)
      const t = this.allocate(d.dtype, n) as GpuBuffer;
      this.device.copy(s.id, srcOff * 4, t.id, 0, n * 4);
      this.device.copy(t.id, 0, d.id, dstOff * 4, n * 4);
      this.free(t);
    }
  }

  copyRows(
    dst: DeviceBuffer,
    src: DeviceBuffer,
    rows: number,
    cols: number,
    dstStride: number,
    srcStride: number,
    dstOff: number,
    srcOff: number,
  ): void {
    if (rows * cols === 0) return;
    need('copy_rows', 'dst', dst, dstOff + (rows - 1) * dstStride + cols, 'float32');
    need('copy_rows', 'src', src, srcOff + (rows - 1) * srcStride + cols, 'float32');
    if (!this.big(dst, src)) {
      this.run(
        'copy_rows',
        ew.copyRows,
        'copyRows',
        1,
        [dst, src],
        uniforms('uuuuuu', rows, cols, dstStride, srcStride, dstOff, srcOff),
        grid1d(rows * cols),
      );
      return;
    }
    // row ranges whose span in each big operand fits one binding (a small one is bound whole)
    const S = Math.floor((this.bindLimit - ALIGN) / 4);
    if (cols > S)
      throw new WebGpuOpError(
        `copyRows: a row of ${cols} floats (${mib(cols * 4)}) exceeds this adapter's maxStorageBufferBindingSize (${mib(this.bindLimit)})`,
      );
    let per = rows;
    for (const [b, stride] of [
      [dst, dstStride],
      [src, srcStride],
    ] as const)
      if (this.big(b) && stride > 0) per = Math.min(per, Math.floor((S - cols) / stride) + 1);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const rn = Math.min(per, rows - r0);
      const at = (b: DeviceBuffer, off: number, stride: number): { w: Win | null; res: number } =>
        this.big(b) ? this.win(b, off + r0 * stride, (rn - 1) * stride + cols) : { w: null, res: off + r0 * stride };
      const d = at(dst, dstOff, dstStride);
      const s0 = at(src, srcOff, srcStride);
      this.run(
        'copy_rows',
        ew.copyRows,
        'copyRows',
        1,
        [dst, src],
        uniforms('uuuuuu', rn, cols, dstStride, srcStride, d.res, s0.res),
        grid1d(rn * cols),
        [d.w, s0.w],
      );
    }
  }
  castF32Bf16(out: DeviceBuffer, x: DeviceBuffer, n: number): void {
    need('cast_f32_bf16', 'out', out, n, 'bfloat16');
    need('cast_f32_bf16', 'x', x, n, 'float32');
    this.pieces(n, [out, x], [2, 4], (_, len, w) =>
      this.run(
        'cast_f32_bf16',
        ew.castF32Bf16,
        'castF32Bf16',
        1,
        [out, x],
        uniforms('u', len),
        grid1d(Math.ceil(len / 2)),
        w,
      ),
    );
  }
  castBf16F32(out: DeviceBuffer, x: DeviceBuffer, n: number): void {
    need('cast_bf16_f32', 'out', out, n, 'float32');
    need('cast_bf16_f32', 'x', x, n, 'bfloat16');
    this.pieces(n, [out, x], [4, 2], (_, len, w) =>
      this.run('cast_bf16_f32', ew.castBf16F32, 'castBf16F32', 1, [out, x], uniforms('u', len), grid1d(len), w),
    );
  }

  // ---- elementwise and reductions
  addForward(out: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer, n: number): void {
    need('add_forward', 'out', out, n, 'float32');
    need('add_forward', 'a', a, n, 'float32');
    need('add_forward', 'b', b, n, 'float32');
    this.pieces(n, [out, a, b], [4, 4, 4], (_, len, w) =>
      this.run('add', ew.add, 'addForward', 1, [out, a, b], uniforms('u', len), grid1d(len), w),
    );
  }
  axpy(y: DeviceBuffer, x: DeviceBuffer, alpha: number, n: number): void {
    need('axpy', 'y', y, n, 'float32');
    need('axpy', 'x', x, n, 'float32');
    this.pieces(n, [y, x], [4, 4], (_, len, w) =>
      this.run('axpy', ew.axpy, 'axpy', 1, [y, x], uniforms('uf', len, alpha), grid1d(len), w),
    );
  }
  scale(x: DeviceBuffer, s: number, n: number): void {
    need('scale', 'x', x, n, 'float32');
    this.pieces(n, [x], [4], (_, len, w) =>
      this.run('scale', ew.scale, 'scale', 1, [x], uniforms('uf', len, s), grid1d(len), w),
    );
  }
  sumRows(out: DeviceBuffer, x: DeviceBuffer, M: number, N: number, beta: number): void {
    need('sum_rows', 'out', out, N, 'float32');
    need('sum_rows', 'x', x, M * N, 'float32');
    if (!N) return;
    if (M === 0)
      return this.run('sum_rows', ew.sumRows, 'sumRows', 1, [out, x], uniforms('uuf', 0, N, beta), grid1d(N));
    // rows of x in pieces, each after the first adding to out (beta 1)
    this.split(
      'sumRows',
      'row',
      M,
      1,
      [
        ['out', out, 0],
        ['x', x, N],
      ],
      (m0, mn, bufs, w) =>
        this.run('sum_rows', ew.sumRows, 'sumRows', 1, bufs, uniforms('uuf', mn, N, m0 ? 1 : beta), grid1d(N), w),
    );
  }

  // ---- products
  gemm(C: DeviceBuffer, A: DeviceBuffer, B: DeviceBuffer, o: GemmArgs): void {
    const batch = o.batch ?? 1;
    const bRound = !!o.bf16 || o.packed === 'bfloat16';
    const v: GemmVariant = {
      aBf16: A.dtype === 'bfloat16',
      bBf16: B.dtype === 'bfloat16',
      roundA: !!o.bf16 || o.packed === 'bfloat16',
      roundB: bRound,
      bias: !!o.bias,
    };
    if (o.M * o.N * batch === 0) return;
    const batchB = o.batchB ?? 1;
    checkGemm(A, B, o);
    need('gemm', 'C', C, (o.cOff ?? 0) + batch * o.M * o.N, 'float32');
    need('gemm', 'bias', o.bias, o.N, 'float32');
    if (o.bias && (o.alpha ?? 1) !== 1) fail('gemm', 'bias with alpha != 1 is not supported');
    if (this.big(C, A, B, o.bias)) return this.gemmBlocks(C, A, B, o, v);
    this.run(
      gemmKey(v),
      gemm(v),
      'gemm',
      1,
      [C, A, B, o.bias ?? null],
      uniforms(
        'uuuuuuuuuff',
        o.M,
        o.N,
        o.K,
        o.transA ? 1 : 0,
        o.transB ? 1 : 0,
        o.batchB ?? 1,
        o.aOff ?? 0,
        o.bOff ?? 0,
        o.cOff ?? 0,
        o.alpha ?? 1,
        o.beta ?? 0,
      ),
      [Math.ceil(o.N / TILE), Math.ceil(o.M / TILE), batch],
    );
  }

  /**
   * gemm with an operand over the binding limit (the LM head's products with a big embedding): in
   * blocks of M, N and K whose every operand block fits one binding. A block that is contiguous in
   * its operand (whole rows) is bound as a window of it; another is gathered into a temporary with
   * copyRows (and C's scattered back). K blocks after the first accumulate (beta 1, no bias).
   */
  private gemmBlocks(C: DeviceBuffer, A: DeviceBuffer, B: DeviceBuffer, o: GemmArgs, v: GemmVariant): void {
    const { M, N, K } = o;
    const tA = !!o.transA;
    const tB = !!o.transB;
    const batch = o.batch ?? 1;
    if (batch !== 1) {
      // one product per batch item, at its offsets (B shared when batchB is 1)
      const shared = (o.batchB ?? 1) === 1;
      for (let b = 0; b < batch; b++)
        this.gemmBlocks(
          C,
          A,
          B,
          {
            ...o,
            batch: 1,
            batchB: 1,
            aOff: (o.aOff ?? 0) + b * M * K,
            bOff: (o.bOff ?? 0) + (shared ? 0 : b * K * N),
            cOff: (o.cOff ?? 0) + b * M * N,
          },
          v,
        );
      return;
    }
    const S = Math.floor((this.bindLimit - ALIGN) / 4);
    let mb = M,
      nb = N,
      kb = K;
    // halve the longer side of the largest block until every block fits
    for (;;) {
      const blocks: [number, () => void][] = [
        [mb * kb, () => (mb >= kb ? (mb = Math.ceil(mb / 2)) : (kb = Math.ceil(kb / 2)))],
        [kb * nb, () => (nb >= kb ? (nb = Math.ceil(nb / 2)) : (kb = Math.ceil(kb / 2)))],
        [mb * nb, () => (mb >= nb ? (mb = Math.ceil(mb / 2)) : (nb = Math.ceil(nb / 2)))],
      ];
      blocks.sort((x, y) => y[0] - x[0]);
      if (blocks[0]![0] <= S) break;
      blocks[0]![1]();
    }
    const temps: DeviceBuffer[] = [];
    /** Rows r0..r0+rn, columns c0..c0+cn of the matrix [rows, cols] stored at `off` in `b`: a binding and an offset. */
    const block = (
      name: string,
      b: DeviceBuffer,
      off: number,
      cols: number,
      r0: number,
      rn: number,
      c0: number,
      cn: number,
      load: boolean,
    ): { buf: DeviceBuffer; w: Win | null; off: number; scatter: boolean } => {
      const start = off + r0 * cols + c0;
      if (cn === cols || rn === 1) {
        if (!this.big(b)) return { buf: b, w: null, off: start, scatter: false };
        const { w, res } = this.win(b, start, rn * cn);
        return { buf: b, w, off: res, scatter: false };
      }
      if (b.dtype !== 'float32')
        throw new WebGpuOpError(
          `gemm: ${name} (${b.dtype}[${b.numel}], ${mib(b.numel * ELEM_BYTES[b.dtype])}) exceeds this adapter's maxStorageBufferBindingSize (${mib(this.bindLimit)}) and only float32 blocks are gathered`,
        );
      const t = this.allocate('float32', rn * cn);
      temps.push(t);
      if (load) this.copyRows(t, b, rn, cn, cn, cols, 0, start);
      return { buf: t, w: null, off: 0, scatter: true };
    };
    const alpha = o.alpha ?? 1;
    const beta = o.beta ?? 0;
    const bias = o.bias ?? null;
    for (let m0 = 0; m0 < M; m0 += mb) {
      const mn = Math.min(mb, M - m0);
      for (let n0 = 0; n0 < N; n0 += nb) {
        const nn = Math.min(nb, N - n0);
        const cb = block('C', C, o.cOff ?? 0, N, m0, mn, n0, nn, beta !== 0);
        let biasBuf: DeviceBuffer | null = null;
        if (bias) {
          biasBuf = this.allocate('float32', nn);
          temps.push(biasBuf);
          this.copy(biasBuf, 0, bias, n0, nn);
        }
        for (let k0 = 0; k0 < K; k0 += kb) {
          const kn = Math.min(kb, K - k0);
          const ab = tA
            ? block('A', A, o.aOff ?? 0, M, k0, kn, m0, mn, true)
            : block('A', A, o.aOff ?? 0, K, m0, mn, k0, kn, true);
          const bb = tB
            ? block('B', B, o.bOff ?? 0, K, n0, nn, k0, kn, true)
            : block('B', B, o.bOff ?? 0, N, k0, kn, n0, nn, true);
          const first = k0 === 0;
          const vb: GemmVariant = { ...v, bias: first && !!bias };
          this.run(
            gemmKey(vb),
            gemm(vb),
            'gemm',
            1,
            [cb.buf, ab.buf, bb.buf, first ? biasBuf : null],
            uniforms(
              'uuuuuuuuuff',
              mn,
              nn,
              kn,
              tA ? 1 : 0,
              tB ? 1 : 0,
              1,
              ab.off,
              bb.off,
              cb.off,
              alpha,
              first ? beta : 1,
            ),
            [Math.ceil(nn / TILE), Math.ceil(mn / TILE), 1],
            [cb.w, ab.w, bb.w, null],
          );
          for (const x of [ab, bb]) if (x.scatter) this.free(temps.splice(temps.indexOf(x.buf), 1)[0]!);
        }
        if (cb.scatter) this.copyRows(C, cb.buf, mn, nn, N, nn, (o.cOff ?? 0) + m0 * N + n0, 0);
      }
    }
    // queue order: a later allocation reusing a temporary runs after the kernels that read it
    for (const t of temps) this.free(t);
  }

  // ---- layers
  swigluForward(out: DeviceBuffer, gate: DeviceBuffer, up: DeviceBuffer, n: number): void {
    for (const [name, b] of [
      ['out', out],
      ['gate', gate],
      ['up', up],
    ] as const)
      need('swiglu_forward', name, b, n, 'float32');
    this.pieces(n, [out, gate, up], [4, 4, 4], (_, len, w) =>
      this.run('swiglu_fwd', ew.swigluForward, 'swigluForward', 1, [out, gate, up], uniforms('u', len), grid1d(len), w),
    );
  }
  swigluBackward(
    dgate: DeviceBuffer | null,
    dup: DeviceBuffer | null,
    dout: DeviceBuffer,
    gate: DeviceBuffer,
    up: DeviceBuffer,
    n: number,
  ): void {
    for (const [name, b] of [
      ['dgate', dgate],
      ['dup', dup],
      ['dout', dout],
      ['gate', gate],
      ['up', up],
    ] as const)
      need('swiglu_backward', name, b, n, 'float32');
    const which = (dgate ? 1 : 0) | (dup ? 2 : 0);
    if (which)
      this.pieces(n, [dgate, dup, dout, gate, up], [4, 4, 4, 4, 4], (_, len, w) =>
        this.run(
          'swiglu_bwd',
          ew.swigluBackward,
          'swigluBackward',
          2,
          [dgate, dup, dout, gate, up],
          uniforms('uu', len, which),
          grid1d(len),
          w,
        ),
      );
  }
  rmsnormForward(
    y: DeviceBuffer,
    rstd: DeviceBuffer,
    x: DeviceBuffer,
    w: DeviceBuffer,
    N: number,
    C: number,
    eps: number,
  ): void {
    for (const [name, b, n] of [
      ['y', y, N * C],
      ['rstd', rstd, N],
      ['x', x, N * C],
      ['w', w, C],
    ] as const)
      need('rmsnorm_forward', name, b, n, 'float32');
    this.split(
      'rmsnormForward',
      'row',
      N,
      2,
      [
        ['y', y, C],
        ['rstd', rstd, 1],
        ['x', x, C],
        ['w', w, 0],
      ],
      (_, rn, bufs, win) =>
        this.run(
          'rmsnorm_fwd',
          norm.rmsnormForward,
          'rmsnormForward',
          2,
          bufs,
          uniforms('uuf', rn, C, eps),
          rowGrid(rn),
          win,
        ),
    );
  }
  rmsnormBackward(
    dx: DeviceBuffer | null,
    dw: DeviceBuffer | null,
    dy: DeviceBuffer,
    x: DeviceBuffer,
    w: DeviceBuffer,
    rstd: DeviceBuffer,
    N: number,
    C: number,
  ): void {
    for (const [name, b, n] of [
      ['dx', dx, N * C],
      ['dw', dw, C],
      ['dy', dy, N * C],
      ['x', x, N * C],
      ['w', w, C],
      ['rstd', rstd, N],
    ] as const)
      need('rmsnorm_backward', name, b, n, 'float32');
    if (!N) return;
    if (dx)
      this.split(
        'rmsnormBackward',
        'row',
        N,
        1,
        [
          ['dx', dx, C],
          ['dy', dy, C],
          ['x', x, C],
          ['w', w, 0],
          ['rstd', rstd, 1],
        ],
        (_, rn, bufs, win) =>
          this.run(
            'rmsnorm_bwd_dx',
            norm.rmsnormBackwardDx,
            'rmsnormBackward',
            1,
            bufs,
            uniforms('uu', rn, C),
            rowGrid(rn),
            win,
          ),
      );
    // dw sums over the rows: a piece after the first goes on from dw (the same order as one pass)
    if (dw)
      this.split(
        'rmsnormBackward',
        'row',
        N,
        1,
        [
          ['dw', dw, 0],
          ['dy', dy, C],
          ['x', x, C],
          ['rstd', rstd, 1],
        ],
        (r0, rn, bufs, win) =>
          this.run(
            'rmsnorm_bwd_dw',
            norm.rmsnormBackwardDw,
            'rmsnormBackward',
            1,
            bufs,
            uniforms('uuu', rn, C, r0 ? 1 : 0),
            grid1d(C),
            win,
          ),
      );
  }

  /**
   * Σ x² in double, summed on the host over the downloaded values in native/cpu's fixed blocks
   * (deterministic; the CPU's vectorised order inside a block may differ in the last bits). A GPU partial sum in double-float reached only ≈ 1e-10 relative on lavapipe
   * (its shader compiler folds the error-free transformations), short of the 1e-12 the seam holds.
   */
  gradnormSumsq(x: DeviceBuffer, n: number): number {
    need('gradnorm_sumsq', 'x', x, n, 'float32');
    if (n === 0) return 0;
    const v = this.download(x, 0, n) as Float32Array;
    const BLOCK = 1 << 14;
    let total = 0;
    for (let b = 0; b < n; b += BLOCK) {
      let part = 0;
      const e = Math.min(n, b + BLOCK);
      for (let i = b; i < e; i++) part += v[i]! * v[i]!;
      total += part;
    }
    return total;
  }

  dropoutForward(out: DeviceBuffer, x: DeviceBuffer, n: number, p: number, seed: number): void {
    this.dropout('dropout_forward', 'out', 'x', out, x, n, p, seed);
  }
  dropoutBackward(dx: DeviceBuffer, dy: DeviceBuffer, n: number, p: number, seed: number): void {
    this.dropout('dropout_backward', 'dx', 'dy', dx, dy, n, p, seed);
  }
  private dropout(
    op: string,
    on: string,
    xn: string,
    out: DeviceBuffer,
    x: DeviceBuffer,
    n: number,
    p: number,
    seed: number,
  ): void {
    need(op, on, out, n, 'float32');
    need(op, xn, x, n, 'float32');
    checkDropout(op, p, seed);
    if (n === 0) return;
    const pf = Math.fround(p);
    const thr = Math.floor(pf * 2 ** 32);
    const keep = Math.fround(1 / Math.fround(1 - pf));
    const lo = seed % 2 ** 32;
    const hi = Math.floor(seed / 2 ** 32);
    // element ranges of a big tensor: the mask bit of element i is drawn from i (base + local index)
    this.pieces(n, [out, x], [4, 4], (s0, len, w) =>
      this.run('dropout', lay.dropout, op, 1, [out, x], uniforms('uuuufu', len, lo, hi, thr, keep, s0), grid1d(len), w),
    );
  }

  /** Host copy of an int32 buffer (ids, positions: kept from upload, else read back). */
  private hostInts(b: DeviceBuffer, n: number): Int32Array {
    const x = g(b);
    if (x.host && x.host.length >= n) return x.host;
    return this.download(b, 0, n) as Int32Array;
  }

  embeddingForward(out: DeviceBuffer, weight: DeviceBuffer, ids: DeviceBuffer, N: number, V: number, C: number): void {
    need('embedding_forward', 'out', out, N * C, 'float32');
    need('embedding_forward', 'weight', weight, V * C, 'float32');
    need('embedding_forward', 'ids', ids, N, 'int32');
    checkIds('embedding_forward', this.hostInts(ids, N), N, V);
    if (N * C === 0) return;
    // tokens in pieces when out spans more than one binding, each over the weight's row windows
    this.split(
      'embeddingForward',
      'token',
      N,
      1,
      [
        ['out', out, C],
        ['ids', ids, 1],
      ],
      (_, tn, [o, id], win) =>
        this.vocabWindows('embedding_forward', 'weight', weight, V, C, (v0, vn, w, res) =>
          this.run(
            'embedding_fwd',
            lay.embeddingForward,
            'embeddingForward',
            1,
            [o!, weight, id!],
            uniforms('uuuuu', tn, C, v0, vn, res),
            grid1d(tn * C),
            [win[0], w, win[1]],
          ),
        ),
    );
  }

  /**
   * `f(v0, vn, window, offset)` once per window of rows [v0, v0 + vn) of the [V, C] float32 buffer
   * `b`: once over all V rows, bound whole, when it fits one binding; else as many rows as a
   * binding holds each (one line when a single row is too big).
   */
  private vocabWindows(
    op: string,
    name: string,
    b: DeviceBuffer,
    V: number,
    C: number,
    f: (v0: number, vn: number, w: Win | null, res: number) => void,
  ): void {
    if (!this.big(b)) return f(0, V, null, 0);
    const per = Math.floor((this.bindLimit - ALIGN) / (C * 4));
    if (per < 1)
      throw new WebGpuOpError(
        `${op}: a row of ${name} (${C} floats) exceeds this adapter's maxStorageBufferBindingSize (${mib(this.bindLimit)})`,
      );
    for (let v0 = 0; v0 < V; v0 += per) {
      const vn = Math.min(per, V - v0);
      const { w, res } = this.win(b, v0 * C, vn * C);
      f(v0, vn, w, res);
    }
  }

  embeddingBackward(
    dweight: DeviceBuffer,
    dout: DeviceBuffer,
    ids: DeviceBuffer,
    N: number,
    V: number,
    C: number,
    accumulate: boolean,
  ): void {
    need('embedding_backward', 'dweight', dweight, V * C, 'float32');
    need('embedding_backward', 'dout', dout, N * C, 'float32');
    need('embedding_backward', 'ids', ids, N, 'int32');
    const host = this.hostInts(ids, N);
    checkIds('embedding_backward', host, N, V);
    if (V * C === 0) return;
    /** Tokens [t0, t0 + tn) of dout (bound as `d`, window `dw`), accumulating into dweight after the first piece. */
    const pass = (t0: number, tn: number, d: DeviceBuffer, dw: Win | null, acc: boolean): void => {
      // counting sort by id (stable): start[v]..start[v+1] lists v's tokens ascending, as native/cpu
      const start = new Int32Array(V + 1);
      for (let i = 0; i < tn; i++) start[host[t0 + i]! + 1]!++;
      for (let v = 0; v < V; v++) start[v + 1]! += start[v]!;
      const order = new Int32Array(Math.max(1, tn));
      const fill = start.slice(0, V);
      for (let i = 0; i < tn; i++) order[fill[host[t0 + i]!]!++] = i;
      const sb = this.allocate('int32', V + 1);
      const ob = this.allocate('int32', order.length);
      this.upload(sb, start);
      this.upload(ob, order);
      this.vocabWindows('embedding_backward', 'dweight', dweight, V, C, (v0, vn, w, res) =>
        this.run(
          'embedding_bwd',
          lay.embeddingBackward,
          'embeddingBackward',
          1,
          [dweight, d, sb, ob],
          uniforms('uuuuu', vn, C, acc ? 1 : 0, v0, res),
          grid1d(vn * C),
          [w, dw, null, null],
        ),
      );
      this.free(sb);
      this.free(ob);
    };
    // dout over the limit: in pieces of tokens, each later piece adding to dweight (every row's
    // tokens still summed in ascending order, as in one pass)
    if (N === 0) pass(0, 0, dout, null, accumulate);
    else
      this.split('embeddingBackward', 'token', N, 0, [['dout', dout, C]], (t0, tn, [d], win) =>
        pass(t0, tn, d!, win[0] ?? null, accumulate || t0 > 0),
      );
  }

  ropeForward(
    y: DeviceBuffer,
    x: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
  ): void {
    this.rope('rope_forward', 'y', 'x', y, x, positions, B, T, H, D, theta, 1);
  }
  ropeBackward(
    dx: DeviceBuffer,
    dy: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
  ): void {
    this.rope('rope_backward', 'dx', 'dy', dx, dy, positions, B, T, H, D, theta, -1);
  }
  private rope(
    op: string,
    yn: string,
    xn: string,
    y: DeviceBuffer,
    x: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
    sign: number,
  ): void {
    checkRope(op, D, theta);
    need(op, yn, y, B * T * H * D, 'float32');
    need(op, xn, x, B * T * H * D, 'float32');
    need(op, 'positions', positions, B * T, 'int32');
    const maxPos = checkPositions(op, this.hostInts(positions, B * T), B * T);
    if (B * T * H * D === 0) return;
    const tab = this.ropeTable(D, theta, maxPos + 1);
    this.split(
      op,
      'token',
      B * T,
      1,
      [
        [yn, y, H * D],
        [xn, x, H * D],
        ['positions', positions, 1],
        ['cos table', tab.cs, 0],
        ['sin table', tab.sn, 0],
      ],
      (_, tn, bufs, win) =>
        this.run('rope', lay.rope, op, 1, bufs, uniforms('uuuf', tn, H, D, sign), grid1d((tn * H * D) / 2), win),
    );
  }

  /** cos/sin [npos, D/2] of the float32 angles pos·inv_freq, in double then rounded (native/cpu/rope.cc); grown by doubling. */
  private ropeTable(D: number, theta: number, npos: number): { cs: DeviceBuffer; sn: DeviceBuffer } {
    const t = this.rope_;
    if (t && t.D === D && t.theta === theta && t.npos >= npos) return t;
    if (t) {
      this.free(t.cs);
      this.free(t.sn);
    }
    const h2 = D / 2;
    const size = Math.max(npos, 2 * (t && t.D === D && t.theta === theta ? t.npos : 0), 64);
    const base = Math.fround(theta);
    const invf = new Float32Array(h2);
    for (let i = 0; i < h2; i++)
      invf[i] = Math.fround(1 / Math.fround(Math.pow(base, Math.fround(Math.fround(2 * i) / Math.fround(D)))));
    const cs = new Float32Array(size * h2);
    const sn = new Float32Array(size * h2);
    for (let q = 0; q < size; q++)
      for (let i = 0; i < h2; i++) {
        const ang = Math.fround(q * invf[i]!);
        cs[q * h2 + i] = Math.cos(ang);
        sn[q * h2 + i] = Math.sin(ang);
      }
    const out = {
      D,
      theta,
      npos: size,
      cs: this.allocate('float32', cs.length),
      sn: this.allocate('float32', sn.length),
    };
    this.upload(out.cs, cs);
    this.upload(out.sn, sn);
    this.rope_ = out;
    return out;
  }
  private rope_: { D: number; theta: number; npos: number; cs: DeviceBuffer; sn: DeviceBuffer } | null = null;

  adamwStep(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    m: DeviceBuffer,
    v: DeviceBuffer,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void {
    const op = 'adamw_step';
    checkAdamw(op, { lr, beta1, beta2, eps, weightDecay, step });
    needAll(op, [
      ['param', param, n, 'float32'],
      ['grad', grad, n, 'float32'],
      ['exp_avg', m, n, 'float32'],
      ['exp_avg_sq', v, n, 'float32'],
    ]);
    if (n === 0) return;
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    this.pieces(n, [param, m, v, grad], [4, 4, 4, 4], (_, len, w) =>
      this.run(
        'adamw',
        lay.adamw,
        'adamwStep',
        3,
        [param, m, v, grad],
        uniforms(
          'ufffffff' + 'f',
          len,
          1 - lr * weightDecay,
          beta1,
          1 - beta1,
          beta2,
          1 - beta2,
          lr / bc1,
          Math.sqrt(bc2),
          eps,
        ),
        grid1d(len),
        w,
      ),
    );
  }

  // ---- softmax family (kernels/softmax.ts)
  klForward(out: DeviceBuffer, p: DeviceBuffer, q: DeviceBuffer, N: number, V: number, temperature: number): void {
    const op = 'kl_forward';
    positiveTemperature(op, temperature);
    need(op, 'out', out, N, 'float32');
    need(op, 'p_logits', p, N * V, 'float32');
    need(op, 'q_logits', q, N * V, 'float32');
    if (N * V)
      this.split(
        'klForward',
        'row',
        N,
        1,
        [
          ['out', out, 1],
          ['p_logits', p, V],
          ['q_logits', q, V],
        ],
        (_, rn, bufs, win) =>
          this.run(
            'kl_fwd',
            sm.klForward,
            'klForward',
            1,
            bufs,
            uniforms('uuf', rn, V, invT(temperature)),
            rowGrid(rn),
            win,
          ),
      );
  }
  klHvp(out: DeviceBuffer, logits: DeviceBuffer, u: DeviceBuffer, N: number, V: number, temperature: number): void {
    const op = 'kl_hvp';
    positiveTemperature(op, temperature);
    need(op, 'out', out, N * V, 'float32');
    need(op, 'logits', logits, N * V, 'float32');
    need(op, 'u', u, N * V, 'float32');
    if (N * V === 0) return;
    const inplace = g(out).id === g(u).id;
    const parts: [string, DeviceBuffer, number][] = [
      ['out', out, V],
      ['logits', logits, V],
    ];
    if (!inplace) parts.push(['u', u, V]);
    this.split('klHvp', 'row', N, 1, parts, (_, rn, bufs, win) =>
      this.run(
        inplace ? 'kl_hvp_inplace' : 'kl_hvp',
        sm.klHvp(inplace),
        'klHvp',
        1,
        bufs,
        uniforms('uuf', rn, V, invT(temperature)),
        rowGrid(rn),
        win,
      ),
    );
  }
  logprobsForward(
    lp: DeviceBuffer | null,
    lse: DeviceBuffer,
    entropy: DeviceBuffer | null,
    logits: DeviceBuffer,
    targets: DeviceBuffer | null,
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
  ): void {
    const op = 'logprobs_forward';
    positiveTemperature(op, temperature);
    if (!lp !== !targets) fail(op, 'lp and targets must be given together');
    need(op, 'lp', lp, rowOff + rows, 'float32');
    need(op, 'lse', lse, rowOff + rows, 'float32');
    need(op, 'entropy', entropy, rowOff + rows, 'float32');
    need(op, 'logits', logits, rows * V, 'float32');
    need(op, 'targets', targets, rowOff + rows, 'int32');
    if (targets) checkTargets(op, this.hostInts(targets, rowOff + rows), rowOff, rows, V);
    // in pieces of rows, the per-row outputs and targets start at the piece's first row (rowOff 0)
    this.split(
      'logprobsForward',
      'row',
      rows,
      3,
      [
        ['lp', lp, 1, rowOff],
        ['lse', lse, 1, rowOff],
        ['entropy', entropy, 1, rowOff],
        ['logits', logits, V],
        ['targets', targets, 1, rowOff],
      ],
      (_, rn, bufs, win, split) =>
        this.run(
          'logprobs_fwd',
          sm.logprobsForward,
          'logprobsForward',
          3,
          bufs,
          uniforms('uufuu', rn, V, invT(temperature), split ? 0 : rowOff, (lp ? 1 : 0) | (entropy ? 2 : 0)),
          rowGrid(rn),
          win,
        ),
    );
  }
  logprobsBackward(
    dlogits: DeviceBuffer,
    logits: DeviceBuffer,
    dlp: DeviceBuffer,
    lse: DeviceBuffer,
    targets: DeviceBuffer,
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
  ): void {
    const op = 'logprobs_backward';
    const perRow: [string, DeviceBuffer, DType][] = [
      ['dlp', dlp, 'float32'],
      ['lse', lse, 'float32'],
      ['targets', targets, 'int32'],
    ];
    this.logitsBackward(
      op,
      'logprobs_bwd',
      sm.logprobsBackward,
      'logprobsBackward',
      dlogits,
      logits,
      perRow,
      rows,
      V,
      temperature,
      rowOff,
      () => checkTargets(op, this.hostInts(targets, rowOff + rows), rowOff, rows, V),
    );
  }
  logprobsEntropyBackward(
    dlogits: DeviceBuffer,
    logits: DeviceBuffer,
    dH: DeviceBuffer,
    lse: DeviceBuffer,
    entropy: DeviceBuffer,
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
  ): void {
    const perRow: [string, DeviceBuffer, DType][] = [
      ['dH', dH, 'float32'],
      ['lse', lse, 'float32'],
      ['entropy', entropy, 'float32'],
    ];
    this.logitsBackward(
      'logprobs_entropy_backward',
      'logprobs_ent_bwd',
      sm.logprobsEntropyBackward,
      'logprobsEntropyBackward',
      dlogits,
      logits,
      perRow,
      rows,
      V,
      temperature,
      rowOff,
    );
  }
  /**
   * The two backward passes through the log-softmax of a chunk of logit rows: dlogits [rows, V]
   * from the logits and three per-token inputs at rowOff (`perRow`); dlogits may be the logits
   * buffer (the in-place kernel then reads it before writing).
   */
  private logitsBackward(
    op: string,
    key: string,
    wgsl: (inplace: boolean) => () => string,
    kernel: string,
    dlogits: DeviceBuffer,
    logits: DeviceBuffer,
    perRow: [string, DeviceBuffer, DType][],
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
    checkRows?: () => void,
  ): void {
    positiveTemperature(op, temperature);
    need(op, 'dlogits', dlogits, rows * V, 'float32');
    need(op, 'logits', logits, rows * V, 'float32');
    for (const [name, b, dtype] of perRow) need(op, name, b, rowOff + rows, dtype);
    checkRows?.();
    if (rows * V === 0) return;
    const inplace = g(dlogits).id === g(logits).id;
    const parts: [string, DeviceBuffer, number, number?][] = [['dlogits', dlogits, V]];
    if (!inplace) parts.push(['logits', logits, V]);
    for (const [name, b] of perRow) parts.push([name, b, 1, rowOff]);
    this.split(kernel, 'row', rows, 1, parts, (_, rn, bufs, win, split) =>
      this.run(
        inplace ? `${key}_inplace` : key,
        wgsl(inplace),
        kernel,
        1,
        bufs,
        uniforms('uufu', rn, V, invT(temperature), split ? 0 : rowOff),
        grid1d(rn * V),
        win,
      ),
    );
  }

  // ---- attention (kernels/attention.ts)
  attentionForward(
    out: DeviceBuffer,
    lse: DeviceBuffer | null,
    q: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    keyMask: DeviceBuffer | null,
    B: number,
    Tq: number,
    Tk: number,
    Tkmax: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void {
    const op = 'attention_forward';
    checkHeads(op, H, Hkv);
    if (!(Tq <= Tk && Tk <= Tkmax)) fail(op, `need Tq <= Tk <= Tkmax, got Tq = ${Tq}, Tk = ${Tk}, Tkmax = ${Tkmax}`);
    finiteScale(op, scale);
    const nqe = B * Tq * H * D;
    const nkv = B * Tkmax * Hkv * D;
    need(op, 'out', out, nqe, 'float32');
    need(op, 'lse', lse, B * H * Tq, 'float32');
    need(op, 'q', q, nqe, 'float32');
    need(op, 'k', k, nkv, 'float32');
    need(op, 'v', v, nkv, 'float32');
    need(op, 'mask', keyMask, B * Tkmax, 'int32');
    if (nqe === 0) return;
    // in pieces of batch items when an operand spans more than one binding
    this.split(
      'attentionForward',
      'batch item',
      B,
      2,
      [
        ['out', out, Tq * H * D],
        ['lse', lse, H * Tq],
        ['q', q, Tq * H * D],
        ['k', k, Tkmax * Hkv * D],
        ['v', v, Tkmax * Hkv * D],
        ['mask', keyMask, Tkmax],
      ],
      (_, bn, bufs, win) =>
        this.run(
          `attn_fwd:${dmax(D)}`,
          at.attentionForward(dmax(D)),
          'attentionForward',
          2,
          bufs,
          uniforms('uuuuufuufu', Tq, Tk, Tkmax, H, Hkv, scale, keyMask ? 1 : 0, lse ? 1 : 0, Infinity, D),
          [Math.ceil(Tq / 64), H, bn],
          win,
        ),
      65535,
    );
  }

  attentionBackward(
    dq: DeviceBuffer,
    dk: DeviceBuffer,
    dv: DeviceBuffer,
    dout: DeviceBuffer,
    q: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    out: DeviceBuffer,
    lse: DeviceBuffer,
    keyMask: DeviceBuffer | null,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void {
    const op = 'attention_backward';
    checkHeads(op, H, Hkv);
    const nqe = B * T * H * D;
    const nkv = B * T * Hkv * D;
    for (const [name, b, n] of [
      ['dq', dq, nqe],
      ['dk', dk, nkv],
      ['dv', dv, nkv],
      ['dout', dout, nqe],
      ['q', q, nqe],
      ['k', k, nkv],
      ['v', v, nkv],
      ['out', out, nqe],
      ['lse', lse, B * H * T],
    ] as const)
      need(op, name, b, n, 'float32');
    need(op, 'mask', keyMask, B * T, 'int32');
    if (nqe === 0) return;
    const u = uniforms('uuufuu', T, H, Hkv, scale, keyMask ? 1 : 0, D);
    const q1 = T * H * D;
    const kv1 = T * Hkv * D;
    // in pieces of batch items when an operand spans more than one binding (delta [bn, H, T] per piece)
    this.split(
      'attentionBackward',
      'batch item',
      B,
      3,
      [
        ['dq', dq, q1],
        ['dk', dk, kv1],
        ['dv', dv, kv1],
        ['dout', dout, q1],
        ['q', q, q1],
        ['k', k, kv1],
        ['v', v, kv1],
        ['out', out, q1],
        ['lse', lse, H * T],
        ['mask', keyMask, T],
      ],
      (_, bn, bufs, win) => {
        const [dqb, dkb, dvb, doutb, qb, kb, vb, outb, lseb, maskb] = bufs;
        const [dqw, dkw, dvw, doutw, qw, kw, vw, outw, lsew, maskw] = win;
        const delta = this.allocate('float32', bn * H * T);
        this.run(
          'attn_delta',
          at.attentionDelta,
          'attentionBackward',
          1,
          [delta, doutb!, outb!],
          uniforms('uuuu', bn, T, H, D),
          grid1d(bn * T * H),
          [null, doutw, outw],
        );
        this.run(
          `attn_dq:${dmax(D)}`,
          at.attentionBackwardDq(dmax(D)),
          'attentionBackward',
          1,
          [dqb!, doutb!, qb!, kb!, vb!, lseb!, delta, maskb ?? null],
          u,
          [Math.ceil(T / 64), H, bn],
          [dqw, doutw, qw, kw, vw, lsew, null, maskw],
        );
        this.run(
          `attn_dkv:${dmax(D)}`,
          at.attentionBackwardDkv(dmax(D)),
          'attentionBackward',
          2,
          [dkb!, dvb!, doutb!, qb!, kb!, vb!, lseb!, delta, maskb ?? null],
          u,
          [Math.ceil(T / 64), Hkv, bn],
          [dkw, dvw, doutw, qw, kw, vw, lsew, null, maskw],
        );
        this.free(delta);
      },
      65535,
    );
  }

  // ---- paged KV cache (kernels/paged.ts)
  pagedKvWrite(
    kPool: DeviceBuffer,
    vPool: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    slots: DeviceBuffer,
    n: number,
    S: number,
    row: number,
  ): void {
    const op = 'paged_kv_write';
    need(op, 'kpool', kPool, S * row, 'float32');
    need(op, 'vpool', vPool, S * row, 'float32');
    need(op, 'k', k, n * row, 'float32');
    need(op, 'v', v, n * row, 'float32');
    need(op, 'slots', slots, n, 'int32');
    const host = this.hostInts(slots, n);
    checkSlots(op, host, n, S);
    if (n * row === 0) return;
    // tokens in pieces when k / v span more than one binding; pools over the limit in windows of
    // slots (vocabWindows: rows of [S, row]), each dispatch writing the tokens whose slot it holds
    // (windows no token of the piece uses are skipped)
    this.split(
      'pagedKvWrite',
      'token',
      n,
      0,
      [
        ['k', k, row],
        ['v', v, row],
        ['slots', slots, 1],
      ],
      (t0, tn, bufs, win) => {
        const mine = host.subarray(t0, t0 + tn);
        this.vocabWindows('pagedKvWrite', 'kpool', kPool, S, row, (s0, sn, kw, res) => {
          if (!mine.some((slot) => slot >= s0 && slot < s0 + sn)) return;
          this.run(
            'paged_kv_write',
            pg.pagedKvWrite,
            'pagedKvWrite',
            2,
            [kPool, vPool, ...bufs],
            uniforms('uuuuu', tn, row, s0, sn, res),
            grid1d(tn * row),
            [kw, kw && this.win(vPool, s0 * row, sn * row).w, ...win],
          );
        });
      },
    );
  }

  pagedAttentionForward(
    out: DeviceBuffer,
    q: DeviceBuffer,
    kPool: DeviceBuffer,
    vPool: DeviceBuffer,
    table: DeviceBuffer,
    ctx: DeviceBuffer,
    B: number,
    Tq: number,
    H: number,
    Hkv: number,
    D: number,
    blockSize: number,
    maxBlocks: number,
    numBlocks: number,
    scale: number,
  ): void {
    const op = 'paged_attention_forward';
    checkHeads(op, H, Hkv);
    finiteScale(op, scale);
    const nq = B * Tq * H * D;
    const np = numBlocks * blockSize * Hkv * D;
    need(op, 'out', out, nq, 'float32');
    need(op, 'q', q, nq, 'float32');
    need(op, 'kpool', kPool, np, 'float32');
    need(op, 'vpool', vPool, np, 'float32');
    need(op, 'table', table, B * maxBlocks, 'int32');
    need(op, 'ctx', ctx, B, 'int32');
    const hostCtx = this.hostInts(ctx, B);
    const hostTable = this.hostInts(table, B * maxBlocks);
    checkPagedRows(op, hostCtx, hostTable, B, Tq, blockSize, maxBlocks, numBlocks);
    if (nq === 0) return;
    const kernel = (bufs: (DeviceBuffer | null)[], win: (Win | null)[], bn: number): void =>
      this.run(
        `paged_attn:${dmax(D)}`,
        pg.pagedAttention(dmax(D)),
        'pagedAttentionForward',
        1,
        bufs,
        uniforms('uuuuuuuf', bn, Tq, H, Hkv, D, blockSize, maxBlocks, scale),
        grid1d(bn * Tq * H),
        win,
      );
    const rowQ = Tq * H * D;
    if (!this.big(kPool, vPool))
      return this.split(
        op,
        'row',
        B,
        1,
        [
          ['out', out, rowQ],
          ['q', q, rowQ],
          ['kpool', kPool, 0],
          ['vpool', vPool, 0],
          ['table', table, maxBlocks],
          ['ctx', ctx, 1],
        ],
        (_, bn, bufs, win) => kernel(bufs, win, bn),
      );
    // pools over the binding limit: per piece of rows, the blocks its rows read are gathered into
    // compact pools (a block shared by rows once) and the table renumbered to them
    const blockFloats = blockSize * Hkv * D;
    this.split(
      op,
      'row',
      B,
      1,
      [
        ['out', out, rowQ],
        ['q', q, rowQ],
        ['ctx', ctx, 1],
      ],
      (b0, bn, bufs, win) => {
        const compact = new Map<number, number>();
        const tab = new Int32Array(bn * maxBlocks);
        for (let b = 0; b < bn; b++)
          for (let j = 0; j < Math.ceil(hostCtx[b0 + b]! / blockSize); j++) {
            const phys = hostTable[(b0 + b) * maxBlocks + j]!;
            let c = compact.get(phys);
            if (c === undefined) compact.set(phys, (c = compact.size));
            tab[b * maxBlocks + j] = c;
          }
        const nb = Math.max(1, compact.size);
        const kc = this.allocate('float32', nb * blockFloats) as GpuBuffer;
        const vc = this.allocate('float32', nb * blockFloats) as GpuBuffer;
        const tb = this.allocate('int32', tab.length);
        this.upload(tb, tab);
        // runs of consecutive blocks in one copy each
        const order = [...compact].sort((x, y) => x[1] - y[1]);
        const bytes = blockFloats * 4;
        for (let i = 0; i < order.length;) {
          let j = i + 1;
          while (j < order.length && order[j]![0] === order[j - 1]![0] + 1) j++;
          for (const [src, dst] of [
            [g(kPool), kc],
            [g(vPool), vc],
          ] as const)
            this.device.copy(src.id, order[i]![0] * bytes, dst.id, order[i]![1] * bytes, (j - i) * bytes);
          i = j;
        }
        kernel([bufs[0]!, bufs[1]!, kc, vc, tb, bufs[2]!], [win[0], win[1], null, null, null, win[2]], bn);
        for (const t of [kc, vc, tb]) this.free(t);
      },
      Infinity,
      maxBlocks * blockFloats * 4,
    );
  }

  // ---- sampling (kernels/sample.ts)
  sampleTokens(
    ids: DeviceBuffer,
    lp: DeviceBuffer,
    logits: DeviceBuffer,
    uniformsBuf: DeviceBuffer,
    B: number,
    V: number,
    temperature: number,
    topK: number,
    topP: number,
    greedy: boolean,
  ): void {
    const op = 'sample_tokens';
    checkSampling(op, temperature, topK, topP);
    need(op, 'out_ids', ids, B, 'int32');
    need(op, 'out_lp', lp, B, 'float32');
    need(op, 'logits', logits, B * V, 'float32');
    need(op, 'uniforms', uniformsBuf, B, 'float32');
    if (B === 0) return;
    const truncK = topK > 0 && topK < V;
    const mode = greedy ? 0 : truncK || topP < 1 ? 2 : 1;
    // top_p as a 64-bit fraction floor(top_p · 2^64) (all ones: off)
    const ps = topP * 2 ** 32;
    const pHi = topP < 1 ? Math.floor(ps) : 0xffffffff;
    const pLo = topP < 1 ? Math.floor((ps - Math.floor(ps)) * 2 ** 32) : 0xffffffff;
    const bad = this.allocate('int32', B);
    try {
      // one workgroup per row: pieces of at most 65535 rows, and of rows whose logits fit one binding
      this.split(
        'sampleTokens',
        'row',
        B,
        3,
        [
          ['out_ids', ids, 1],
          ['out_lp', lp, 1],
          ['flags', bad, 1],
          ['logits', logits, V],
          ['uniforms', uniformsBuf, 1],
        ],
        (_, bn, bufs, win) =>
          this.run(
            'sample',
            smp.sample,
            'sampleTokens',
            3,
            bufs,
            uniforms(
              'uufuuuuu',
              V,
              Math.ceil(V / 256),
              invT(temperature),
              truncK ? topK : V,
              pHi,
              pLo,
              mode,
              // 65 passes per cut (kernels/sample.ts), the last cut's measuring pass dropped
              65 * ((truncK ? 1 : 0) + (topP < 1 ? 1 : 0) + 1) - 1,
            ),
            [bn, 1, 1],
            win,
          ),
        65535,
      );
      // the caller reads the ids next anyway; the flags make a row without a finite maximum an error here
      const flags = this.download(bad) as Int32Array;
      if (flags.some((f) => f !== 0))
        fail(op, 'logits contain no finite maximum (NaN or -inf everywhere) in at least one row');
    } finally {
      this.free(bad);
    }
  }
}

/** Acquires the adapter and device (WebGpuUnavailableError, one line naming what to install, when there is none). */
export async function createWebGpuBackend(): Promise<WebGpuBackend> {
  return new WebGpuBackend(await GpuDevice.acquire());
}
