/**
 * @module io/progress
 * Progress with elapsed time and ETA, one module for `train`, `sft`, `eval` and `demo`:
 * `Pace` measures the rate of this session (work done before a resume does not count toward the
 * rate), `progressText` writes `12/100, elapsed 1m05s, eta 8m00s`, `ProgressBar` redraws one line in
 * place on a TTY (plain lines in logs and CI), and `Ticker` limits how often a fast loop (decoding
 * steps in eval) prints, always printing the last update.
 */

/** `1h02m`, `3m05s`, `12s`: elapsed time and ETA in progress lines; `–` when unknown. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

export interface Timing {
  elapsedS: number;
  /** Seconds left at this session's pace (NaN before any work is done). */
  etaS: number;
}

/** Elapsed time since construction and the ETA of `total` units, from the units done since then. */
export class Pace {
  readonly total: number;
  private readonly start: number;
  private readonly t0: number;
  private readonly now: () => number;

  /** `startDone`: units already done when timing starts (a resumed run), not counted in the rate. */
  constructor(total: number, startDone = 0, now: () => number = () => performance.now()) {
    this.total = total;
    this.start = startDone;
    this.now = now;
    this.t0 = now();
  }

  /** `total` overrides the constructor's when the amount of work is learnt later. */
  at(done: number, total = this.total): Timing {
    const elapsedS = (this.now() - this.t0) / 1000;
    const n = done - this.start;
    return { elapsedS, etaS: n > 0 ? (elapsedS / n) * Math.max(0, total - done) : NaN };
  }
}

/** `elapsed 1m05s, eta 8m00s` */
export function timingText(t: Timing): string {
  return `elapsed ${formatDuration(t.elapsedS)}, eta ${formatDuration(t.etaS)}`;
}

/** `12/100, elapsed 1m05s, eta 8m00s` */
export function progressText(done: number, total: number, t: Timing): string {
  return `${done}/${total}, ${timingText(t)}`;
}

/**
 * Lets an update through once `intervalMs` has passed since construction or the last one let
 * through, and always the one that reaches the total.
 */
export class Ticker {
  private last: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(intervalMs = 10_000, now: () => number = () => performance.now()) {
    this.intervalMs = intervalMs;
    this.now = now;
    this.last = now();
  }

  due(done: number, total: number): boolean {
    const t = this.now();
    if (done < total && t - this.last < this.intervalMs) return false;
    this.last = t;
    return true;
  }
}

export interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * On a TTY, one line redrawn in place: `[#####.....] 3/100 <line>`; otherwise each update prints
 * the line plainly (logs and CI stay readable).
 */
export class ProgressBar {
  private readonly total: number;
  private readonly out: Out;
  private drawn = false;

  constructor(total: number, out: Out = process.stderr) {
    this.total = total;
    this.out = out;
  }

  update(step: number, line: string): void {
    if (!this.out.isTTY) {
      this.out.write(line + '\n');
      return;
    }
    const width = 20;
    const filled = this.total > 0 ? Math.min(width, Math.round((step / this.total) * width)) : 0;
    let text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${step}/${this.total} ${line}`;
    const cols = this.out.columns ?? 120;
    if (text.length > cols - 1) text = text.slice(0, cols - 2) + '…';
    this.out.write(`\r\x1b[2K${text}`);
    this.drawn = true;
  }

  /** A message that must not be overwritten (warnings, resampling notes). */
  log(line: string): void {
    if (this.out.isTTY && this.drawn) this.out.write('\r\x1b[2K');
    this.out.write(line + '\n');
    this.drawn = false;
  }

  done(): void {
    if (this.out.isTTY && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
