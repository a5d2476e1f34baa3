import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { VerifierPool, accuracyRewards, anchoredVerifier } from '../../../src/rewards/math-verify/pool.ts';

const HANG_WORKER = new URL('./hang-worker.mjs', import.meta.url);

describe('VerifierPool', () => {
  test('grades in worker threads, in order, with accuracy rewards', async () => {
    const pool = new VerifierPool({ workers: 2, timeoutMs: 5000 });
    try {
      const rs = await pool.verifyMany([
        ['\\frac12', 'so \\boxed{0.5}'],
        { gold: '(1,2)', pred: '(2,1)' },
        ['x=3', 'The final answer is 3.'],
      ]);
      assert.deepEqual(rs, [{ equal: true }, { equal: false }, { equal: true }]);
      assert.deepEqual(await accuracyRewards(pool, ['1', '2'], ['\\boxed{1}', '\\boxed{3}']), [1, 0]);
      await assert.rejects(accuracyRewards(pool, ['1'], []), /1 gold answers but 0 completions/);
      assert.equal(pool.stats().comparisons, 5);
    } finally {
      await pool.close();
    }
    await assert.rejects(pool.verify('1', '1'), /after close/);
  });

  test('training rewards extract anchored answers only, unless extract_without_anchor', async () => {
    const pool = new VerifierPool({ workers: 1, timeoutMs: 5000 });
    const prose = 'First, 3+4 = 7. Next we need to consider the other case.';
    try {
      assert.deepEqual(
        await accuracyRewards(pool, ['7', '7', '7'], [prose, 'so \\boxed{7}', 'The final answer is $7$.']),
        [0, 1, 1],
      );
      assert.deepEqual(await accuracyRewards(pool, ['7'], [prose], { extract_without_anchor: true }), [1]);
      // the pool itself keeps `gpg-rl verify`'s contract: a bare answer or unanchored text
      assert.deepEqual(await pool.verify('7', prose), { equal: true });
      assert.deepEqual(await pool.verify('7', prose, { extractWithoutAnchor: false }), { equal: false });
      const v = anchoredVerifier(pool);
      assert.deepEqual(await v.verify('7', prose), { equal: false });
      assert.deepEqual(await v.verify('7', '<answer>7</answer>'), { equal: true });
    } finally {
      await pool.close();
    }
    const anchoredPool = new VerifierPool({ workers: 1, timeoutMs: 5000, extractWithoutAnchor: false });
    try {
      assert.deepEqual(await anchoredPool.verify('7', prose), { equal: false });
      assert.deepEqual(await anchoredPool.verify('7', prose, { extractWithoutAnchor: true }), { equal: true });
    } finally {
      await anchoredPool.close();
    }
  });

  test('hostile inputs score 0 without hanging the real worker', async () => {
    const pool = new VerifierPool({ workers: 1, timeoutMs: 5000 });
    try {
      const hostile = [
        ['9^{9^{9}}', '\\boxed{9^{9^{9}}+1}'],
        ['1', '\\boxed{100000!}'],
        ['1', '\\boxed{' + '{'.repeat(20000) + '1' + '}'.repeat(20000) + '}'],
        ['1', 'x'.repeat(1_000_000)],
        ['1', '\\boxed{' + '1+'.repeat(50000) + '1}'],
        ['1', '\\boxed{2^{2^{2^{2^{2^{2}}}}}}'],
        ['1', '\\boxed{' + '1,'.repeat(5000) + '1}'],
        ['1, 2', '\\boxed{' + '(1,2),'.repeat(3000) + '(1,2)}'],
        ['\\begin{pmatrix}1\\end{pmatrix}', '\\boxed{' + '\\begin{pmatrix}1&1\\\\1&1\\end{pmatrix}'.repeat(30) + '}'],
        ['1.6\\times10^{-19}', '\\boxed{0}'],
        ['1', '\\boxed{1' + '0'.repeat(5000) + 'e-5000}'],
      ] as const;
      for (const [g, p] of hostile) assert.equal((await pool.verify(g, p)).equal, false, p.slice(0, 40));
      assert.deepEqual(await pool.verify('9^{9^{9}}', '\\boxed{9^{9^{9}}}'), { equal: true });
      assert.equal(pool.stats().timeouts, 0);
    } finally {
      await pool.close();
    }
  });

  test('a hang times out, a crash is caught; both are counted and the worker is replaced', async () => {
    const pool = new VerifierPool({ workers: 1, timeoutMs: 300, maxMemoryMb: 32, workerEntry: HANG_WORKER });
    try {
      const hang = await pool.verify('1', 'HANG');
      assert.equal(hang.equal, false);
      assert.equal(hang.timedOut, true);
      assert.match(hang.error!, /timed out after 300 ms/);
      const oom = await pool.verify('1', 'OOM');
      assert.equal(oom.equal, false);
      assert.match(oom.error!, /crashed|timed out/);
      const thrown = await pool.verify('1', 'THROW');
      assert.equal(thrown.equal, false);
      assert.match(thrown.error!, /crashed: Error: boom/);
      assert.deepEqual(await pool.verify('a', 'a'), { equal: true });
      const s = pool.stats();
      assert.equal(s.timeouts + s.crashes, 3);
      assert.ok(s.timeouts >= 1 && s.crashes >= 1);
      assert.equal(s.workerRestarts, 3);
      assert.equal(s.comparisons, 4);
    } finally {
      await pool.close();
    }
  });

  test('stays healthy over 10,000 ordinary comparisons mixed with 50 hostile ones at a 1 s limit', async () => {
    const pool = new VerifierPool({ workers: 2, timeoutMs: 1000 });
    const ordinary: [string, string, boolean][] = [
      ['\\frac{1}{2}', 'The answer is \\boxed{0.5}', true],
      ['42', 'so we get 42', true],
      ['(1,2)', '\\boxed{(2,1)}', false],
      ['\\sqrt{12}', '\\boxed{2\\sqrt{3}}', true],
      ['x \\le 3', '(-\\infty,3]', true],
      ['7', '\\boxed{8}', false],
    ];
    const hostile = [
      '\\boxed{9^{9^{9}}+1}',
      '\\boxed{100000!}',
      '\\boxed{' + '{'.repeat(5000) + '}'.repeat(5000) + '}',
      'y'.repeat(1_000_000),
      '\\boxed{' + '\\sqrt{'.repeat(99) + '2' + '}'.repeat(99) + '}',
    ];
    try {
      await pool.verify('1', '1'); // warm up before measuring memory
      const rss0 = process.memoryUsage().rss;
      const jobs: Promise<boolean>[] = [];
      for (let k = 0; k < 10_050; k++) {
        if (k % 201 === 100) {
          const p = hostile[((k / 201) | 0) % hostile.length]!;
          jobs.push(pool.verify('9^{9^{9}}', p).then((r) => r.equal === false));
        } else {
          const [g, p, want] = ordinary[k % ordinary.length]!;
          jobs.push(pool.verify(g, p).then((r) => r.equal === want && r.error === undefined));
        }
        if (jobs.length >= 500) assert.ok((await Promise.all(jobs.splice(0))).every(Boolean));
      }
      assert.ok((await Promise.all(jobs)).every(Boolean));
      const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
      assert.ok(grown <= 50, `RSS grew by ${grown.toFixed(1)} MB`);
      assert.equal(pool.stats().comparisons, 10_051);
    } finally {
      await pool.close();
    }
  });
});
