/**
 * @module backend
 * Backends found by name (tinygrad's device registry): each entry creates its backend on first
 * use. Tensors are created on the default backend unless told otherwise; `useBackend(name)`
 * changes it (kernel tests run once per available backend). Adding a backend is one folder
 * `src/backend/<name>/` implementing `Backend` plus one line in `FACTORIES`
 * (docs/architecture.md, "Add a backend").
 */
import type { Backend, BackendInfo } from './types.ts';
import { GpgRlError } from '../errors.ts';

export type { Backend, BackendBenchmarks, BackendInfo, DeviceBuffer, DType, GemmArgs, Kernels } from './types.ts';

/** name → factory (loaded lazily, so a backend whose runtime is absent costs nothing). */
const FACTORIES: Record<string, () => Promise<Backend>> = {
  cpu: async () => (await import('./cpu/index.ts')).createCpuBackend(),
  webgpu: async () => (await import('./webgpu/index.ts')).createWebGpuBackend(),
};

const loaded = new Map<string, Backend>();
let current: Backend | null = null;

/** Names of the registered backends. */
export function backendNames(): string[] {
  return Object.keys(FACTORIES);
}

/** Creates (once) and returns the backend called `name`. */
export async function loadBackend(name: string): Promise<Backend> {
  const have = loaded.get(name);
  if (have) return have;
  const make = FACTORIES[name];
  if (!make) throw new GpgRlError(`unknown backend "${name}" (available: ${backendNames().join(', ')})`, 'GPG_BACKEND');
  const b = await make();
  loaded.set(name, b);
  return b;
}

/** Backends that load on this machine (a kernel test suite runs once per entry). */
export async function availableBackends(): Promise<Backend[]> {
  const out: Backend[] = [];
  for (const n of backendNames()) {
    try {
      out.push(await loadBackend(n));
    } catch {
      // not available here (no adapter, no runtime)
    }
  }
  return out;
}

/** The backend new tensors are created on (the CPU backend unless useBackend() chose another). */
export function defaultBackend(): Backend {
  if (!current)
    throw new GpgRlError(
      'no backend loaded: import src/tensor (which loads the cpu backend) or call useBackend()',
      'GPG_BACKEND',
    );
  return current;
}

/** Makes `b` the default for new tensors; returns the previous default. */
export function setDefaultBackend(b: Backend): Backend | null {
  const prev = current;
  current = b;
  return prev;
}

/** Loads `name` and makes it the default. */
export async function useBackend(name: string): Promise<Backend> {
  const b = await loadBackend(name);
  setDefaultBackend(b);
  return b;
}

/** Compute threads of the default backend; returns the value in effect. */
export function setNumThreads(n: number): number {
  return defaultBackend().setNumThreads(n);
}
export function getNumThreads(): number {
  return defaultBackend().getNumThreads();
}
/** Bytes held by live buffers of the default backend (leak tests). */
export function liveBytes(): number {
  return defaultBackend().liveBytes();
}

/** The one line a run (or a command) prints at start: `backend webgpu: llvmpipe … (features: …)`. */
export function backendLine(info: BackendInfo): string {
  return `backend ${info.name}: ${info.summary}`;
}
