/** `import { verify } from 'gpg-rl/verify'`: the verifier on its own, through the package's exports map. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verify, VerifierPool } from 'gpg-rl/verify';

test('gpg-rl/verify exports the verifier and its pool', async () => {
  assert.equal(verify('\\frac{1}{2}', 'The answer is $\\boxed{0.5}$'), true);
  assert.equal(verify('1.6 \\times 10^{-19}', '\\boxed{0}'), false);
  const pool = new VerifierPool({ timeoutMs: 2000, workers: 1 });
  try {
    assert.equal((await pool.verify('x^2+2x+1', '(x+1)^2')).equal, true);
  } finally {
    await pool.close();
  }
});
