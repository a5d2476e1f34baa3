/**
 * @module tensor/tensor
 * Tensor handles over backend buffers: contiguous, row-major, float32 / bfloat16 / int32. A tensor
 * knows its backend (src/backend); ops run on the backend of their inputs. Only src/tensor reads
 * `.deviceBuffer`; everything above works with tensors and host arrays.
 *
 * Lifetime: native memory is freed by `dispose()` (reference-counted across `reshape` views) or by
 * leaving a `tidy()` scope, which disposes every tensor created inside it except the ones returned
 * or `keep()`-ed. Tensors created outside any scope live until disposed (or garbage collected).
 * Using a disposed tensor raises TensorOpError naming the op.
 */
import {
  defaultBackend,
  loadBackend,
  setDefaultBackend,
  type Backend,
  type DeviceBuffer,
  type DType,
} from '../backend/index.ts';
import { TensorOpError } from '../errors.ts';

export type { DType };

// The default backend: the CPU unless GPG_RL_BACKEND names another (loaded once, here).
if (!tryDefault()) setDefaultBackend(await loadBackend(process.env.GPG_RL_BACKEND ?? 'cpu'));
function tryDefault(): Backend | null {
  try {
    return defaultBackend();
  } catch {
    return null;
  }
}

/** Shared buffer with a reference count (views created by reshape share it). */
class BufferRef {
  refs = 1;
  constructor(readonly buffer: DeviceBuffer) {}
}

/** The autograd record of the op that produced a tensor (see tape.ts). */
export interface TapeNode {
  op: string;
  inputs: ReadonlyArray<Tensor | null>;
  output: Tensor;
  /** Given dL/d(output), returns dL/d(input) per input (null where no gradient flows). */
  backward: (gy: Tensor) => Array<Tensor | null>;
}

const scopes: Array<Set<Tensor>> = [];
/** Set by tape.ts: drops tape nodes whose outputs were disposed (a forward pass with gradients on but no backward). */
let onScopeEnd: (() => void) | null = null;
export function setScopeEndHook(fn: () => void): void {
  onScopeEnd = fn;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function checkShape(op: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new TensorOpError(op, `invalid shape ${shapeStr(shape)}`);
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  private ref: BufferRef | null;
  /** Leaves with requiresGrad receive `.grad`; op outputs with requiresGrad carry a tape node. */
  requiresGrad = false;
  grad: Tensor | null = null;
  node: TapeNode | null = null;
  /** Optional name (HF parameter name for weights) used in error messages. */
  name: string | undefined;

  private constructor(ref: BufferRef, shape: readonly number[], dtype: DType) {
    this.ref = ref;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    const top = scopes[scopes.length - 1];
    if (top) top.add(this);
  }

  /** Uninitialised (contents unspecified) tensor on `backend` (default: the default backend); `zero` fills with zeros. */
  static empty(shape: readonly number[], dtype: DType = 'float32', zero = false, backend?: Backend): Tensor {
    checkShape('Tensor.empty', shape);
    const be = backend ?? defaultBackend();
    return new Tensor(new BufferRef(be.allocate(dtype, shapeSize(shape), zero)), shape, dtype);
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32', backend?: Backend): Tensor {
    return Tensor.empty(shape, dtype, true, backend);
  }

  /** Copies JS data into a new tensor (float data is rounded when dtype is bfloat16). */
  static fromArray(data: ArrayLike<number>, shape: readonly number[], dtype?: DType): Tensor {
    const dt: DType = dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
    if (data.length !== shapeSize(shape)) {
      throw new TensorOpError(
        'Tensor.fromArray',
        `${data.length} values do not fill shape ${shapeStr(shape)} (${shapeSize(shape)})`,
      );
    }
    const t = Tensor.empty(shape, dt);
    t.write(
      dt === 'int32'
        ? data instanceof Int32Array
          ? data
          : Int32Array.from(data)
        : data instanceof Float32Array
          ? data
          : Float32Array.from(data),
    );
    return t;
  }

  static full(shape: readonly number[], value: number, backend?: Backend): Tensor {
    const t = Tensor.empty(shape, 'float32', false, backend);
    t.backend.fill(t.deviceBuffer, value, t.size);
    return t;
  }

  /** The backend buffer (tensor layer only); throws when disposed. */
  get deviceBuffer(): DeviceBuffer {
    if (!this.ref)
      throw new TensorOpError(
        'tensor',
        `use of a disposed tensor${this.name ? ` (${this.name})` : ''} of shape ${shapeStr(this.shape)}`,
      );
    return this.ref.buffer;
  }

  /** The backend this tensor lives on. */
  get backend(): Backend {
    return this.deviceBuffer.backend;
  }

  /** Overwrites elements [offset, offset + data.length) from host data (int32 tensors take an Int32Array). */
  write(data: Float32Array | Int32Array, offset = 0): void {
    if (offset < 0 || offset + data.length > this.size)
      throw new TensorOpError(
        'Tensor.write',
        `${data.length} values at offset ${offset} do not fit ${shapeStr(this.shape)}`,
      );
    if ((this.dtype === 'int32') !== data instanceof Int32Array)
      throw new TensorOpError(
        'Tensor.write',
        `${this.dtype} tensor ${shapeStr(this.shape)} needs ${this.dtype === 'int32' ? 'an Int32Array' : 'a Float32Array'}`,
      );
    this.backend.upload(this.deviceBuffer, data, offset);
  }

  get disposed(): boolean {
    return this.ref === null;
  }

  /** Copy of the contents (bfloat16 widened to float32). */
  toArray(): Float32Array | Int32Array {
    return this.backend.download(this.deviceBuffer, 0, this.size);
  }

  toFloat32(): Float32Array {
    const a = this.toArray();
    return a instanceof Float32Array ? a : Float32Array.from(a);
  }

  /**
   * Copy of elements [offset, offset + count) as float32 (bfloat16 widened): a large tensor read a
   * range at a time (streamed saves) never needs a whole host copy.
   */
  readFloat32(offset: number, count: number): Float32Array {
    if (this.dtype === 'int32') throw new TensorOpError('Tensor.readFloat32', `int32 tensor ${shapeStr(this.shape)}`);
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(count) ||
      offset < 0 ||
      count < 0 ||
      offset + count > this.size
    )
      throw new TensorOpError(
        'Tensor.readFloat32',
        `elements [${offset}, ${offset + count}) are not within ${shapeStr(this.shape)} (${this.size} elements)`,
      );
    return this.backend.download(this.deviceBuffer, offset, count) as Float32Array;
  }

  item(): number {
    if (this.size !== 1) throw new TensorOpError('item', `tensor of shape ${shapeStr(this.shape)} is not a scalar`);
    return this.toArray()[0]!;
  }

  /** A view with a new shape over the same storage (no copy, no gradient tracking). */
  view(shape: readonly number[]): Tensor {
    const s = [...shape];
    const neg = s.indexOf(-1);
    if (neg >= 0) s[neg] = this.size / shapeSize(s.filter((_, i) => i !== neg));
    if (shapeSize(s) !== this.size)
      throw new TensorOpError('view', `cannot view ${shapeStr(this.shape)} as ${shapeStr(shape)}`);
    const ref = this.ref;
    if (!ref) throw new TensorOpError('view', 'use of a disposed tensor');
    ref.refs++;
    return new Tensor(ref, s, this.dtype);
  }

  /** Deep copy (no gradient tracking). */
  clone(): Tensor {
    const t = Tensor.empty(this.shape, this.dtype, false, this.backend);
    this.backend.copy(t.deviceBuffer, 0, this.deviceBuffer, 0, this.size);
    return t;
  }

  /** Overwrites the contents with another tensor's (same dtype and size). */
  copyFrom(src: Tensor): void {
    if (src.size !== this.size || src.dtype !== this.dtype) {
      throw new TensorOpError(
        'copyFrom',
        `${shapeStr(src.shape)} ${src.dtype} into ${shapeStr(this.shape)} ${this.dtype}`,
      );
    }
    if (src.backend !== this.backend) this.write(src.toArray());
    else this.backend.copy(this.deviceBuffer, 0, src.deviceBuffer, 0, this.size);
  }

  /** Frees the native memory (once the last view is disposed). Idempotent. */
  dispose(): void {
    const ref = this.ref;
    if (!ref) return;
    this.ref = null;
    this.node = null;
    if (--ref.refs === 0) ref.buffer.backend.free(ref.buffer);
    for (const s of scopes) s.delete(this);
  }

  /** Removes this tensor from every enclosing tidy() scope so it outlives them. */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.disposed ? ', disposed' : ''})`;
  }
}

function collect(x: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || x === null || typeof x !== 'object') return;
  if (x instanceof Tensor) {
    out.add(x);
    return;
  }
  if (Array.isArray(x)) for (const v of x) collect(v, out, depth + 1);
  else if (x instanceof Map) for (const v of x.values()) collect(v, out, depth + 1);
  else if (Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) collect(v, out, depth + 1);
}

function endScope(scope: Set<Tensor>, result: unknown): void {
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keepers.has(t)) parent?.add(t);
    else t.dispose();
  }
  if (scopes.length === 0) onScopeEnd?.();
}

/**
 * Runs `fn` in a scope: every tensor created inside and not returned (or kept) is disposed when
 * it returns. Returned tensors (also inside arrays / plain objects / Maps) move to the parent scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    endScope(scope, undefined);
    throw e;
  }
  scopes.pop();
  endScope(scope, result);
  return result;
}

/** Async variant of tidy(); do not interleave two async scopes concurrently. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    scopes.splice(scopes.indexOf(scope), 1);
    endScope(scope, undefined);
    throw e;
  }
  scopes.splice(scopes.indexOf(scope), 1);
  endScope(scope, result);
  return result;
}

/** Disposes every tensor in a (possibly nested) structure. */
export function disposeAll(x: unknown): void {
  const s = new Set<Tensor>();
  collect(x, s);
  for (const t of s) t.dispose();
}
