/**
 * @module backend/cpu/addon
 * Loads the C++ addon: gpg_native-<level>.node, the best instruction-set level of native/isa.json
 * this CPU has, from the first of these folders that holds a build for this architecture:
 *   $GPG_RL_NATIVE_DIR             when set, only this folder (scripts/check-arm64.mjs uses it)
 *   build/isa/                     built from source (`npm ci`, `npm run build:native`)
 *   prebuilds/<platform>-<arch>/   shipped in the npm package (node-gyp-build's folder names),
 *                                  oneDNN and libgomp beside it (the addon's RUNPATH is $ORIGIN)
 * Only the CPU backend (backend/cpu/index.ts)
 * imports this file; it checks shapes and dtypes first (in the tensor layer), so native errors
 * are a second line of defence (they still arrive as NativeOpError naming the op, never a crash).
 */
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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
  allocStats(): { cachedBytes: number; mappedBytes: number; hits: number; misses: number; capBytes: number };
  releaseCache(): void;
  /** The production kernels of native/binding.cc's table (gemm, rmsnorm_forward, ...). */
  ops: Record<string, NativeFn>;
  /** Benchmark-only kernels (fma_peak, mem_bandwidth): not part of the op table. */
  bench?: Record<string, NativeFn>;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface IsaLevel {
  name: string;
  flags: string;
  cpu: string[];
}

/** CPU feature flags as /proc/cpuinfo names them (Linux); null where unknown. */
function cpuFlags(): Set<string> | null {
  try {
    const m = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? new Set(m[1]!.trim().split(/\s+/)) : null;
  } catch {
    return null;
  }
}

/**
 * The addon build to load: build/isa/ holds one per instruction-set level (native/isa.json, best
 * first); the first level whose CPU flags this machine has, or GPG_RL_NATIVE_ISA=NAME. Where the
 * flags can't be read (not Linux), the lowest level built. Exported for tests.
 */
export function chooseNativeBuild(
  built: string[],
  levels: IsaLevel[],
  flags: Set<string> | null,
  force: string | undefined,
): { name: string; reason: string } {
  if (force) {
    if (!built.includes(force))
      throw new GpgRlError(
        `GPG_RL_NATIVE_ISA=${force}: no such build in build/isa (built: ${built.join(', ') || 'none'}); rebuild with GPG_RL_NATIVE_ISA=${force} npm run build:native`,
        'GPG_NATIVE_MISSING',
      );
    return { name: force, reason: 'GPG_RL_NATIVE_ISA' };
  }
  if (built.includes('native')) return { name: 'native', reason: 'built for this CPU (-march=native)' };
  const usable = levels.filter((l) => built.includes(l.name));
  if (!flags) {
    const low = usable[usable.length - 1];
    if (!low)
      throw new GpgRlError(`no native addon build in build/isa: run \`npm run build:native\``, 'GPG_NATIVE_MISSING');
    return { name: low.name, reason: 'CPU flags unknown (no /proc/cpuinfo): the lowest level' };
  }
  const fit = usable.find((l) => l.cpu.every((f) => flags.has(f)));
  if (!fit) {
    const need = levels.map((l) => `${l.name} (${l.cpu.join(' ')})`).join('; ');
    throw new GpgRlError(
      `this CPU has none of the instruction sets the native addon is built for: ${need}`,
      'GPG_NATIVE_UNSUPPORTED',
    );
  }
  return { name: fit.name, reason: 'best level this CPU has' };
}

/** The folders a build may come from, in order (see the module comment). */
export function nativeDirs(): string[] {
  const env = process.env.GPG_RL_NATIVE_DIR?.trim();
  if (env) return [resolve(env)];
  return [join(root, 'build', 'isa'), join(root, 'prebuilds', `${process.platform}-${process.arch}`)];
}

function builtIn(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .map((f) => /^gpg_native-(.+)\.node$/.exec(f)?.[1])
        .filter((x): x is string => !!x)
    : [];
}

function load(): { addon: NativeAddon; build: { name: string; reason: string; file: string } } {
  const table = JSON.parse(readFileSync(join(root, 'native', 'isa.json'), 'utf8')) as Record<string, IsaLevel[]>;
  const levels = table[process.arch] ?? [];
  // a folder counts when it holds a level of this architecture (build/isa of another machine doesn't)
  const dirs = nativeDirs();
  const found = dirs
    .map((d) => ({ dir: d, built: builtIn(d) }))
    .find(({ built }) => built.some((b) => b === 'native' || levels.some((l) => l.name === b)));
  if (!found) {
    throw new GpgRlError(
      `native addon not built for ${process.platform}-${process.arch} (no gpg_native-*.node in ${dirs.join(', ')}): run \`npm ci\` or \`npm run build:native\` (needs libdnnl-dev)`,
      'GPG_NATIVE_MISSING',
    );
  }
  const { dir, built } = found;
  const pick = chooseNativeBuild(built, levels, cpuFlags(), process.env.GPG_RL_NATIVE_ISA?.trim() || undefined);
  const file = join(dir, `gpg_native-${pick.name}.node`);
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
  return { addon, build: { ...pick, file } };
}

const loaded = load();
export const native: NativeAddon = loaded.addon;
/** Which addon build was loaded and why (`gpg-rl bench` records it). */
export const nativeBuild = loaded.build;

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
