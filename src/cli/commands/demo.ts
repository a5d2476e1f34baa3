/**
 * @module cli/commands/demo
 * `gpg-rl demo [--seed N]`: warm start (cached) → held-out accuracy → GPG → held-out accuracy.
 * The last line of standard output is a JSON object with heldout_accuracy_before,
 * heldout_accuracy_after and run_dir.
 */
import type { Command } from '../main.ts';
import { intFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';

const flags: Record<string, FlagSpec> = {
  seed: { type: 'string', help: 'seed of the warm start and of GPG (default 0)' },
  steps: { type: 'string', help: 'GPG steps (default 400)' },
  'runs-dir': { type: 'string', help: 'where the run folder goes (default runs/)' },
  'cache-dir': { type: 'string', help: 'warm-start cache (default ~/.cache/gpg-rl)' },
};

export const command: Command = {
  summary: 'the embedded demo: a tiny model gets better at arithmetic with GPG, offline on a CPU',
  usage: usageText(
    'demo',
    '[--seed N]',
    flags,
    'First run ≈ 4 minutes on 2 cores (the SFT warm start is cached afterwards).',
  ),
  async run(argv) {
    const p = parseFlags('demo', argv, flags);
    const { runDemo, DEMO_RL_STEPS } = await import('../../demo/demo.ts');
    const res = await runDemo({
      seed: intFlag(p, 'seed', 0),
      rlSteps: intFlag(p, 'steps', DEMO_RL_STEPS, 1),
      runsDir: p.flags['runs-dir'] as string | undefined,
      cacheDir: p.flags['cache-dir'] as string | undefined,
    });
    process.stdout.write(JSON.stringify(res) + '\n');
    return 0;
  },
};
