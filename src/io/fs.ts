/**
 * @module io/fs
 * Folders gpg-rl creates for the user, with one clear line when it cannot: `ensureDir` makes the
 * missing components one at a time (Node 20's `mkdirSync(…, { recursive: true })` never returns
 * under `/proc`, and reports a read-only tmpfs as ENOENT) and names the path and the real reason;
 * `fsErrorMessage` turns any Node system error into such a line (never a raw `Error: ENOTDIR`).
 */
import { accessSync, constants, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FileSystemError } from '../errors.ts';

const REASONS: Record<string, string> = {
  ENOTDIR: 'a path component is a file, not a folder',
  EEXIST: 'it exists and is not a folder',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or folder',
  EISDIR: 'it is a folder',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/** The Node system error code of `e` (`ENOTDIR`, …), or null when `e` is not one. */
export function fsErrorCode(e: unknown): string | null {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : null;
}

/** One line for a failed file operation: `cannot <op> <path>: <reason> (<CODE>)`. */
export function fsErrorMessage(e: unknown, op: string, path?: string): string {
  const code = fsErrorCode(e);
  const p = path ?? (e as { path?: string } | null)?.path ?? '';
  const why = code ? `${REASONS[code] ?? 'system error'} (${code})` : String((e as Error)?.message ?? e);
  return `cannot ${op}${p ? ` ${p}` : ''}: ${why}`;
}

/** Nearest existing ancestor of `abs` (itself when it exists). */
function existingAncestor(abs: string): string {
  let p = abs;
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch {
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/**
 * Makes folder `path` and its missing parents; `label` names it in errors (`output_dir runs/x`).
 * Returns the outermost folder it created (null when `path` already existed), so a caller that
 * fails later can remove what it made with `removeCreatedDir`.
 */
export function ensureDir(path: string, label = path): string | null {
  const abs = resolve(path);
  const base = existingAncestor(abs);
  let st;
  try {
    st = statSync(base);
  } catch (e) {
    throw new FileSystemError(`${label}: ${fsErrorMessage(e, 'read', base)}`, abs);
  }
  if (!st.isDirectory()) {
    const what = base === abs ? 'it is a file, not a folder' : `${base} is a file, not a folder`;
    throw new FileSystemError(`${label}: cannot create folder ${abs}: ${what}`, abs);
  }
  if (base === abs) return null;
  try {
    accessSync(base, constants.W_OK);
  } catch (e) {
    throw new FileSystemError(`${label}: ${fsErrorMessage(e, 'create a folder in', base)}`, abs);
  }
  const parts = abs.slice(base.length).split('/').filter(Boolean);
  let p = base;
  let first: string | null = null;
  for (const part of parts) {
    p = resolve(p, part);
    try {
      mkdirSync(p);
    } catch (e) {
      if (fsErrorCode(e) === 'EEXIST' && statSync(p).isDirectory()) continue;
      if (first) removeCreatedDir(first);
      // /proc, /sys and read-only mounts answer ENOENT / EACCES even to root: say what it is
      const code = fsErrorCode(e);
      const hint = code === 'ENOENT' ? `${base} does not accept new folders (read-only or virtual file system)` : '';
      throw new FileSystemError(
        `${label}: ${hint ? `cannot create folder ${p}: ${hint} (${code})` : fsErrorMessage(e, 'create folder', p)}`,
        abs,
      );
    }
    first ??= p;
  }
  return first;
}

/** Removes the empty folders `ensureDir` created (innermost first); leaves any folder that holds files. */
export function removeCreatedDir(outermost: string | null, innermost?: string): void {
  if (!outermost) return;
  let p = resolve(innermost ?? outermost);
  const top = resolve(outermost);
  for (;;) {
    try {
      rmdirSync(p);
    } catch {
      return; // not empty (or gone): keep it
    }
    if (p === top || !p.startsWith(top)) return;
    p = dirname(p);
  }
}
