/**
 * @module rl/callbacks
 * The hooks `train()` calls (TrainOptions): `onStep` after each step's metrics row,
 * `onCompletions` with every completion of the step, `onEval` after each eval_steps evaluation,
 * `onSave` after each checkpoint and the final model. Any of them may return `'stop'` (or a
 * promise of it) for a clean early stop: the run ends after the current step, saving the final
 * model and report.html as at a normal end (TRL's `control.should_training_stop`). A callback that
 * throws stops the run too, but first the completed step is checkpointed (`--resume` continues
 * from it); the error arrives as one CallbackError naming the callback and the step.
 */
import { GpgRlError } from '../errors.ts';
import type { MetricsRow } from './metrics.ts';
import type { EvalSummary, SampleRecord } from '../eval/evaluate.ts';

/** `dataset.path` recorded for rows given to train() in code (never read from disk). */
export const ROWS_PREFIX = 'rows:';

/** What a callback may return: `'stop'` (or a promise of it) ends the run cleanly after this step; anything else goes on. */
export type CallbackResult = unknown;

/** Where the run stands when a callback is called. */
export interface StepInfo {
  /** The step just completed (1-based). */
  step: number;
  totalSteps: number;
  /** Seconds since train() opened the run. */
  elapsedS: number;
  /** Estimated seconds left, from this session's pace (NaN before the first step). */
  etaS: number;
  runDir: string;
}

/** One completion of a step, with its gold answer, each reward function's score and its advantage. */
export interface CompletionRecord {
  step: number;
  prompt: string;
  completion: string;
  /** The gold answer (null when the dataset has none). */
  answer: string | null;
  rewards: Record<string, number | null>;
  reward: number;
  advantage: number;
  /** Ended with an end token (false: cut at max_completion_length). */
  finished: boolean;
}

export interface SaveInfo {
  /** The checkpoint folder written (checkpoint-<step>). */
  dir: string;
  step: number;
  /** At the end of the run: the final model folder (<output_dir>/model). */
  modelDir?: string;
}

export interface TrainCallbacks {
  onStep?: (row: MetricsRow, info: StepInfo) => CallbackResult;
  onCompletions?: (completions: CompletionRecord[], info: StepInfo) => CallbackResult;
  /** `records`: the eval's graded completions (prompt, completion, extracted answer, correct). */
  onEval?: (summary: EvalSummary, info: StepInfo, records: SampleRecord[]) => CallbackResult;
  onSave?: (save: SaveInfo, info: StepInfo) => CallbackResult;
}

/** A user callback threw; the completed step was checkpointed first when possible. */
export class CallbackError extends GpgRlError {
  readonly callback: string;
  readonly step: number;
  readonly checkpoint: string | null;
  constructor(callback: string, step: number, cause: unknown, checkpoint: string | null) {
    const msg = cause instanceof Error ? cause.message.split('\n', 1)[0] : String(cause);
    super(
      `${callback} threw at step ${step}: ${msg}; ${checkpoint ? `the step was saved to ${checkpoint} (train with resume: true to continue)` : 'no checkpoint could be written'}`,
      'GPG_CALLBACK',
    );
    this.name = 'CallbackError';
    this.callback = callback;
    this.step = step;
    this.checkpoint = checkpoint;
    this.cause = cause;
  }
}

/** Calls a callback (awaiting a promise); true when it asked to stop. */
export async function runCallback(fn: () => unknown): Promise<boolean> {
  return (await fn()) === 'stop';
}

/** (formatDuration lives in io/progress.ts, shared by every command's progress lines.) */
export { formatDuration } from '../io/progress.ts';
