/**
 * @module model/safetensors
 * Reads and writes the safetensors format (https://github.com/huggingface/safetensors, format
 * section of its README): 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{ "__metadata__": {str: str}, name: { dtype, shape, data_offsets: [begin, end] } }`, then the
 * data region; offsets are relative to the data region.
 *
 * Files are UNTRUSTED: the header length, JSON, every dtype, shape and offset pair, and full
 * non-overlapping coverage of the data region (as the Rust reader requires) are validated before
 * any tensor is exposed or any tensor byte is read. Every failure is a one-line SafetensorsError
 * naming the file and, where there is one, the tensor.
 *
 * Tensors are plain data: raw little-endian bytes plus dtype and shape; `toFloat32`/`fromFloat32`
 * convert (bf16 rounds to nearest-even like `torch.Tensor.to(torch.bfloat16)`).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';
import { basename, dirname, join } from 'node:path';
import { endianness } from 'node:os';
import { SafetensorsError } from '../errors.ts';

/** dtype codes with a whole number of bytes per element (sub-byte F4/F6 are rejected). */
export type StDtype =
  | 'F32'
  | 'BF16'
  | 'F16'
  | 'F64'
  | 'I32'
  | 'I64'
  | 'U8'
  | 'I8'
  | 'BOOL'
  | 'I16'
  | 'U16'
  | 'U32'
  | 'U64'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'F8_E8M0';

/** Bytes per element for each dtype code. */
export const ST_ITEMSIZE: Readonly<Record<StDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** One tensor: dtype, shape and its raw little-endian bytes (a view into the file buffer). */
export interface StTensor {
  dtype: StDtype;
  shape: number[];
  data: Uint8Array;
}

/**
 * A tensor whose bytes are produced on demand, piece by piece (a backend buffer read a range at a
 * time): the writer asks for the next piece only after the previous one is on disk, so a file
 * of any size is written through a few MiB of host memory.
 */
export interface StSource {
  dtype: StDtype;
  shape: number[];
  /** The tensor's bytes in order (their total must be the shape × dtype size). */
  pieces(): Iterable<Uint8Array>;
}

export interface StFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

/** The Rust reader's limit (safetensors `MAX_HEADER_SIZE`): 100 MB of header JSON. */
export const MAX_HEADER_BYTES = 100_000_000;

if (endianness() !== 'LE') throw new SafetensorsError('safetensors: this reader assumes a little-endian host');

// ---------------------------------------------------------------------------------------------
// header validation (shared by the buffer and file readers)

interface TensorEntry {
  name: string;
  dtype: StDtype;
  shape: number[];
  begin: number;
  end: number;
}

function isDtype(d: unknown): d is StDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(ST_ITEMSIZE, d);
}

/** Reads the 8-byte header length; checks it against the limit and the file size. */
function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8)
    throw new SafetensorsError(
      `${source}: file is ${fileSize} bytes, shorter than the 8-byte header length; the file is truncated or not safetensors`,
    );
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(
      `${source}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit; the file is corrupted or not safetensors`,
    );
  const len = Number(n);
  if (len + 8 > fileSize)
    throw new SafetensorsError(
      `${source}: header length ${len} runs past the end of the ${fileSize}-byte file; the file is truncated`,
    );
  if (len < 2) throw new SafetensorsError(`${source}: header length ${len} is too small for a JSON object`);
  return len;
}

/**
 * Parses and validates the JSON header against a data region of `dataLen` bytes. Returns the
 * tensor entries in file order (sorted by offset) and the metadata.
 */
function parseHeader(
  headerBytes: Uint8Array,
  dataLen: number,
  source: string,
): { entries: TensorEntry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(`${source}: header is not valid UTF-8`);
  }
  // HF pads the header with trailing spaces to 8-byte alignment; JSON.parse accepts trailing whitespace.
  if (!text.startsWith('{'))
    throw new SafetensorsError(`${source}: header does not start with '{'; not a safetensors file`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${source}: header is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new SafetensorsError(`${source}: header JSON is not an object`);

  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info))
        throw new SafetensorsError(`${source}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string')
          throw new SafetensorsError(`${source}: __metadata__.${k} must be a string (got ${typeof v})`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${source}: tensor "${name}"`;
    if (info === null || typeof info !== 'object' || Array.isArray(info))
      throw new SafetensorsError(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (!isDtype(dtype))
      throw new SafetensorsError(
        `${where}: unsupported dtype ${JSON.stringify(dtype)?.slice(0, 40)} (supported: ${Object.keys(ST_ITEMSIZE).join(', ')})`,
      );
    if (!Array.isArray(shape) || shape.length > 64)
      throw new SafetensorsError(`${where}: shape must be an array of at most 64 dims`);
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
        throw new SafetensorsError(
          `${where}: shape ${JSON.stringify(shape).slice(0, 80)} has an invalid dim (need non-negative integers)`,
        );
    }
    if (!Array.isArray(offs) || offs.length !== 2)
      throw new SafetensorsError(`${where}: data_offsets must be [begin, end]`);
    const [begin, end] = offs as unknown[];
    if (
      typeof begin !== 'number' ||
      typeof end !== 'number' ||
      !Number.isSafeInteger(begin) ||
      !Number.isSafeInteger(end) ||
      begin < 0 ||
      end < begin
    ) {
      throw new SafetensorsError(
        `${where}: data_offsets ${JSON.stringify(offs).slice(0, 80)} are invalid (need integers 0 <= begin <= end)`,
      );
    }
    if (end > dataLen)
      throw new SafetensorsError(
        `${where}: data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data region; the file is truncated or corrupted`,
      );
    // Byte size = prod(shape) * itemsize, computed without overflow: a product beyond the data
    // region can never match, so stop as soon as it exceeds it (a zero dim makes it 0).
    const item = ST_ITEMSIZE[dtype];
    let nbytes = shape.includes(0) ? 0 : item;
    if (nbytes !== 0) {
      for (const d of shape as number[]) {
        nbytes *= d;
        if (nbytes > dataLen) break;
      }
    }
    if (nbytes !== end - begin) {
      throw new SafetensorsError(
        `${where}: shape [${(shape as number[]).join(', ')}] x ${dtype} needs ${nbytes > dataLen ? `more than ${dataLen}` : nbytes} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin, end });
  }
  // Coverage: sorted by begin, each tensor starts where the previous ended, the last ends at the
  // end of the data region (Rust `Metadata::validate`: no gaps, no overlaps, no trailing bytes).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      throw new SafetensorsError(
        `${source}: tensor "${e.name}" starts at byte ${e.begin} of the data region but the previous tensor ends at ${pos} (${e.begin < pos ? 'overlap' : 'gap'}); the file is corrupted`,
      );
    }
    pos = e.end;
  }
  if (pos !== dataLen)
    throw new SafetensorsError(
      `${source}: tensors cover ${pos} bytes but the data region holds ${dataLen}; the file is corrupted or has trailing bytes`,
    );
  return { entries, metadata };
}

// ---------------------------------------------------------------------------------------------
// readers

/** Parses a whole safetensors file held in memory. Tensor `data` are views into `buf`. */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): StFile {
  const n = headerLength(buf, buf.length, source);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(buf.subarray(8, dataStart), buf.length - dataStart, source);
  const tensors = new Map<string, StTensor>();
  for (const e of entries)
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: buf.subarray(dataStart + e.begin, dataStart + e.end) });
  return { tensors, metadata };
}

function readExactly(fd: number, dst: Uint8Array, position: number, source: string): void {
  let off = 0;
  while (off < dst.length) {
    // readSync takes at most 2 GiB per call.
    const n = readSync(fd, dst, off, Math.min(dst.length - off, 1 << 30), position + off);
    if (n <= 0)
      throw new SafetensorsError(
        `${source}: unexpected end of file at byte ${position + off}; the file was truncated while reading`,
      );
    off += n;
  }
}

/**
 * Reads a safetensors file: header first (validated against the file size), then each tensor
 * into its own buffer, so multi-GB shards never need one giant allocation.
 */
export function readSafetensorsFile(path: string): StFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(fd, prefix, 0, path);
    const n = headerLength(prefix, size, path);
    const header = new Uint8Array(n);
    readExactly(fd, header, 8, path);
    const dataStart = 8 + n;
    const { entries, metadata } = parseHeader(header, size - dataStart, path);
    const tensors = new Map<string, StTensor>();
    for (const e of entries) {
      const data = new Uint8Array(e.end - e.begin);
      readExactly(fd, data, dataStart + e.begin, path);
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// dtype conversion

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Copies the bytes into a fresh, aligned ArrayBuffer (tensor views may sit at odd offsets). */
function aligned(data: Uint8Array, align: number): ArrayBuffer {
  if (data.byteOffset % align === 0 && data.buffer instanceof ArrayBuffer) {
    return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  }
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy.buffer;
}

/** IEEE binary16 bits → float32 value (subnormals, inf and NaN included). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float32 → IEEE binary16 bits, round to nearest even (as numpy / torch `.half()`). */
export function f32ToF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf / NaN (quiet)
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    mant |= 0x800000; // implicit 1
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r; // a carry into the exponent field is the correct smallest normal
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++; // carry may round up to inf: correct
  return sign | r;
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
function f32BitsToBf16(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** F32/BF16/F16/F64 tensor → a new Float32Array (a copy). Other dtypes are an error. */
export function toFloat32(t: StTensor): Float32Array {
  const n = numel(t.shape);
  const expect = n * (ST_ITEMSIZE[t.dtype] ?? NaN);
  if (t.data.byteLength !== expect)
    throw new SafetensorsError(
      `toFloat32: tensor of shape [${t.shape.join(', ')}] ${t.dtype} needs ${expect} bytes, has ${t.data.byteLength}`,
    );
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(aligned(t.data, 4));
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(t.data, 8)));
    case 'BF16': {
      const src = new Uint16Array(aligned(t.data, 2));
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = src[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case 'F16': {
      const src = new Uint16Array(aligned(t.data, 2));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(src[i]!);
      return out;
    }
    default:
      throw new SafetensorsError(`toFloat32: dtype ${t.dtype} is not a float type (expected F32, BF16, F16 or F64)`);
  }
}

/** I32/I64 (range-checked) and small integer / BOOL tensors → a new Int32Array. */
export function toInt32(t: StTensor): Int32Array {
  const n = numel(t.shape);
  const expect = n * (ST_ITEMSIZE[t.dtype] ?? NaN);
  if (t.data.byteLength !== expect)
    throw new SafetensorsError(
      `toInt32: tensor of shape [${t.shape.join(', ')}] ${t.dtype} needs ${expect} bytes, has ${t.data.byteLength}`,
    );
  switch (t.dtype) {
    case 'I32':
      return new Int32Array(aligned(t.data, 4));
    case 'I64': {
      const src = new BigInt64Array(aligned(t.data, 8));
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i]!;
        if (v > 2147483647n || v < -2147483648n)
          throw new SafetensorsError(`toInt32: I64 value ${v} at index ${i} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
    case 'I16':
      return Int32Array.from(new Int16Array(aligned(t.data, 2)));
    case 'U16':
      return Int32Array.from(new Uint16Array(aligned(t.data, 2)));
    case 'I8':
      return Int32Array.from(new Int8Array(aligned(t.data, 1)));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(t.data);
    default:
      throw new SafetensorsError(
        `toInt32: dtype ${t.dtype} is not an integer type (expected I32, I64, I16, U16, I8, U8 or BOOL)`,
      );
  }
}

function checkShape(op: string, len: number, shape: number[]): void {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel(shape) !== len) {
    throw new SafetensorsError(`${op}: shape [${shape.join(', ')}] does not match ${len} elements`);
  }
}

/** Float32 values → an F32, BF16 (round-nearest-even) or F16 tensor with fresh bytes. */
export function fromFloat32(data: Float32Array, shape: number[], dtype: 'F32' | 'BF16' | 'F16'): StTensor {
  checkShape('fromFloat32', data.length, shape);
  if (dtype === 'F32') {
    const out = new Float32Array(data.length);
    out.set(data);
    return { dtype, shape: shape.slice(), data: new Uint8Array(out.buffer) };
  }
  return { dtype, shape: shape.slice(), data: encodeFloat32(data, dtype) };
}

/** The bytes of float32 values as F32 (a view, no copy), BF16 (round-nearest-even) or F16. */
function encodeFloat32(data: Float32Array, dtype: 'F32' | 'BF16' | 'F16'): Uint8Array {
  const n = data.length;
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(n);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(data.buffer, data.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = f32BitsToBf16(bits[i]!);
  } else if (dtype === 'F16') {
    for (let i = 0; i < n; i++) out[i] = f32ToF16(data[i]!);
  } else {
    throw new SafetensorsError(`fromFloat32: dtype ${String(dtype)} is not one of F32, BF16, F16`);
  }
  return new Uint8Array(out.buffer);
}

/** Float32 values read per piece of `pieceValues` (default 4 Mi: 16 MiB) by `read(offset, count)`. */
export const STREAM_PIECE_VALUES = 1 << 22;

/**
 * An F32, BF16 or F16 tensor streamed from float32 values that `read(offset, count)` returns a
 * range at a time (a backend buffer's download, or a host array's subarray): the same bytes as
 * fromFloat32, never more than one piece on the host.
 */
export function streamFloat32(
  read: (offset: number, count: number) => Float32Array,
  shape: number[],
  dtype: 'F32' | 'BF16' | 'F16',
  pieceValues = STREAM_PIECE_VALUES,
): StSource {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new SafetensorsError(`streamFloat32: shape [${shape.join(', ')}] is not a list of sizes`);
  if (dtype !== 'F32' && dtype !== 'BF16' && dtype !== 'F16')
    throw new SafetensorsError(`streamFloat32: dtype ${String(dtype)} is not one of F32, BF16, F16`);
  const n = numel(shape);
  return {
    dtype,
    shape: shape.slice(),
    *pieces() {
      for (let off = 0; off < n; off += pieceValues) {
        const count = Math.min(pieceValues, n - off);
        const values = read(off, count);
        if (values.length !== count)
          throw new SafetensorsError(`streamFloat32: read(${off}, ${count}) returned ${values.length} values`);
        yield encodeFloat32(values, dtype);
      }
    },
  };
}

/** Int32 values → an I32 tensor with fresh bytes. */
export function fromInt32(data: Int32Array, shape: number[]): StTensor {
  checkShape('fromInt32', data.length, shape);
  const out = new Int32Array(data.length);
  out.set(data);
  return { dtype: 'I32', shape: shape.slice(), data: new Uint8Array(out.buffer) };
}

// ---------------------------------------------------------------------------------------------
// writer

type StEntry = StTensor | StSource;

/** The header bytes (padded) and tensor order of a serialization, without copying tensor data. */
function layout(
  tensors: Map<string, StEntry> | Record<string, StEntry>,
  metadata: Record<string, string>,
): { header: Uint8Array; order: Array<{ name: string; t: StEntry; bytes: number }>; dataBytes: number } {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  const order: Array<{ name: string; t: StEntry; bytes: number }> = [];
  let pos = 0;
  for (const name of names) {
    if (name === '__metadata__')
      throw new SafetensorsError(`serializeSafetensors: "__metadata__" is reserved and cannot name a tensor`);
    const t = map.get(name)!;
    if (!isDtype(t.dtype))
      throw new SafetensorsError(`serializeSafetensors: tensor "${name}": unsupported dtype ${String(t.dtype)}`);
    const need = numel(t.shape) * ST_ITEMSIZE[t.dtype];
    const have = 'data' in t ? t.data.byteLength : need; // a source's bytes are counted as they are written
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || need !== have) {
      throw new SafetensorsError(
        `serializeSafetensors: tensor "${name}": shape [${t.shape.join(', ')}] x ${t.dtype} needs ${need} bytes, data has ${have}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + need] };
    order.push({ name, t, bytes: need });
    pos += need;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefixed = new Uint8Array(8 + json.length);
  new DataView(prefixed.buffer).setBigUint64(0, BigInt(json.length), true);
  prefixed.set(json, 8);
  return { header: prefixed, order, dataBytes: pos };
}

/** A tensor's bytes: its data, or a source's pieces checked to add up to what the header says. */
function* bytesOf(e: { name: string; t: StEntry; bytes: number }): Generator<Uint8Array> {
  if ('data' in e.t) {
    yield e.t.data;
    return;
  }
  let got = 0;
  for (const piece of e.t.pieces()) {
    got += piece.byteLength;
    if (got > e.bytes) break;
    yield piece;
  }
  if (got !== e.bytes)
    throw new SafetensorsError(
      `serializeSafetensors: tensor "${e.name}": its source gave ${got > e.bytes ? 'more than' : got} of the ${e.bytes} bytes of [${e.t.shape.join(', ')}] x ${e.t.dtype}`,
    );
}

/**
 * Serializes tensors as HF does: `__metadata__` (always with `"format": "pt"`) first, tensors
 * sorted by name and packed back to back, header padded with spaces to a multiple of 8 bytes.
 */
export function serializeSafetensors(
  tensors: Map<string, StEntry> | Record<string, StEntry>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const { header, order, dataBytes } = layout(tensors, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let off = header.length;
  for (const e of order)
    for (const piece of bytesOf(e)) {
      out.set(piece, off);
      off += piece.byteLength;
    }
  return out;
}

/**
 * Same bytes as serializeSafetensors, written atomically tensor by tensor (no whole-file
 * buffer): the header first (offsets follow from shapes and dtypes), then each tensor's data, a
 * source's one piece at a time.
 */
export function writeSafetensorsFile(
  path: string,
  tensors: Map<string, StEntry> | Record<string, StEntry>,
  metadata: Record<string, string> = {},
): void {
  const { header, order } = layout(tensors, metadata);
  function* chunks(): Generator<Uint8Array> {
    yield header;
    for (const e of order) yield* bytesOf(e);
  }
  try {
    writeFileAtomic(path, chunks());
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
