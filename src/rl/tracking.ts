/**
 * @module rl/tracking
 * Experiment trackers named by `report_to` (metrics.jsonl is always written by rl/metrics.ts):
 *
 * - `tensorboard`: `events.out.tfevents.<time>.<host>.<pid>.<n>` in logging_dir, the format
 *   TensorBoard reads. A file is a sequence of TFRecords — uint64 length, masked CRC32C of the
 *   length, the bytes, masked CRC32C of the bytes (tensorflow/core/lib/io/record_writer.cc) — each
 *   holding one `tensorflow.Event` protobuf (tensorflow/core/util/event.proto): the first carries
 *   `file_version: "brain.Event:2"`, the others `wall_time`, `step` and a `Summary` of
 *   `{ tag, simple_value }` scalars (tensorflow/core/framework/summary.proto). No npm library
 *   writes Event files (the TFRecord ones write tf.Example), so the ~20 bytes of protobuf are
 *   encoded here; CRC32C is @aws-crypto/crc32c.
 * - `csv`: `metrics.csv` in output_dir, a header row of the metric names (TRL names, `step`
 *   first) and one row per logged step.
 *
 * Both log every `logging_steps` steps (and the last), each value the mean of the finite values of
 * the steps since the previous log (TRL averages its metrics over the logging window); `step`,
 * `learning_rate` and the counters are the current step's. On --resume, rows after the checkpoint
 * are dropped from metrics.csv and a new event file is started.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@aws-crypto/crc32c';
import { writeFileAtomic } from '../io/atomic.ts';
import { GpgRlError } from '../errors.ts';
import type { Tracker } from './config.ts';

// ---------------------------------------------------------------------------------------------
// TFRecord framing and the Event protobuf

/** CRC32C masked as TFRecord does: rotate right by 15, add 0xa282ead8 (mod 2^32). */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data) >>> 0;
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length (uint64 LE), masked CRC of the length, data, masked CRC of the data. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

class ProtoWriter {
  private readonly parts: number[] = [];
  varint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n; // int64 two's complement, as protobuf encodes negative int64
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.parts.push(b);
    } while (x > 0n);
    return this;
  }
  key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  double(field: number, v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.key(field, 1).parts.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.key(field, 5).parts.push(...b);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2)
      .varint(b.length)
      .parts.push(...b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** `tensorflow.Event` with the file version (the first record of every event file). */
export function fileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, 'brain.Event:2').done();
}

/** `tensorflow.Event { wall_time, step, summary { value { tag, simple_value } … } }`. */
export function scalarsEvent(wallTime: number, step: number, scalars: Record<string, number>): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, v] of Object.entries(scalars)) {
    if (!Number.isFinite(v)) continue; // TensorBoard plots NaN as gaps anyway; leave them out
    summary.bytes(1, new ProtoWriter().string(1, tag).float(2, v).done());
  }
  return new ProtoWriter().double(1, wallTime).key(2, 0).varint(step).bytes(5, summary.done()).done();
}

/** Appends Event records to one events.out.tfevents.* file (each record one write + fsync). */
export class EventFileWriter {
  readonly path: string;
  private fd: number | null;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    const now = Date.now() / 1000;
    let n = 0;
    let path: string;
    do path = join(dir, `events.out.tfevents.${Math.floor(now)}.${hostname()}.${process.pid}.${n++}`);
    while (existsSync(path));
    this.path = path;
    this.fd = openSync(path, 'a');
    this.append(fileVersionEvent(now));
  }

  scalars(step: number, values: Record<string, number>): void {
    this.append(scalarsEvent(Date.now() / 1000, step, values));
  }

  private append(event: Uint8Array): void {
    if (this.fd === null) throw new GpgRlError(`EventFileWriter: ${this.path} is closed`);
    writeSync(this.fd, tfRecord(event));
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

// ---------------------------------------------------------------------------------------------
// reading event files back (tests, `gpg-rl report`): framing and CRCs checked

export interface ScalarEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
}

class ProtoReader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  varint(): bigint {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.b.length) throw new GpgRlError('event file: truncated varint', 'GPG_TFEVENTS');
      const byte = this.b[this.pos++]!;
      x |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return x;
      shift += 7n;
    }
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.b.length) throw new GpgRlError('event file: truncated field', 'GPG_TFEVENTS');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.take(8);
    else if (wire === 2) this.take(Number(this.varint()));
    else if (wire === 5) this.take(4);
    else throw new GpgRlError(`event file: unsupported wire type ${wire}`, 'GPG_TFEVENTS');
  }
}

function parseEvent(b: Uint8Array): ScalarEvent {
  const r = new ProtoReader(b);
  const ev: ScalarEvent = { wallTime: 0, step: 0, scalars: {} };
  while (!r.done) {
    const key = Number(r.varint());
    const [field, wire] = [key >> 3, key & 7];
    if (field === 1 && wire === 1) ev.wallTime = new DataView(r.take(8).slice().buffer).getFloat64(0, true);
    else if (field === 2 && wire === 0) ev.step = Number(BigInt.asIntN(64, r.varint()));
    else if (field === 3 && wire === 2) ev.fileVersion = new TextDecoder().decode(r.take(Number(r.varint())));
    else if (field === 5 && wire === 2) {
      const s = new ProtoReader(r.take(Number(r.varint())));
      while (!s.done) {
        const k = Number(s.varint());
        if (k >> 3 !== 1 || (k & 7) !== 2) {
          s.skip(k & 7);
          continue;
        }
        const v = new ProtoReader(s.take(Number(s.varint())));
        let tag = '';
        let value = NaN;
        while (!v.done) {
          const kk = Number(v.varint());
          if (kk >> 3 === 1 && (kk & 7) === 2) tag = new TextDecoder().decode(v.take(Number(v.varint())));
          else if (kk >> 3 === 2 && (kk & 7) === 5) value = new DataView(v.take(4).slice().buffer).getFloat32(0, true);
          else v.skip(kk & 7);
        }
        ev.scalars[tag] = value;
      }
    } else r.skip(wire);
  }
  return ev;
}

/** Every Event of a tfevents file; a bad length/data CRC or a truncated record is an error naming the offset. */
export function readEventFile(path: string): ScalarEvent[] {
  const buf = new Uint8Array(readFileSync(path));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ScalarEvent[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw new GpgRlError(`${path}: truncated record header at byte ${off}`, 'GPG_TFEVENTS');
    const len = Number(dv.getBigUint64(off, true));
    if (dv.getUint32(off + 8, true) !== maskedCrc32c(buf.subarray(off, off + 8)))
      throw new GpgRlError(`${path}: length CRC mismatch at byte ${off}`, 'GPG_TFEVENTS');
    if (off + 12 + len + 4 > buf.length)
      throw new GpgRlError(`${path}: truncated record at byte ${off}`, 'GPG_TFEVENTS');
    const data = buf.subarray(off + 12, off + 12 + len);
    if (dv.getUint32(off + 12 + len, true) !== maskedCrc32c(data))
      throw new GpgRlError(`${path}: data CRC mismatch at byte ${off}`, 'GPG_TFEVENTS');
    out.push(parseEvent(data));
    off += 12 + len + 4;
  }
  return out;
}

/** The tfevents files of a folder, oldest first. */
export function eventFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort()
    .map((f) => join(dir, f));
}

// ---------------------------------------------------------------------------------------------
// CSV

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** metrics.csv: header of `keys`, one row per logged step; empty cell for a missing/non-finite value. */
export class CsvWriter {
  readonly path: string;
  private fd: number | null;

  constructor(
    path: string,
    readonly keys: readonly string[],
    resumeStep: number | null,
  ) {
    this.path = path;
    const header = keys.map(csvCell).join(',');
    if (resumeStep !== null && existsSync(path)) {
      // keep the rows up to the checkpoint (the header must match: the keys depend only on the config)
      const lines = readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      const keep = lines[0] === header ? lines.slice(1).filter((l) => Number(l.split(',')[0]) <= resumeStep) : [];
      writeFileAtomic(path, [header, ...keep].join('\n') + '\n');
    } else writeFileAtomic(path, header + '\n');
    this.fd = openSync(path, 'a');
  }

  row(values: Record<string, number>): void {
    if (this.fd === null) throw new GpgRlError(`CsvWriter: ${this.path} is closed`);
    const cells = this.keys.map((k) => {
      const v = values[k];
      return v === undefined || !Number.isFinite(v) ? '' : String(v);
    });
    writeSync(this.fd, cells.join(',') + '\n');
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

// ---------------------------------------------------------------------------------------------
// the run's trackers

/** Taken from the logging step itself, not averaged over the window. */
const CURRENT = new Set(['step', 'learning_rate', 'gpg/skipped_steps']);

export interface TrackingOptions {
  reportTo: readonly Tracker[];
  outputDir: string;
  /** TensorBoard folder (null = outputDir). */
  loggingDir: string | null;
  loggingSteps: number;
  totalSteps: number;
  /** metrics.jsonl keys, in order (the CSV header). */
  keys: readonly string[];
  /** The checkpoint step of a --resume (CSV rows after it are dropped), else null. */
  resumeStep: number | null;
}

/** Fans each step's metrics out to the configured trackers, averaged over logging_steps. */
export class Tracking {
  private readonly tb: EventFileWriter | null;
  private readonly csv: CsvWriter | null;
  private window: Record<string, number>[] = [];

  constructor(private readonly o: TrackingOptions) {
    this.tb = o.reportTo.includes('tensorboard') ? new EventFileWriter(o.loggingDir ?? o.outputDir) : null;
    this.csv = o.reportTo.includes('csv')
      ? new CsvWriter(join(o.outputDir, 'metrics.csv'), o.keys, o.resumeStep)
      : null;
  }

  get active(): boolean {
    return this.tb !== null || this.csv !== null;
  }

  /** One step's metrics row (step = its 1-based number). */
  step(row: Record<string, number>): void {
    if (!this.active) return;
    this.window.push(row);
    const step = row.step!;
    if (step % this.o.loggingSteps !== 0 && step !== this.o.totalSteps) return;
    this.flush();
  }

  /** Logs what the window holds (also called when a run stops early). */
  flush(): void {
    if (this.window.length === 0) return;
    const last = this.window.at(-1)!;
    const avg: Record<string, number> = {};
    for (const k of this.o.keys) {
      if (CURRENT.has(k)) {
        avg[k] = last[k]!;
        continue;
      }
      let s = 0;
      let n = 0;
      for (const r of this.window) {
        const v = r[k];
        if (v !== undefined && Number.isFinite(v)) {
          s += v;
          n++;
        }
      }
      avg[k] = n ? s / n : NaN;
    }
    this.window = [];
    const { step, ...rest } = avg;
    this.tb?.scalars(step!, rest);
    this.csv?.row(avg);
  }

  /** Evaluation results (`eval/<benchmark>/pass1`, …) at a step: TensorBoard only (metrics.csv keeps one header). */
  eval(step: number, scalars: Record<string, number>): void {
    this.tb?.scalars(step, scalars);
  }

  close(): void {
    this.flush();
    this.tb?.close();
    this.csv?.close();
  }
}
