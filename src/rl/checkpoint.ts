/**
 * @module rl/checkpoint
 * Checkpoints: `<output_dir>/checkpoint-<step>/` holds a Hugging Face model folder (loads in
 * transformers as is) plus the trainer state needed to continue bit-exactly: AdamW moments
 * (`optimizer.safetensors`), and `trainer_state.json` (step, optimizer step count, data-order and
 * sampling RNG states, counters, and a sha256 of every file). Everything is written into a
 * hidden staging folder that is renamed into place only when complete, and trainer_state.json is
 * written last; on load every checksum is verified, so a partial or corrupted checkpoint is
 * reported (CheckpointError), never silently loaded.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../errors.ts';
import type { ModelConfig, GenerationDefaults } from '../model/config.ts';
import { readRange, saveModelFolder, type SaveTensor, type StreamedTensor } from '../model/folder.ts';
import {
  readSafetensorsFile,
  streamFloat32,
  toFloat32,
  writeSafetensorsFile,
  type StSource,
} from '../model/safetensors.ts';
import { replaceDirAtomic, writeFileAtomic } from '../io/atomic.ts';
import type { RngState } from '../data/rng.ts';
import type { SamplerState } from '../data/sampler.ts';

export const STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const FORMAT = 'gpg-rl-checkpoint-1';

export interface TrainerState {
  /** Loop steps completed (metrics rows written). */
  step: number;
  /** AdamW update count (differs from step when steps were skipped). */
  optimizerStep: number;
  sampler: SamplerState;
  rng: RngState;
  counters: Record<string, number>;
  /** sha256 of the resolved config (resume must use the same settings). */
  configHash: string;
  /**
   * max_staleness 1: the next step's completions, generated already (requested before this step's
   * update, with the weights of optimizer step `weightsAt`); sampler and rng are past their draws.
   */
  pending?: PendingRollout;
}

/** A prefetched rollout in a checkpoint (see TrainerState.pending). */
export interface PendingRollout {
  /** The prompts' indices in the run's prompt rows, and their token ids (checked on resume). */
  rows: number[];
  prompts: number[][];
  /** Each prompt's G sequence seeds (64-bit, as decimal strings). */
  seeds: string[][];
  /** The optimizer step of the weights that generated them. */
  weightsAt: number;
  /** G per prompt, in prompt order: token ids, sampling log-probs (null = NaN), finished. */
  tokens: number[][];
  logps: (number | null)[][];
  finished: boolean[];
  seconds: number;
}

export interface CheckpointData {
  state: TrainerState;
  /** HF name → AdamW first/second moments. */
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** What saveCheckpoint writes: moments as host arrays or streamed from the optimizer's tensors (AdamW.moments). */
export interface CheckpointSaveData {
  state: TrainerState;
  m: Map<string, Float32Array | StreamedTensor>;
  v: Map<string, Float32Array | StreamedTensor>;
}

/** A moment as a streamed F32 tensor of shape [numel]: one piece at a time on the host. */
function momentSource(a: Float32Array | StreamedTensor): StSource {
  if (a instanceof Float32Array) return streamFloat32((o, c) => a.subarray(o, o + c), [a.length], 'F32');
  const n = a.shape.reduce((x, y) => x * y, 1);
  return streamFloat32(readRange(a), [n], 'F32');
}

/** sha256 of a file, read in 16 MiB pieces (a 0.5B model's optimizer state is ~4 GB: past readFileSync's 2 GiB). */
export function sha256File(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 << 20);
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Every file of a checkpoint but trainer_state.json, with paths relative to it (sub-folders included). */
function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const f of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${f}` : f;
    const st = statSync(join(dir, rel));
    if (st.isDirectory()) out.push(...listFiles(dir, rel));
    else if (st.isFile() && rel !== STATE_FILE) out.push(rel);
  }
  return out;
}

export function checkpointDir(outputDir: string, step: number): string {
  return join(outputDir, `checkpoint-${step}`);
}

/**
 * Writes a complete checkpoint atomically. `weights`: the model's tensors (an HF model folder is
 * written), or a function that writes the model files into the staging folder (a LoRA adapter).
 * Weights and moments given as StreamedTensor (CausalLM.streamed, AdamW.moments) go from the
 * backend to disk a piece at a time: the save holds a few MiB on the host, not a copy of both.
 */
export function saveCheckpoint(
  outputDir: string,
  cfg: ModelConfig,
  weights: Map<string, SaveTensor> | ((stage: string) => void),
  data: CheckpointSaveData,
  opts: {
    generation?: GenerationDefaults;
    tokenizerFrom?: string;
    extraFiles?: Record<string, string>;
    /** Sub-folders beside the model (name → writes it; e.g. PPO's `value_model`), covered by the checksums. */
    extraDirs?: Record<string, (dir: string) => void>;
  } = {},
): string {
  const final = checkpointDir(outputDir, data.state.step);
  replaceDirAtomic(final, (stage) => {
    if (typeof weights === 'function') weights(stage);
    else saveModelFolder(stage, cfg, weights, opts);
    for (const [name, write] of Object.entries(opts.extraDirs ?? {})) {
      mkdirSync(join(stage, name));
      write(join(stage, name));
    }
    const opt = new Map<string, StSource>();
    for (const [name, a] of data.m) opt.set(`m.${name}`, momentSource(a));
    for (const [name, a] of data.v) opt.set(`v.${name}`, momentSource(a));
    writeSafetensorsFile(join(stage, OPTIMIZER_FILE), opt, { format: 'pt' });
    const files = Object.fromEntries(listFiles(stage).map((f) => [f, sha256File(join(stage, f))]));
    writeFileAtomic(join(stage, STATE_FILE), JSON.stringify({ format: FORMAT, ...data.state, files }, null, 1) + '\n');
  });
  return final;
}

/** Reads and verifies a checkpoint folder; any missing file or checksum mismatch is a CheckpointError. */
export function loadCheckpoint(dir: string): CheckpointData {
  const statePath = join(dir, STATE_FILE);
  if (!existsSync(statePath))
    throw new CheckpointError(
      `${dir}: no ${STATE_FILE}: the checkpoint is partial (interrupted while saving); delete it to resume from the previous one`,
    );
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${statePath}: not valid JSON (${(e as Error).message}); the checkpoint is corrupted`);
  }
  if (raw.format !== FORMAT)
    throw new CheckpointError(`${statePath}: unknown format ${JSON.stringify(raw.format)} (expected ${FORMAT})`);
  const files = raw.files as Record<string, string> | undefined;
  if (!files || typeof files !== 'object')
    throw new CheckpointError(`${statePath}: no file checksums; the checkpoint is corrupted`);
  for (const [f, sum] of Object.entries(files)) {
    const p = join(dir, f);
    if (!existsSync(p)) throw new CheckpointError(`${dir}: ${f} is missing; the checkpoint is incomplete`);
    if (sha256File(p) !== sum)
      throw new CheckpointError(
        `${dir}: ${f} does not match its checksum in ${STATE_FILE}; the checkpoint is corrupted`,
      );
  }
  const state: TrainerState = {
    step: raw.step as number,
    optimizerStep: raw.optimizerStep as number,
    sampler: raw.sampler as SamplerState,
    rng: raw.rng as RngState,
    counters: (raw.counters ?? {}) as Record<string, number>,
    configHash: raw.configHash as string,
    ...(raw.pending ? { pending: raw.pending as PendingRollout } : {}),
  };
  if (!Number.isInteger(state.step) || !Number.isInteger(state.optimizerStep) || !state.sampler || !state.rng) {
    throw new CheckpointError(`${statePath}: step, optimizerStep, sampler or rng is missing or invalid`);
  }
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  const opt = readSafetensorsFile(join(dir, OPTIMIZER_FILE)).tensors;
  for (const [k, t] of opt) {
    if (k.startsWith('m.')) m.set(k.slice(2), toFloat32(t));
    else if (k.startsWith('v.')) v.set(k.slice(2), toFloat32(t));
  }
  return { state, m, v };
}

/** The checkpoint-<step> folders of a run, newest first. */
export function listCheckpoints(outputDir: string): Array<{ step: number; dir: string }> {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((f) => /^checkpoint-(\d+)$/.exec(f))
    .filter((x): x is RegExpExecArray => x !== null)
    .map((x) => ({ step: Number(x[1]), dir: join(outputDir, x[0]) }))
    .sort((a, b) => b.step - a.step);
}

/** The newest checkpoint, verified (a damaged newest one is reported, not skipped). */
export function latestCheckpoint(outputDir: string): { dir: string; data: CheckpointData } | null {
  const list = listCheckpoints(outputDir);
  if (list.length === 0) return null;
  const { dir } = list[0]!;
  return { dir, data: loadCheckpoint(dir) };
}

export function hashConfig(obj: unknown): string {
  return createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16);
}

/**
 * save_total_limit: deletes the oldest checkpoint-<step> folders so that at most `limit` remain
 * (transformers' rotation); `keep` (the one just written) is never deleted.
 */
export function pruneCheckpoints(outputDir: string, limit: number, keep: string): string[] {
  const all = readdirSync(outputDir)
    .map((f) => ({ f, m: /^checkpoint-(\d+)$/.exec(f) }))
    .filter((x) => x.m && statSync(join(outputDir, x.f)).isDirectory())
    .map((x) => ({ dir: join(outputDir, x.f), step: Number(x.m![1]) }))
    .sort((a, b) => a.step - b.step);
  const removed: string[] = [];
  for (const c of all.slice(0, Math.max(0, all.length - limit))) {
    if (c.dir === keep) continue;
    rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  return removed;
}
