/**
 * @module cli/commands/train
 * `gpg-rl train RECIPE.yaml [--set key=value ...] [--resume] [--dry-run]`: validates the recipe
 * (one line per bad field), then runs the library's `train()`.
 */
import type { Command } from '../main.ts';
import { parseFlags, usageText, type FlagSpec } from '../options.ts';
import { loadRecipe, ConfigIssuesError } from '../../rl/recipe.ts';
import { describeConfig } from '../../rl/config.ts';
import { FlagError } from '../../errors.ts';
import { dirname, resolve } from 'node:path';

const flags: Record<string, FlagSpec> = {
  set: { type: 'string', multiple: true, help: 'override a recipe field: --set max_steps=3 --set dataset.limit=100' },
  resume: { type: 'boolean', help: 'continue the run in output_dir from its newest checkpoint' },
  'dry-run': { type: 'boolean', help: 'validate recipe, data, model and rewards, then stop (writes nothing)' },
  'from-trl': {
    type: 'boolean',
    help: "read the file as a TRL GRPOConfig (TRL's defaults and meanings), print how it maps onto ours",
  },
};

export const command: Command = {
  summary: 'RL post-training with GPG (or grpo / dapo / dr_grpo) from a YAML recipe',
  usage:
    usageText(
      'train',
      'RECIPE.yaml [--set key=value ...] [--resume] [--dry-run] [--from-trl]',
      flags,
      'Recipes in recipes/ (demo, gsm8k, math-zero-rl, distill-1.5b).',
    ) +
    '\n\n' +
    describeConfig(),
  async run(argv) {
    const p = parseFlags('train', argv, flags);
    if (p.positionals.length !== 1)
      throw new FlagError('`gpg-rl train` needs exactly one recipe file, e.g. `gpg-rl train recipes/demo.yaml`');
    const recipe = p.positionals[0]!;
    const dry = !!p.flags['dry-run'];
    let cfg;
    try {
      const trl = !!p.flags['from-trl'];
      cfg = loadRecipe(recipe, (p.flags.set as string[] | undefined) ?? [], {
        checkModel: true,
        trl,
        onTrl: trl
          ? (t) => {
              process.stderr.write(
                `${recipe}: read as a TRL GRPOConfig${t.mapping.length ? ':' : ' (no field needed mapping)'}\n`,
              );
              for (const line of t.mapping) process.stderr.write(`  ${line}\n`);
            }
          : undefined,
      });
    } catch (e) {
      if (e instanceof ConfigIssuesError && e.issues.length > 1) {
        for (const line of e.issues) process.stderr.write(`${line}\n`);
      }
      throw e;
    }
    const { train } = await import('../../rl/trainer.ts');
    const { openWorld } = await import('../../parallel/mpi.ts');
    // mpirun / srun: every rank runs this command (rank 0 reports); Ctrl-C ends the ranks at once
    // (a clean stop would need every rank to stop at the same step), --resume continues from the
    // newest save_steps checkpoint
    const world = dry ? null : openWorld();
    // Ctrl-C / SIGTERM: finish the step, save checkpoint-<step> and the report, exit 130 (main.ts);
    // a second one exits at once.
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      if (stop.signal.aborted) {
        process.stderr.write(`gpg-rl train: ${sig} again: stopping now, without saving\n`);
        process.exit(130);
      }
      process.stderr.write(
        `gpg-rl train: ${sig}: finishing the current step, then saving a checkpoint (press Ctrl-C again to stop at once)\n`,
      );
      stop.abort();
    };
    if (!world) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    let res;
    try {
      res = await train(cfg, {
        baseDir: dirname(resolve(recipe)),
        resume: !!p.flags.resume,
        dryRun: dry,
        signal: stop.signal,
        world,
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    world?.finalize();
    if (!dry && (!world || world.rank === 0))
      process.stdout.write(
        JSON.stringify({
          run_dir: res.runDir,
          steps: res.steps,
          model_dir: res.modelDir,
          final: res.metrics.at(-1) ?? null,
        }) + '\n',
      );
    return 0;
  },
};
