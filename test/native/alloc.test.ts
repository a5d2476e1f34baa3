/**
 * The allocator behind native buffers (native/alloc.cc): large buffers are cached by size and
 * reused; the cache stays within its cap; a miss trades stale cached regions for the new one;
 * and the pattern that fragments one heap (long-lived buffers created between large short-lived
 * ones, as gradients are during backward) does not grow the process beyond what is live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import '../../src/tensor/tensor.ts';
import { defaultBackend } from '../../src/backend/index.ts';
import type { DeviceBuffer } from '../../src/backend/types.ts';

const be = defaultBackend();
const MB = 1 << 20;
const stats = () => be.allocatorStats!();
const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
/** A float32 buffer of `mb` MiB with every page written (resident). */
const ones = new Map<number, Float32Array>(); // one host array per size: no JS garbage in the RSS figures
function touched(mb: number): DeviceBuffer {
  const n = (mb * MB) / 4;
  const b = be.allocate('float32', n);
  if (!ones.has(n)) ones.set(n, new Float32Array(n).fill(1));
  be.upload(b, ones.get(n)!);
  return b;
}

test('a freed large buffer is reused for the same size; zero-filled when asked, whatever it held', () => {
  be.releaseCache!();
  const a = touched(8);
  be.free(a);
  const s0 = stats();
  assert.equal(s0.cachedBytes, 8 * MB, 'the freed region is cached');
  const b = be.allocate('float32', (8 * MB) / 4 - 100, true); // same page-rounded size: a hit
  const s1 = stats();
  assert.equal(s1.hits, s0.hits + 1);
  assert.equal(s1.cachedBytes, 0);
  const host = be.download(b) as Float32Array;
  assert.ok(
    host.every((v) => v === 0),
    'zero requested: the reused region was cleared',
  );
  be.free(b);
  // much larger: not served by the 8 MiB region (at most 1/8 larger is taken), and the miss
  // unmaps that stale region instead of keeping both
  const c = touched(32);
  const s2 = stats();
  assert.equal(s2.misses, s1.misses + 1);
  assert.equal(s2.cachedBytes, 0, 'the stale 8 MiB region was traded for the new one');
  be.free(c);
  be.releaseCache!();
  assert.equal(stats().cachedBytes, 0);
});

test('the cache never holds more than its cap', () => {
  be.releaseCache!();
  const cap = stats().capBytes;
  assert.ok(cap > 0);
  const n = Math.ceil(cap / (64 * MB)) + 3;
  const bufs = Array.from({ length: n }, (_, i) => be.allocate('float32', ((64 + i) * MB) / 4));
  for (const b of bufs) be.free(b);
  assert.ok(stats().cachedBytes <= cap, `${stats().cachedBytes} cached > cap ${cap}`);
  be.releaseCache!();
});

test('long-lived buffers created between large temporaries do not grow the process beyond what is live', () => {
  // 40 rounds of: a 24 MiB temporary, a 3 MiB buffer that stays (a gradient), the temporary
  // freed. In one heap kept buffers land in the temporaries' holes and later temporaries no longer
  // fit there (glibc with the old 512 MB mmap threshold: 960 MiB resident growth for 120 MiB kept);
  // here the growth is what is kept plus at most one cached temporary.
  be.releaseCache!();
  be.free(touched(24)); // the host arrays exist before the baseline is read
  be.free(touched(3));
  be.releaseCache!();
  const before = rss();
  const kept: DeviceBuffer[] = [];
  for (let i = 0; i < 40; i++) {
    const tmp = touched(24);
    kept.push(touched(3));
    be.free(tmp);
  }
  const grown = rss() - before;
  const live = 40 * 3 * MB;
  assert.ok(
    grown < live + 24 * MB + 24 * MB,
    `resident memory grew ${(grown / MB).toFixed(0)} MiB for ${live / MB} MiB kept`,
  );
  for (const b of kept) be.free(b);
  be.releaseCache!();
});
