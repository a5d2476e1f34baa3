/**
 * @module io/lock
 * The run lock: `<output_dir>/.gpg-rl.lock`, created exclusively (`O_EXCL`) by the process that
 * writes the folder, holding its pid, host and start time. A second run on the same folder is
 * refused with the holder's pid. A lock whose process is gone (killed, crashed, rebooted) is
 * stale and taken over; on Linux the holder's kernel start time is recorded too, so a reused pid
 * is not mistaken for the holder. Takeover itself is serialised by a second exclusive file, so two
 * processes finding the same stale lock cannot both win.
 */
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RunLockedError, FileSystemError } from '../errors.ts';
import { fsErrorCode, fsErrorMessage } from './fs.ts';

export const LOCK_FILE = '.gpg-rl.lock';

interface LockInfo {
  pid: number;
  host: string;
  /** Kernel start time of the process (clock ticks since boot, /proc/<pid>/stat field 22), Linux only. */
  procStart: string | null;
  started: string;
  command: string;
}

/** The kernel's start time of `pid`, or null where /proc is not available. */
function procStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may hold spaces) start after the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the process that wrote `info` is still running. */
export function lockHolderAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true; // another machine on a shared disk: never steal it
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if (fsErrorCode(e) !== 'EPERM') return false; // ESRCH: gone
  }
  const now = procStart(info.pid);
  return info.procStart === null || now === null || now === info.procStart;
}

function readLock(path: string): LockInfo | null {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return Number.isInteger(j.pid) ? j : null;
  } catch {
    return null; // missing, or torn by a kill while it was written: treated as stale
  }
}

function createExclusive(path: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    if (fsErrorCode(e) === 'EEXIST') return false;
    throw new FileSystemError(fsErrorMessage(e, 'create the run lock', path), path);
  }
  try {
    writeSync(fd, JSON.stringify(info) + '\n');
  } finally {
    closeSync(fd);
  }
  return true;
}

export interface RunLock {
  readonly path: string;
  /** Whether a stale lock of a dead process was taken over (its pid). */
  readonly tookOverFrom: number | null;
  release(): void;
}

/** Takes the run lock of folder `dir` (which must exist); `label` names the folder in the error. */
export function acquireRunLock(dir: string, label: string): RunLock {
  const path = join(dir, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    procStart: procStart(process.pid),
    started: new Date().toISOString(),
    command: process.argv.slice(1).join(' ').slice(0, 300),
  };
  let tookOverFrom: number | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, info)) {
      let released = false;
      return {
        path,
        tookOverFrom,
        release() {
          if (released) return;
          released = true;
          const cur = readLock(path);
          if (cur && cur.pid === process.pid) rmSync(path, { force: true });
        },
      };
    }
    const holder = readLock(path);
    if (holder && lockHolderAlive(holder)) {
      throw new RunLockedError(
        `output_dir ${label} is in use by another gpg-rl process (pid ${holder.pid} on ${holder.host}, started ${holder.started}); wait for it to finish, stop it, or choose another output_dir`,
      );
    }
    // stale: take it over, one process at a time
    const guard = `${path}.takeover`;
    const guardInfo = { ...info, started: new Date().toISOString() };
    if (!createExclusive(guard, guardInfo)) {
      const g = readLock(guard);
      if (g && lockHolderAlive(g)) continue; // someone else is taking it over: look again
      rmSync(guard, { force: true });
      continue;
    }
    try {
      const again = readLock(path);
      if (again && lockHolderAlive(again)) continue;
      tookOverFrom = again?.pid ?? holder?.pid ?? null;
      // move the stale lock aside (rename is atomic), then retry the exclusive create
      try {
        renameSync(path, `${path}.stale-${process.pid}`);
        rmSync(`${path}.stale-${process.pid}`, { force: true });
      } catch (e) {
        if (fsErrorCode(e) !== 'ENOENT')
          throw new FileSystemError(fsErrorMessage(e, 'replace the stale lock', path), path);
      }
    } finally {
      rmSync(guard, { force: true });
    }
  }
  throw new RunLockedError(
    `output_dir ${label}: could not take the run lock ${path}; another process keeps replacing it`,
  );
}
