/**
 * @module data/sampler
 * The deterministic prompt order: epoch e visits every row once, in a permutation drawn by
 * `Rng(seed, stream = e)`. The state is four small numbers plus a fingerprint of the rows, so a
 * resumed run continues the exact same order and refuses a dataset that changed under it.
 */
import { CheckpointError, DataError } from '../errors.ts';
import { Rng } from './rng.ts';

/** What `state()` returns and `restore()` takes (plain JSON). */
export interface SamplerState {
  seed: number;
  epoch: number;
  /** index into the current epoch's permutation of the next row to hand out */
  position: number;
  numRows: number;
  /** FNV-1a over the rows' prompts, hex: detects a different dataset on resume */
  fingerprint: string;
}

/** FNV-1a 32-bit over every prompt (and a separator), as 8 hex digits. */
function fingerprintOf(rows: ReadonlyArray<{ prompt: string }>): string {
  let h = 0x811c9dc5;
  for (const r of rows) {
    const p = r.prompt;
    for (let i = 0; i < p.length; i++) {
      h ^= p.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x1f;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

export class PromptSampler<T extends { prompt: string }> {
  private readonly rows: readonly T[];
  private readonly seed: number;
  private readonly fp: string;
  private epochNo = 0;
  private position = 0;
  private order: Uint32Array;

  constructor(rows: readonly T[], seed: number) {
    if (rows.length === 0)
      throw new DataError(
        'PromptSampler: the dataset has no rows left to sample (check the dataset path, limit and prompt-length filter)',
      );
    this.rows = rows;
    this.seed = seed;
    this.fp = fingerprintOf(rows);
    this.order = this.permutation(0);
  }

  /** The epoch the next row comes from (0-based). */
  get epoch(): number {
    return this.epochNo;
  }

  /** The next `n` rows in order, crossing into new (reshuffled) epochs as needed. */
  next(n: number): T[] {
    const out: T[] = [];
    for (let k = 0; k < n; k++) {
      if (this.position >= this.order.length) {
        this.epochNo++;
        this.position = 0;
        this.order = this.permutation(this.epochNo);
      }
      out.push(this.rows[this.order[this.position++]!]!);
    }
    return out;
  }

  state(): SamplerState {
    return {
      seed: this.seed,
      epoch: this.epochNo,
      position: this.position,
      numRows: this.rows.length,
      fingerprint: this.fp,
    };
  }

  /** A sampler over `rows` that continues from `state`; throws CheckpointError if the rows differ. */
  static restore<T extends { prompt: string }>(rows: readonly T[], state: SamplerState): PromptSampler<T> {
    const s = new PromptSampler(rows, state.seed);
    if (state.numRows !== rows.length || state.fingerprint !== s.fp) {
      throw new CheckpointError(
        `sampler state: the dataset changed since the checkpoint (${state.numRows} rows, fingerprint ${state.fingerprint}; now ${rows.length} rows, ${s.fp}); resume with the same dataset, limit and filters`,
      );
    }
    if (
      !Number.isInteger(state.epoch) ||
      state.epoch < 0 ||
      !Number.isInteger(state.position) ||
      state.position < 0 ||
      state.position > rows.length
    ) {
      throw new CheckpointError(
        `sampler state: epoch/position out of range (epoch ${state.epoch}, position ${state.position}, ${rows.length} rows)`,
      );
    }
    s.epochNo = state.epoch;
    s.position = state.position;
    s.order = s.permutation(state.epoch);
    return s;
  }

  private permutation(epoch: number): Uint32Array {
    const idx = Array.from({ length: this.rows.length }, (_, i) => i);
    new Rng(this.seed, epoch).shuffle(idx);
    return Uint32Array.from(idx);
  }
}
