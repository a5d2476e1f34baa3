/**
 * Checkpoint checksums of files past 2 GiB (a 0.5B model's AdamW state is ~4 GB; readFileSync
 * refuses files over 2 GiB): sha256File streams them and equals coreutils' sha256sum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '../../src/rl/checkpoint.ts';

test('sha256File of a 2.1 GiB file (sparse) equals sha256sum', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-rl-sha-'));
  try {
    const p = join(dir, 'big.bin');
    const fd = openSync(p, 'w');
    ftruncateSync(fd, 2 ** 31 + 5_000_017);
    writeSync(fd, Buffer.from('head'), 0, 4, 0);
    writeSync(fd, Buffer.from('tail'), 0, 4, 2 ** 31 + 5_000_000);
    closeSync(fd);
    const want = execFileSync('sha256sum', [p], { encoding: 'utf8' }).split(' ')[0];
    assert.equal(sha256File(p), want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
