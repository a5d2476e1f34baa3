/**
 * @module rewards/math-verify/pool
 * `VerifierPool`: model output is untrusted, so every comparison runs in a worker thread
 * (`node:worker_threads`) with a per-comparison time limit and a V8 heap cap (`resourceLimits`).
 * A comparison that hangs (`9^{9^{9}}`-style blow-ups, pathological regexes) or crashes the
 * worker (out of memory) scores 0 (`equal: false` with `error`), is counted in `stats()`, and
 * the worker is terminated and replaced; the calling thread never blocks, so the trainer keeps
 * generating while answers are graded.
 *
 *   const pool = new VerifierPool({ workers: 2, timeoutMs: 1000 });
 *   const r = await pool.verify('\\frac12', 'so the answer is \\boxed{0.5}'); // { equal: true }
 *   await pool.close();
 *
 * Extraction: by default a prediction may be a bare answer or a whole model output with
 * unanchored fallbacks (Math-Verify's default parse; `gpg-rl verify` relies on it). Training
 * rewards use anchored extraction (`\boxed{}`, `<answer>`, "final answer is" only), as the
 * GPG/TRL accuracy reward does: `accuracyRewards` defaults to it, `anchoredVerifier(pool)` gives
 * an `AnswerVerifier` that uses it, and `extractWithoutAnchor: false` makes it a pool's default.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { GpgRlError } from '../../errors.ts';

export type Grader = 'math-verify' | 'qwen';

export interface PoolOptions {
  /** Worker threads (default: min(2, CPU count)). */
  workers?: number;
  /** Time limit of one comparison in ms, measured from when a ready worker receives it (default 1000). */
  timeoutMs?: number;
  /** V8 old-generation heap cap of each worker in MiB (default 256). */
  maxMemoryMb?: number;
  /** Which grader the workers run (default 'math-verify'). */
  grader?: Grader;
  /** Worker entry module; defaults to ./worker-entry.mjs. Tests substitute a misbehaving worker here. */
  workerEntry?: URL;
  /**
   * Default of `verify`'s `extractWithoutAnchor` for this pool (Math-Verify's
   * `try_extract_without_anchor`): true (default) also reads bare answers, the last LaTeX and
   * the last number; false reads only anchored answers (training rewards).
   */
  extractWithoutAnchor?: boolean;
}

/** Per-comparison options of `VerifierPool.verify`. */
export interface PoolVerifyOptions {
  /** Overrides the pool's `extractWithoutAnchor` for this comparison. */
  extractWithoutAnchor?: boolean;
}

export interface VerifyResult {
  equal: boolean;
  /** Why the comparison failed (exception text, time limit, crash); `equal` is then false. */
  error?: string;
  timedOut?: boolean;
}

export interface PoolStats {
  comparisons: number;
  timeouts: number;
  crashes: number;
  workerRestarts: number;
  /** Comparisons that ended with an exception inside the worker (hostile or unparseable input). */
  errors: number;
}

/** Messages between the pool and a worker. */
export interface WorkerRequest {
  id: number;
  gold: string;
  pred: string;
  grader: Grader;
  /** Anchored extraction only (math-verify grader; the qwen grader has its own extraction). */
  anchored?: boolean;
}
export interface WorkerResponse {
  id: number;
  equal: boolean;
  error?: string;
}

/** The pool was used after close(), or its workers cannot start at all. */
export class VerifierPoolError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_VERIFIER_POOL');
    this.name = 'VerifierPoolError';
  }
}

interface Task {
  id: number;
  gold: string;
  pred: string;
  anchored: boolean;
  resolve: (r: VerifyResult) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task: Task | null;
  timer: NodeJS.Timeout | null;
  /** Set when we terminate it ourselves, so its exit is not counted as a crash. */
  retired: boolean;
}

/** Consecutive failed worker starts after which queued comparisons are failed instead of waiting. */
const MAX_START_FAILURES = 3;

export class VerifierPool {
  readonly timeoutMs: number;
  readonly grader: Grader;
  readonly extractWithoutAnchor: boolean;
  private readonly size: number;
  private readonly maxMemoryMb: number;
  private readonly entry: URL;
  private readonly slots = new Set<Slot>();
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;
  private startFailures = 0;
  private lastStartError = '';
  private readonly counters: PoolStats = { comparisons: 0, timeouts: 0, crashes: 0, workerRestarts: 0, errors: 0 };

  constructor(opts: PoolOptions = {}) {
    this.size = Math.max(1, Math.floor(opts.workers ?? Math.min(2, availableParallelism())));
    this.timeoutMs = Math.max(1, opts.timeoutMs ?? 1000);
    this.maxMemoryMb = Math.max(16, opts.maxMemoryMb ?? 256);
    this.grader = opts.grader ?? 'math-verify';
    this.extractWithoutAnchor = opts.extractWithoutAnchor ?? true;
    if (this.grader !== 'math-verify' && this.grader !== 'qwen')
      throw new VerifierPoolError(`unknown grader "${String(this.grader)}"; use "math-verify" or "qwen"`);
    this.entry = opts.workerEntry ?? new URL('./worker-entry.mjs', import.meta.url);
    for (let k = 0; k < this.size; k++) this.spawn();
  }

  /** Grades one (gold, prediction) pair; never rejects: failures come back as `equal: false` with `error`. */
  verify(gold: string, pred: string, opts: PoolVerifyOptions = {}): Promise<VerifyResult> {
    if (this.closed)
      return Promise.reject(new VerifierPoolError('VerifierPool.verify called after close(); create a new pool'));
    const anchored = !(opts.extractWithoutAnchor ?? this.extractWithoutAnchor);
    return new Promise<VerifyResult>((resolve) => {
      this.queue.push({ id: this.nextId++, gold: String(gold), pred: String(pred), anchored, resolve });
      this.pump();
    });
  }

  /** Grades many pairs concurrently; results in input order. */
  verifyMany(
    pairs: ReadonlyArray<{ gold: string; pred: string } | readonly [string, string]>,
  ): Promise<VerifyResult[]> {
    return Promise.all(
      pairs.map((p) =>
        Array.isArray(p)
          ? this.verify(p[0], p[1])
          : this.verify((p as { gold: string }).gold, (p as { pred: string }).pred),
      ),
    );
  }

  stats(): PoolStats {
    return { ...this.counters };
  }

  /** Terminates every worker; queued comparisons resolve as errors. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.queue.splice(0)) t.resolve({ equal: false, error: 'verifier pool closed' });
    const exits: Promise<number>[] = [];
    for (const s of this.slots) {
      s.retired = true;
      if (s.timer) clearTimeout(s.timer);
      if (s.task) this.finish(s, { equal: false, error: 'verifier pool closed' });
      exits.push(s.worker.terminate());
    }
    this.slots.clear();
    await Promise.all(exits);
  }

  private spawn(): void {
    const worker = new Worker(this.entry, {
      resourceLimits: { maxOldGenerationSizeMb: this.maxMemoryMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, ready: false, task: null, timer: null, retired: false };
    this.slots.add(slot);
    worker.on('message', (m: WorkerResponse | { ready: true }) => {
      if ('ready' in m) {
        slot.ready = true;
        this.startFailures = 0;
        this.pump();
        return;
      }
      if (slot.task && slot.task.id === m.id) {
        if (m.error) this.counters.errors++;
        this.finish(slot, m.error ? { equal: false, error: m.error } : { equal: m.equal === true });
        this.pump();
      }
    });
    const onDeath = (why: string) => {
      if (slot.retired) return;
      slot.retired = true;
      if (!slot.ready) {
        this.startFailures++;
        this.lastStartError = why;
      }
      this.counters.crashes++;
      if (slot.task) this.finish(slot, { equal: false, error: `verifier worker crashed: ${why}` });
      this.replace(slot);
    };
    worker.on('error', (e) => onDeath(`${e.name}: ${String(e.message).split('\n')[0]}`));
    worker.on('exit', (code) => onDeath(`exited with code ${code}`));
  }

  /** Drops `slot` (already dead or to be killed) and starts a fresh worker in its place. */
  private replace(slot: Slot): void {
    this.slots.delete(slot);
    if (slot.timer) clearTimeout(slot.timer);
    void slot.worker.terminate().catch(() => undefined);
    if (this.closed) return;
    if (this.startFailures >= MAX_START_FAILURES) {
      // Workers cannot start (broken install): fail what waits rather than hang the trainer.
      for (const t of this.queue.splice(0))
        t.resolve({ equal: false, error: `verifier workers fail to start: ${this.lastStartError}` });
      if (this.slots.size > 0) return;
      this.startFailures = MAX_START_FAILURES - 1; // allow one retry for later calls
    }
    this.counters.workerRestarts++;
    this.spawn();
  }

  private finish(slot: Slot, r: VerifyResult): void {
    const t = slot.task;
    if (!t) return;
    slot.task = null;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    this.counters.comparisons++;
    t.resolve(r);
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.task || slot.retired) continue;
      const t = this.queue.shift()!;
      slot.task = t;
      slot.timer = setTimeout(() => {
        this.counters.timeouts++;
        slot.retired = true;
        this.finish(slot, { equal: false, timedOut: true, error: `verification timed out after ${this.timeoutMs} ms` });
        this.replace(slot);
        this.pump();
      }, this.timeoutMs);
      const req: WorkerRequest = { id: t.id, gold: t.gold, pred: t.pred, grader: this.grader, anchored: t.anchored };
      slot.worker.postMessage(req);
    }
  }
}

/** Options of `accuracyRewards` (named as in TRL/Math-Verify configs). */
export interface AccuracyRewardOptions {
  /**
   * Math-Verify's `try_extract_without_anchor`. Default false, as in the official GPG/TRL
   * accuracy reward: only `\boxed{}`, `<answer>…</answer>` and "final answer is …" count, so
   * "First, 3+4 = 7. Next…" does not score for gold 7. True turns on the unanchored fallbacks
   * (the whole text as an answer, the last LaTeX group, the last number).
   */
  extract_without_anchor?: boolean;
}

/**
 * Accuracy reward for the trainer: 1 when completion k states gold k's answer, else 0 (also on
 * timeouts and errors). Anchored extraction by default (see AccuracyRewardOptions). Runs on the
 * pool, so the caller's thread stays free.
 */
export async function accuracyRewards(
  pool: VerifierPool,
  golds: readonly string[],
  completions: readonly string[],
  opts: AccuracyRewardOptions = {},
): Promise<number[]> {
  if (golds.length !== completions.length)
    throw new VerifierPoolError(
      `accuracyRewards: ${golds.length} gold answers but ${completions.length} completions; pass one gold per completion`,
    );
  const extractWithoutAnchor = opts.extract_without_anchor ?? false;
  const rs = await Promise.all(completions.map((c, k) => pool.verify(golds[k]!, c, { extractWithoutAnchor })));
  return rs.map((r) => (r.equal ? 1 : 0));
}

/**
 * The pool as a training-reward verifier (`{ verify(gold, pred), close() }`, the contract of
 * rewards/accuracy.ts `AnswerVerifier`) with anchored extraction unless `extract_without_anchor`.
 * `close()` closes the pool.
 */
export function anchoredVerifier(
  pool: VerifierPool,
  opts: AccuracyRewardOptions = {},
): { verify(gold: string, pred: string): Promise<VerifyResult>; close(): Promise<void> } {
  const extractWithoutAnchor = opts.extract_without_anchor ?? false;
  return { verify: (gold, pred) => pool.verify(gold, pred, { extractWithoutAnchor }), close: () => pool.close() };
}
