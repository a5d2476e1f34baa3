/**
 * The ablation's components table at toy size: every arm run is in components.md and in the
 * ablation.json rows, with the ✓/✗ its resolved config implies and positive measured costs.
 * (No timing thresholds: only that times are measured; pass and parameter counts are exact.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARMS, ARM_ORDER, runAblation, type Components } from '../../src/demo/ablate.ts';
import { LOSS_TYPES } from '../../src/rl/algorithms/index.ts';
import type { RewardInput } from '../../src/rewards/index.ts';

const TOY = { maxSteps: 6, evalEvery: 3, evalProblems: 10, maxSeconds: 60 };

test('ARMS: ppo is an arm; trpo is one exactly when loss_type trpo exists', () => {
  assert.deepEqual(ARMS['ppo'], { loss_type: 'ppo' });
  assert.equal('trpo' in ARMS, (LOSS_TYPES as readonly string[]).includes('trpo'));
  assert.deepEqual([...ARM_ORDER].sort(), Object.keys(ARMS).sort());
});

test('components table at toy size: every arm, the right ✓/✗, positive measured costs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-components-'));
  try {
    const arms = ['gpg', 'grpo', 'ppo', ...('trpo' in ARMS ? ['trpo'] : [])];
    const o = {
      arms,
      seeds: [0],
      steps: 1,
      outDir: join(dir, 'out'),
      cacheDir: join(dir, 'cache'),
      heldoutN: 4,
      warmstart: TOY,
      // length parity: the toy warm start earns no accuracy reward, so every step would be skipped
      rewardFns: { parity: ({ completions }: RewardInput) => completions.map((c) => c.length % 2) },
      log: () => {},
    };
    const res = await runAblation(o);
    assert.ok(existsSync(join(o.outDir, 'components.md')));
    assert.equal(readFileSync(join(o.outDir, 'components.md'), 'utf8'), res.componentsTable);
    const json = JSON.parse(readFileSync(join(o.outDir, 'ablation.json'), 'utf8')) as {
      rows: Array<{ arm: string; components?: Components }>;
    };
    const c = (arm: string): Components => {
      const row = json.rows.find((r) => r.arm === arm);
      assert.ok(row?.components, `no components for ${arm}`);
      return row.components;
    };
    // what each arm holds (value model, reference model, surrogate, constraint)
    const expected: Record<string, [boolean, boolean, boolean, boolean]> = {
      gpg: [false, false, false, false],
      grpo: [false, true, true, true], // β 0.04 KL, clipped ratio
      ppo: [true, true, true, true], // critic, kl_coef 0.05 in the reward, clipped ratio
      trpo: [false, false, true, true], // group baseline by default, no KL penalty, trust region
    };
    for (const arm of arms) {
      const x = c(arm);
      const [v, r, s, k] = expected[arm]!;
      assert.deepEqual(
        [x.valueModel, x.referenceModel, x.surrogate !== null, x.constraint.length > 0],
        [v, r, s, k],
        `${arm}: ${JSON.stringify(x)}`,
      );
      // the markdown row says the same
      const line = res.componentsTable.split('\n').find((l) => l.startsWith(`| ${arm} |`));
      assert.ok(line, `${arm} missing from components.md`);
      const cells = line.split('|').map((t) => t.trim());
      assert.deepEqual(
        cells.slice(2, 6).map((t) => t.startsWith('✓')),
        [v, r, s, k],
        line,
      );
      // peak RSS with its rise over the arm's start in brackets (the process baseline is in the peak)
      if (x.peakRssMB !== null && x.startRssMB !== null) assert.match(cells[7]!, /^\d+ \[\+\d+\]$/, line);
      // measured, and positive
      assert.ok(x.steps >= 1 && x.secondsPerStep > 0, `${arm}: ${x.steps} steps, ${x.secondsPerStep} s/step`);
      if (x.peakRssMB !== null) assert.ok(x.peakRssMB > 0 && x.peakRssMB >= (x.startRssMB ?? 0) * 0.5);
      assert.ok(x.parameters.policy > 0);
      assert.equal(x.parameters.total, x.parameters.policy + x.parameters.reference + x.parameters.critic);
      assert.equal(x.parameters.reference, r ? x.parameters.policy : 0, `${arm}: reference parameters`);
      assert.equal(x.parameters.critic > 0, v, `${arm}: critic parameters`);
      assert.ok(
        x.passesPerStep.forward > 0 && x.passesPerStep.backward > 0,
        `${arm}: ${JSON.stringify(x.passesPerStep)}`,
      );
      assert.ok(x.passesPerStep.forwardWithGrad > 0 && x.passesPerStep.forwardWithGrad <= x.passesPerStep.forward);
      assert.ok(x.passesPerStep.forwardSequences >= x.passesPerStep.forward);
    }
    // the dropped components cost passes: GRPO's reference adds forwards without gradient, PPO's
    // critic adds forwards and backwards of its own (and PPO's epochs more of both)
    const g = c('gpg').passesPerStep;
    const gr = c('grpo').passesPerStep;
    const p = c('ppo').passesPerStep;
    assert.equal(g.forward, g.forwardWithGrad, 'gpg: only the gradient forwards');
    assert.equal(gr.forwardWithGrad, g.forwardWithGrad);
    assert.ok(gr.forward > g.forward, `grpo ${gr.forward} vs gpg ${g.forward} forwards`);
    assert.ok(p.backward > g.backward, `ppo ${p.backward} vs gpg ${g.backward} backwards`);
    assert.ok(p.forward > gr.forward);
    // the critic is the policy's decoder without lm_head plus a scalar head: about the policy's size
    const pp = c('ppo').parameters;
    assert.ok(pp.critic > 0.5 * pp.policy && pp.critic < 1.5 * pp.policy, JSON.stringify(pp));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
