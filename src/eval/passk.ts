/**
 * @module eval/passk
 * The unbiased pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained
 * on Code", eq. 1): with n samples of which c are correct, pass@k = 1 − C(n−c, k) / C(n, k),
 * computed as the product 1 − Π_{i=n−c+1..n} (1 − k/i) (their numpy snippet) so no binomial
 * coefficient is ever formed and nothing overflows for large n.
 */
import { GpgRlError } from '../errors.ts';

/** pass@k for one problem: n samples, c correct, 1 ≤ k ≤ n. */
export function passAtK(n: number, c: number, k: number): number {
  if (
    !Number.isInteger(n) ||
    !Number.isInteger(c) ||
    !Number.isInteger(k) ||
    n < 1 ||
    c < 0 ||
    c > n ||
    k < 1 ||
    k > n
  ) {
    throw new GpgRlError(`passAtK: need integers 0 ≤ c ≤ n and 1 ≤ k ≤ n (got n=${n}, c=${c}, k=${k})`, 'GPG_EVAL');
  }
  if (n - c < k) return 1; // every k-subset holds a correct sample
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

/** Mean pass@k over problems, each given as { n, c }; 0 for an empty list. */
export function meanPassAtK(problems: ReadonlyArray<{ n: number; c: number }>, k: number): number {
  if (problems.length === 0) return 0;
  let s = 0;
  for (const p of problems) s += passAtK(p.n, p.c, k);
  return s / problems.length;
}
