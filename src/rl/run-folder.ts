/**
 * @module rl/run-folder
 * The run folder's safety rules, applied before anything is written there:
 *   - a new run makes the folder (one clear line when it cannot) and refuses one that holds a
 *     run; a folder left by a run that never finished a step is reused by the same command;
 *   - `--resume` refuses a folder that does not exist or is not a gpg-rl run (nothing in it is
 *     touched), and names every changed setting when the checkpoint was written with others;
 *   - one process at a time holds the folder (io/lock.ts); leftovers of killed writers (staging
 *     folders, temp files) are cleared once the lock is held (io/atomic.ts cleanStaleTemps);
 *   - a run that fails before its first step removes what it wrote (and the folder it made).
 */
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FileSystemError } from '../errors.ts';
import { cleanStaleTemps, writeFileAtomic } from '../io/atomic.ts';
import type { BackendInfo } from '../backend/types.ts';
import { ensureDir, removeCreatedDir } from '../io/fs.ts';
import { acquireRunLock, LOCK_FILE, type RunLock } from '../io/lock.ts';

/** Files a run writes into its folder before and while it completes steps. */
const RUN_FILES = ['trainer_config.json', 'metrics.jsonl', 'completions.jsonl', 'eval.jsonl'];
/** The policy as the rollout servers load it (rollout_servers); a copy, never a run by itself. */
export const ROLLOUT_WEIGHTS_DIR = 'rollout_weights';
const TEMP_NAME = /^\..+\.(tmp|staging|old)-\d+-[a-z0-9]+$/;

export interface RunFolder {
  readonly dir: string;
  /** Leftovers of killed writers that were removed (or moved back). */
  readonly cleaned: string[];
  /** Whether the folder held no completed step when this run started. */
  readonly fresh: boolean;
  /** Releases the lock (the run ended, however). */
  release(): void;
  /** The run failed before completing a step: removes what it wrote (a fresh run only), then releases. */
  abandon(): void;
}

const isCheckpointName = (f: string) => /^checkpoint-\d+$/.test(f);

function nonEmpty(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

/** Whether `dir` was written by gpg-rl train (its config, lock, metrics or a checkpoint). */
export function isRunFolder(dir: string): boolean {
  const names = readdirSync(dir);
  return names.some(
    (f) => f === 'trainer_config.json' || f === LOCK_FILE || f === 'metrics.jsonl' || isCheckpointName(f),
  );
}

/** Whether `dir` holds anything beyond a run that never completed a step (lock, temp names, empty logs). */
export function holdsRun(dir: string): boolean {
  for (const f of readdirSync(dir)) {
    if (f === LOCK_FILE || f.startsWith(`${LOCK_FILE}.`) || TEMP_NAME.test(f)) continue;
    if (f === 'trainer_config.json' || f === ROLLOUT_WEIGHTS_DIR) continue;
    if ((f === 'metrics.jsonl' || f === 'completions.jsonl') && !nonEmpty(join(dir, f))) continue;
    return true;
  }
  return false;
}

/** Opens `runDir` for a run (see the module header); `label` is output_dir as the user wrote it. */
export function openRunFolder(runDir: string, label: string, resume: boolean): RunFolder {
  let created: string | null = null;
  let lock: RunLock;
  const field = `output_dir ${label}`;
  if (existsSync(runDir) && !statSync(runDir).isDirectory())
    throw new FileSystemError(`${field}: it is a file, not a folder; choose another output_dir`, runDir);
  if (resume) {
    if (!existsSync(runDir))
      throw new ConfigError(
        `${field}: --resume: the folder does not exist, so there is no run to continue; drop --resume to start a new run`,
      );
    if (!isRunFolder(runDir))
      throw new ConfigError(
        `${field}: --resume: not a gpg-rl run folder (no trainer_config.json, metrics.jsonl or checkpoint-*); nothing in it was changed — give the run's output_dir, or drop --resume to start a new run in an empty folder`,
      );
    lock = acquireRunLock(runDir, label);
  } else {
    created = ensureDir(runDir, field);
    try {
      lock = acquireRunLock(runDir, label);
    } catch (e) {
      removeCreatedDir(created, runDir);
      throw e;
    }
    if (holdsRun(runDir)) {
      lock.release();
      throw new ConfigError(
        `output_dir ${label} already holds a run; pass --resume to continue it, or choose another output_dir (--set output_dir=runs/new)`,
      );
    }
  }
  const fresh = !holdsRun(runDir);
  let cleaned: string[];
  try {
    cleaned = cleanStaleTemps(runDir);
  } catch (e) {
    lock.release();
    throw e;
  }
  return {
    dir: runDir,
    cleaned,
    fresh,
    release: () => lock.release(),
    abandon() {
      if (fresh && !resume) {
        for (const f of RUN_FILES) rmSync(join(runDir, f), { force: true });
        rmSync(join(runDir, ROLLOUT_WEIGHTS_DIR), { recursive: true, force: true });
        cleanStaleTemps(runDir);
      }
      lock.release();
      if (fresh && !resume) removeCreatedDir(created, runDir);
    },
  };
}

/** `a.b` paths and JSON values of a config (nested objects flattened, arrays kept whole). */
function flatten(obj: unknown, prefix = '', out: Map<string, string> = new Map()): Map<string, string> {
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, JSON.stringify(obj) ?? 'undefined');
  return out;
}

/**
 * Keys of trainer_config.json that record where the run computed, not a setting: `backend` (the
 * backend's name and what it ran on: the CPU build level, or the WebGPU adapter). A resume on
 * another machine or backend may differ in them.
 */
export const RECORD_ONLY: ReadonlySet<string> = new Set(['backend']);

/** trainer_config.json: the resolved config, then `backend` (BackendInfo without its log line). */
export function writeRunConfig(runDir: string, cfg: object, backend: BackendInfo): void {
  const { summary: _line, ...record } = backend;
  writeFileAtomic(join(runDir, 'trainer_config.json'), JSON.stringify({ ...cfg, backend: record }, null, 1) + '\n');
}

/**
 * The settings that differ between the run's trainer_config.json and `cfg`, outside `resumable`:
 * `dataset.limit (was 10, now 12)`. Empty when the file is missing or unreadable.
 */
export function changedSettings(runDir: string, cfg: object, resumable: ReadonlySet<string>): string[] {
  let before: unknown;
  try {
    before = JSON.parse(readFileSync(join(runDir, 'trainer_config.json'), 'utf8'));
  } catch {
    return [];
  }
  const a = flatten(before);
  const b = flatten(JSON.parse(JSON.stringify(cfg)));
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    if (resumable.has(k.split('.')[0]!) || RECORD_ONLY.has(k.split('.')[0]!)) continue;
    const was = a.get(k) ?? 'unset';
    const now = b.get(k) ?? 'unset';
    if (was !== now) out.push(`${k} (was ${was}, now ${now})`);
  }
  return out;
}
