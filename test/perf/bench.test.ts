import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gemmAndPeak } from '../../src/perf/bench.ts';
import { liveBytes as liveNativeBytes } from '../../src/backend/index.ts';

// The alternating peak/GEMM measurement behind `gpg-rl bench`: its shape, not its speed (timing
// thresholds belong to the benchmark, not to tests).
test('gemmAndPeak: one figure per shape, the peak as median and best of the rounds, no tensors left', () => {
  const before = liveNativeBytes();
  const r = gemmAndPeak(
    [
      { M: 16, K: 32, N: 48, transB: true, reps: 6 },
      { M: 40, K: 24, N: 8, transB: false, reps: 3 },
    ],
    3,
  );
  assert.equal(r.gflops.length, 2);
  for (const g of r.gflops) assert.ok(Number.isFinite(g) && g > 0, `GFLOP/s ${g}`);
  assert.ok(Number.isFinite(r.peak) && r.peak > 0, `peak ${r.peak}`);
  assert.ok(r.peakBest >= r.peak, `best ${r.peakBest} ≥ median ${r.peak}`);
  assert.equal(liveNativeBytes(), before, 'operands are freed');
});
