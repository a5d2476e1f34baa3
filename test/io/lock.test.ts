/**
 * The run lock (issue 18 §2) and the clean-up of killed writers' leftovers (§8): one holder at a
 * time, a dead holder's lock taken over, a live one named in the error; temp names of other
 * processes removed, a folder moved aside by an interrupted swap moved back, nothing else touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireRunLock, LOCK_FILE } from '../../src/io/lock.ts';
import { cleanStaleTemps } from '../../src/io/atomic.ts';
import { ensureDir, removeCreatedDir } from '../../src/io/fs.ts';
import { FileSystemError, RunLockedError } from '../../src/errors.ts';

/** The pid of a process that has exited (so it is surely not alive). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('one holder at a time; released on release(); a dead holder is taken over', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-lock-'));
  try {
    const a = acquireRunLock(dir, 'runs/x');
    assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    // a live holder (this process) refuses a second lock, naming its pid
    assert.throws(
      () => acquireRunLock(dir, 'runs/x'),
      (e: unknown) =>
        e instanceof RunLockedError && e.message.includes(`pid ${process.pid}`) && e.message.includes('runs/x'),
    );
    a.release();
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
    // stale: written by a process that is gone
    const pid = deadPid();
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid, host: hostname(), procStart: null, started: 'then', command: 'x' }),
    );
    const b = acquireRunLock(dir, 'runs/x');
    assert.equal(b.tookOverFrom, pid);
    assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    b.release();
    // a torn lock file (killed while writing it) is stale too
    writeFileSync(join(dir, LOCK_FILE), '{"pid": 12');
    acquireRunLock(dir, 'runs/x').release();
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cleanStaleTemps: removes other processes’ temp names, restores a folder moved aside, keeps the rest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-stale-'));
  try {
    const pid = deadPid();
    mkdirSync(join(dir, `.checkpoint-4.staging-${pid}-ab12cd34`));
    writeFileSync(join(dir, `.checkpoint-4.staging-${pid}-ab12cd34`, 'model.safetensors'), 'half');
    writeFileSync(join(dir, `.metrics.jsonl.tmp-${pid}-zz99`), 'x');
    // killed between the two renames of replaceDirAtomic: model/ is missing, its old copy aside
    mkdirSync(join(dir, `.model.old-${pid}-q1w2e3`));
    writeFileSync(join(dir, `.model.old-${pid}-q1w2e3`, 'config.json'), '{}');
    // an old copy whose target exists is just removed
    mkdirSync(join(dir, 'checkpoint-2'));
    mkdirSync(join(dir, `.checkpoint-2.old-${pid}-aaaa`));
    // this process's own temp names and the user's files are left alone
    writeFileSync(join(dir, `.x.tmp-${process.pid}-mine`), 'x');
    writeFileSync(join(dir, '.staging-notes'), 'user');
    mkdirSync(join(dir, 'keep'));
    const done = cleanStaleTemps(dir);
    assert.equal(done.length, 4, done.join(', '));
    assert.deepEqual(readdirSync(dir).sort(), [
      `.staging-notes`,
      `.x.tmp-${process.pid}-mine`,
      'checkpoint-2',
      'keep',
      'model',
    ]);
    assert.equal(readFileSync(join(dir, 'model', 'config.json'), 'utf8'), '{}');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ensureDir: one line naming the path (file as parent, /proc, /sys); removeCreatedDir undoes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-ensure-'));
  try {
    writeFileSync(join(dir, 'file'), 'x');
    const bad: Array<[string, RegExp]> = [
      [join(dir, 'file', 'run'), /file is a file, not a folder/],
      [join(dir, 'file'), /it is a file, not a folder/],
      ['/proc/gpg-rl-test/run', /cannot create folder \/proc\/gpg-rl-test: \/proc does not accept new folders/],
    ];
    if (existsSync('/sys/kernel')) bad.push(['/sys/gpg-rl-test/run', /cannot create folder \/sys\/gpg-rl-test/]);
    for (const [p, re] of bad)
      assert.throws(
        () => ensureDir(p, `output_dir ${p}`),
        (e: unknown) =>
          e instanceof FileSystemError &&
          e.message.startsWith(`output_dir ${p}: `) &&
          re.test(e.message) &&
          !e.message.includes('\n'),
        p,
      );
    const top = ensureDir(join(dir, 'a', 'b', 'c'));
    assert.equal(top, join(dir, 'a'));
    assert.equal(ensureDir(join(dir, 'a', 'b', 'c')), null);
    removeCreatedDir(top, join(dir, 'a', 'b', 'c'));
    assert.ok(!existsSync(join(dir, 'a')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
