/**
 * @module cli/commands/bench
 * `gpg-rl bench [--json] [--no-torch] [--threads N]`: engine speed vs the machine's peak and vs
 * PyTorch on the same machine, in one run (DESIGN §7). Prints one JSON object (last line).
 */
import type { Command } from '../main.ts';
import { intFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';
import { setNumThreads } from '../../backend/index.ts';

const flags: Record<string, FlagSpec> = {
  json: { type: 'boolean', help: 'print only the JSON object (no progress lines)' },
  'no-torch': { type: 'boolean', help: 'skip the PyTorch reference runs' },
  threads: { type: 'string', help: 'compute threads (default: all cores)' },
};

export const command: Command = {
  summary: 'measure GEMM, training and decoding speed vs the machine peak and PyTorch',
  usage: usageText(
    'bench',
    '[--json] [--no-torch] [--threads N]',
    flags,
    'Takes about 2–3 minutes on 2 cores. Ratios are null when /usr/bin/python3 has no torch.',
  ),
  async run(argv) {
    const p = parseFlags('bench', argv, flags);
    const threads = intFlag(p, 'threads', 0, 0);
    if (threads > 0) setNumThreads(threads);
    const { runBench } = await import('../../perf/bench.ts');
    const quiet = !!p.flags.json;
    const res = runBench(
      (s) => {
        if (!quiet) process.stderr.write(`bench: ${s}\n`);
      },
      { skipTorch: !!p.flags['no-torch'] },
    );
    process.stdout.write(JSON.stringify(res) + '\n');
    return 0;
  },
};
