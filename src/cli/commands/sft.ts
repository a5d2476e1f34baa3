/**
 * @module cli/commands/sft
 * `gpg-rl sft RECIPE.yaml [--set key=value ...]`: supervised fine-tuning on prompt/solution
 * pairs (loss on solution tokens only); writes an HF model folder to <output_dir>/model and the
 * loss curve to <output_dir>/sft_log.jsonl.
 */
import type { Command } from '../main.ts';
import { parseFlags, usageText, type FlagSpec } from '../options.ts';
import { UsageError } from '../../errors.ts';
import { loadSftRecipe } from '../../sft/config.ts';
import { runSft } from '../../sft/run.ts';

const flags: Record<string, FlagSpec> = {
  set: { type: 'string', multiple: true, help: 'override a recipe field: --set max_steps=100' },
};

export const command: Command = {
  summary: 'supervised fine-tuning on prompt/solution pairs (warm start before RL)',
  usage: usageText(
    'sft',
    'RECIPE.yaml [--set key=value ...]',
    flags,
    'Example: gpg-rl sft recipes/sft/arithmetic.yaml',
  ),
  async run(argv) {
    const p = parseFlags('sft', argv, flags);
    if (p.positionals.length !== 1)
      throw new UsageError('`gpg-rl sft` needs exactly one recipe file, e.g. `gpg-rl sft recipes/sft/arithmetic.yaml`');
    const cfg = loadSftRecipe(p.positionals[0]!, (p.flags.set as string[] | undefined) ?? []);
    const summary = await runSft(cfg);
    process.stdout.write(JSON.stringify(summary) + '\n');
    return 0;
  },
};
