/**
 * @module cli/commands/ablate
 * `gpg-rl ablate [--arms a,b] [--seeds 0,1,2] [--steps N] [--out DIR]`: the paper's Table 1
 * ablation at small scale (see src/demo/ablate.ts). Prints the markdown table, then the components
 * table (components.md).
 */
import type { Command } from '../main.ts';
import { intFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';
import { UsageError } from '../../errors.ts';

const flags: Record<string, FlagSpec> = {
  arms: {
    type: 'string',
    help: 'comma-separated subset of grpo,dr_grpo,dapo,gpg_std,gpg_no_age,gpg,gpg_beta_th,ppo,trpo,sft_more (default all)',
  },
  seeds: { type: 'string', help: 'comma-separated seeds (default 0,1,2)' },
  steps: { type: 'string', help: 'budget in steps of 16 prompts × 8 completions (default 150)' },
  out: { type: 'string', help: 'output folder (default runs/ablation); finished arm/seed rows there are reused' },
  'cache-dir': { type: 'string', help: 'warm-start cache (default ~/.cache/gpg-rl)' },
};

export const command: Command = {
  summary:
    "the GPG paper's ablation (GRPO, Dr. GRPO, DAPO, F_norm, AGE, β_th, PPO, TRPO) at small scale, with the measured components table",
  usage: usageText('ablate', '[--arms a,b] [--seeds 0,1,2] [--steps N] [--out DIR]', flags),
  async run(argv) {
    const p = parseFlags('ablate', argv, flags);
    if (p.positionals.length)
      throw new UsageError(`\`gpg-rl ablate\` takes no positional arguments (got ${p.positionals.join(' ')})`);
    const list = (v: unknown) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : undefined;
    const seeds = list(p.flags.seeds)?.map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--seeds: "${s}" is not a non-negative integer`);
      return n;
    });
    const { runAblation } = await import('../../demo/ablate.ts');
    const res = await runAblation({
      arms: list(p.flags.arms),
      seeds,
      steps: intFlag(p, 'steps', 150, 1),
      outDir: p.flags.out as string | undefined,
      cacheDir: p.flags['cache-dir'] as string | undefined,
    });
    process.stdout.write(res.table + '\n' + res.componentsTable);
    return 0;
  },
};
