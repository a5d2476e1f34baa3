/**
 * @module io/atomic
 * The one way gpg-rl writes what a user keeps: files through a temp file beside the target
 * (fsync, then rename), folders staged beside the target and swapped in with renames. A kill at
 * any moment leaves the old file or folder, or the new one — never half of either.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ensureDir } from './fs.ts';

/** A temp path beside `path` (same directory, so rename is atomic). */
export function tempPathBeside(path: string, kind = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.${kind}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/** `.<name>.<kind>-<pid>-<random>`: what tempPathBeside makes. */
const TEMP_NAME = /^\.(.+)\.(tmp|staging|old)-(\d+)-[a-z0-9]+$/;

/**
 * Clears what a killed writer left in `dir`: temp files and staging folders of processes other
 * than this one (`.checkpoint-4.staging-123-ab12cd34`, `.metrics.jsonl.tmp-…`). A folder moved
 * aside by replaceDirAtomic (`.model.old-…`) whose target is missing — the kill fell between the
 * two renames — is moved back; otherwise it is removed. Only names in tempPathBeside's format are
 * touched, so nothing else in the folder is ever deleted. Call it while holding the folder's run
 * lock (no other writer is alive then). Returns the names it removed or restored.
 */
export function cleanStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const done: string[] = [];
  const names = readdirSync(dir);
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || Number(m[3]) === process.pid) continue;
    const p = join(dir, name);
    const target = join(dir, m[1]!);
    if (m[2] === 'old' && !existsSync(target)) {
      renameSync(p, target);
      done.push(`${name} → ${m[1]}`);
      continue;
    }
    rmSync(p, { recursive: true, force: true });
    done.push(name);
  }
  return done;
}

/**
 * Writes `content` (text, bytes, or chunks — an array or a generator, each chunk written before
 * the next is asked for) to `path` atomically: temp file in the same folder, fsync, rename.
 */
export function writeFileAtomic(path: string, content: Uint8Array | string | Iterable<Uint8Array>): void {
  const tmp = tempPathBeside(path);
  const chunks: Iterable<Uint8Array> =
    typeof content === 'string' ? [Buffer.from(content, 'utf8')] : content instanceof Uint8Array ? [content] : content;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const data of chunks) {
        let off = 0;
        while (off < data.byteLength) off += writeSync(fd, data, off, Math.min(data.byteLength - off, 1 << 30));
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes several files so that either all of them are replaced or none: each goes to a temp file
 * first, and the renames run only once every temp file is complete.
 */
export function writeFilesAtomic(files: Array<[path: string, content: string | Uint8Array]>): void {
  const tmps: string[] = [];
  try {
    for (const [path, content] of files) {
      const tmp = tempPathBeside(path);
      tmps.push(tmp);
      writeFileAtomic(tmp, content);
    }
    files.forEach(([path], i) => renameSync(tmps[i]!, path));
  } catch (e) {
    for (const t of tmps) rmSync(t, { force: true });
    throw e;
  }
}

/**
 * Builds a folder in a staging folder beside `target` (`fill(stage)` writes its files), then swaps
 * it into place: the old folder is moved aside only after the new one is complete, and removed
 * after the rename. On any error the stage is removed and the old folder stays.
 */
export function replaceDirAtomic(target: string, fill: (stage: string) => void): void {
  ensureDir(dirname(target));
  const stage = tempPathBeside(target, 'staging');
  try {
    mkdirSync(stage, { recursive: true });
    fill(stage);
    if (existsSync(target)) {
      const old = tempPathBeside(target, 'old');
      renameSync(target, old);
      try {
        renameSync(stage, target);
      } catch (e) {
        renameSync(old, target);
        throw e;
      }
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(stage, target);
    }
  } catch (e) {
    rmSync(stage, { recursive: true, force: true });
    throw e;
  }
}
