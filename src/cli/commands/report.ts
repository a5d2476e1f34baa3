/**
 * @module cli/commands/report
 * `gpg-rl report RUN_DIR`: rebuilds RUN_DIR/report.html from what the run folder holds
 * (metrics.jsonl, eval.jsonl, completions.jsonl, trainer_config.json), e.g. while a run goes on
 * or after it was stopped.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../main.ts';
import { parseFlags, usageText, type FlagSpec } from '../options.ts';
import { FlagError, UsageError } from '../../errors.ts';
import { writeReport } from '../../rl/report.ts';

const flags: Record<string, FlagSpec> = {};

export const command: Command = {
  summary: 'rebuild RUN_DIR/report.html from the run folder (curves, eval, completions, config)',
  usage: usageText('report', 'RUN_DIR', flags),
  async run(argv) {
    const p = parseFlags('report', argv, flags);
    if (p.positionals.length !== 1)
      throw new FlagError('`gpg-rl report` needs exactly one run folder, e.g. `gpg-rl report runs/demo`');
    const dir = p.positionals[0]!;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${dir}: no such run folder`);
    if (!existsSync(join(dir, 'metrics.jsonl')) && !existsSync(join(dir, 'trainer_config.json')))
      throw new UsageError(`${dir}: not a gpg-rl run folder (no metrics.jsonl or trainer_config.json)`);
    process.stdout.write(writeReport(dir) + '\n');
    return 0;
  },
};
