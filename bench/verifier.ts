/**
 * @module bench/verifier
 * Median time per comparison on warm VerifierPool workers (issue 5: < 2 ms). Run:
 *   npx tsx bench/verifier.ts
 * Sends a realistic mix (integers, fractions, boxed answers, symbolic, tuples) one at a time
 * and prints the median, p90 and throughput with all workers busy.
 */
import { VerifierPool } from '../src/rewards/math-verify/pool.ts';

const MIX: [string, string][] = [
  ['42', 'So the total is \\boxed{42}.'],
  ['\\frac{1}{2}', 'Therefore the probability is \\boxed{\\dfrac{1}{2}}.'],
  ['27.0', 'The answer is 27'],
  ['\\sqrt{12}', '\\boxed{2\\sqrt{3}}'],
  ['(1,2)', '\\boxed{(1, 2)}'],
  ['x \\le 3', '\\boxed{(-\\infty, 3]}'],
  ['\\frac{\\pi}{4}', '\\boxed{\\frac{\\pi}{4}}'],
  ['5', 'we get 6 apples'],
  ['\\{1,2\\}', '\\boxed{\\{2,1\\}}'],
  ['3+2i', '\\boxed{2i+3}'],
];

const pool = new VerifierPool({ timeoutMs: 1000 });
for (let k = 0; k < 200; k++) await pool.verify(...MIX[k % MIX.length]!); // warm up
const times: number[] = [];
for (let k = 0; k < 3000; k++) {
  const t = performance.now();
  await pool.verify(...MIX[k % MIX.length]!);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const t0 = performance.now();
const N = 20_000;
await Promise.all(Array.from({ length: N }, (_, k) => pool.verify(...MIX[k % MIX.length]!)));
const thr = N / ((performance.now() - t0) / 1000);
console.log(`verifier: median ${times[times.length >> 1]!.toFixed(3)} ms, p90 ${times[Math.floor(times.length * 0.9)]!.toFixed(3)} ms per comparison (sequential, warm); ${thr.toFixed(0)} comparisons/s with all workers busy`);
console.log(pool.stats());
await pool.close();
