/**
 * io/progress, the one progress module of train, sft, eval and demo: durations, the pace of this
 * session (work before a resume does not count), the text, the ticker's rate limit, and the bar.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, Pace, progressText, Ticker, timingText } from '../../src/io/progress.ts';

test('formatDuration: s, m + s, h + m; unknown as –', () => {
  assert.deepEqual([0, 12.4, 65, 3599, 3600, 3725, NaN, -1].map(formatDuration), [
    '0s',
    '12s',
    '1m05s',
    '59m59s',
    '1h00m',
    '1h02m',
    '–',
    '–',
  ]);
});

test('Pace: elapsed and ETA from the rate of this session; a resumed start is not counted', () => {
  let now = 1000;
  const clock = () => now;
  const p = new Pace(100, 0, clock);
  assert.ok(Number.isNaN(p.at(0).etaS));
  now += 10_000; // 10 s for 5 units → 95 left at 2 s each
  assert.deepEqual(p.at(5), { elapsedS: 10, etaS: 190 });
  assert.deepEqual(p.at(5, 10), { elapsedS: 10, etaS: 10 }); // a total learnt later
  const resumed = new Pace(100, 90, clock);
  now += 4000; // 2 units since the resume in 4 s → 8 left
  assert.deepEqual(resumed.at(92), { elapsedS: 4, etaS: 16 });
  assert.equal(progressText(92, 100, resumed.at(92)), '92/100, elapsed 4s, eta 16s');
  assert.equal(timingText({ elapsedS: 65, etaS: NaN }), 'elapsed 1m05s, eta –');
});

test('Ticker: at most one update per interval, and always the last one', () => {
  let now = 0;
  const t = new Ticker(1000, () => now);
  const seen: number[] = [];
  for (let done = 1; done <= 10; done++) {
    now += 300;
    if (t.due(done, 10)) seen.push(done);
  }
  assert.deepEqual(seen, [4, 8, 10]); // 1200 ms, 2400 ms, and the end
});
