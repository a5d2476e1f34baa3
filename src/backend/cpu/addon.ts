/**
 * @module backend/cpu/addon
 * Loads the C++ addon (build/Release/gpg_native.node). Only the CPU backend (backend/cpu/index.ts)
 * imports this file; it checks shapes and dtypes first (in the tensor layer), so native errors
 * are a second line of defence (they still arrive as NativeOpError naming the op, never a crash).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpgRlError, NativeOpError } from '../../errors.ts';

/** Native dtype codes (must match native/binding.h). */
export const DTYPE_CODE = { float32: 0, bfloat16: 1, int32: 2 } as const;

/** A native buffer: contiguous, 64-byte aligned. */
export interface NativeStorage {
  free(): void;
  read(offset?: number, count?: number): Float32Array | Int32Array;
  write(data: Float32Array | Int32Array, offset?: number): void;
  readBytes(): Uint8Array;
  writeBytes(bytes: Uint8Array): void;
  readonly numel: number;
  readonly dtype: number;
  readonly freed: boolean;
}

export type NativeFn = (...args: unknown[]) => unknown;

export interface NativeAddon {
  Storage: new (dtype: number, numel: number, zero?: boolean) => NativeStorage;
  init(errorClass: unknown): void;
  setNumThreads(n: number): number;
  getNumThreads(): number;
  liveBytes(): number;
  /** The production kernels of native/binding.cc's table (gemm, rmsnorm_forward, ...). */
  ops: Record<string, NativeFn>;
  /** Benchmark-only kernels (fma_peak, mem_bandwidth): not part of the op table. */
  bench?: Record<string, NativeFn>;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function load(): NativeAddon {
  const candidates = [
    join(root, 'build', 'Release', 'gpg_native.node'),
    join(root, 'build', 'Debug', 'gpg_native.node'),
  ];
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    throw new GpgRlError(
      'native addon not built (build/Release/gpg_native.node missing): run `npm ci` or `npm run build:native` (needs libdnnl-dev)',
      'GPG_NATIVE_MISSING',
    );
  }
  // libgomp reads its settings when the addon loads it. Its default busy-wait (300k spins at
  // every barrier) collapses throughput as soon as another process wants the cores (measured
  // 5x slower steps at load 7 on 2 cores); a short spin keeps the quiet-machine speed.
  if (process.env.GOMP_SPINCOUNT === undefined && process.env.OMP_WAIT_POLICY === undefined)
    process.env.GOMP_SPINCOUNT = '10000';
  const require = createRequire(import.meta.url);
  const addon = require(file) as NativeAddon;
  addon.init(NativeOpError);
  const threads = Number(process.env.GPG_RL_THREADS ?? process.env.OMP_NUM_THREADS ?? 0);
  if (threads > 0) addon.setNumThreads(threads);
  return addon;
}

export const native: NativeAddon = load();

/** A production op by name; a missing op is a clear error, not `undefined is not a function`. */
export function op(name: string): NativeFn {
  const f = native.ops[name];
  if (!f)
    throw new GpgRlError(
      `native op "${name}" is not in the addon; rebuild with \`npm run build:native\``,
      'GPG_NATIVE_MISSING',
    );
  return f;
}

/** A benchmark-only kernel by name (src/perf). */
export function benchOp(name: string): NativeFn {
  const f = native.bench?.[name];
  if (!f)
    throw new GpgRlError(
      `native benchmark kernel "${name}" is not in the addon; rebuild with \`npm run build:native\``,
      'GPG_NATIVE_MISSING',
    );
  return f;
}
