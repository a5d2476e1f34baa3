/**
 * @module cli/main
 * `gpg-rl <command> [args]`: each command lives in `src/cli/commands/<command>.ts` and exports a
 * `command` object. This file only dispatches, and catches errors once: one line on stderr
 * (`gpg-rl <command>: message`), the stack only with `--debug`; exit code 2 for a malformed command
 * line (an unknown command or flag, a flag without its value, a missing argument: `FlagError`), 1
 * for every other error. `--device NAME` (any command) loads that backend (`cpu`, `webgpu`) before
 * the command runs, says which adapter on stderr, and makes it the default for every tensor.
 * It runs from the TypeScript sources (tsx) and from the compiled package (dist/, .js files).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { FlagError, GpgRlError, UsageError } from '../errors.ts';
import { fsErrorCode, fsErrorMessage } from '../io/fs.ts';
import { useBackend } from '../backend/index.ts';

/** What every `src/cli/commands/<name>.ts` exports as `command`. */
export interface Command {
  /** One line for `gpg-rl --help`. */
  summary: string;
  /** Full usage text for `gpg-rl <name> --help`. */
  usage: string;
  /** Runs the command; resolves to the process exit code. Throws GpgRlError for user errors. */
  run(argv: string[]): Promise<number>;
}

const here = fileURLToPath(import.meta.url);
const commandsDir = join(dirname(here), 'commands');
/** `.ts` from the sources, `.js` in the compiled package. */
const ext = here.endsWith('.js') ? '.js' : '.ts';

/** Exit code of a usage error (unknown command or flag, missing argument), as argparse and most CLIs. */
export const EXIT_USAGE = 2;

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

/** The package version (package.json two folders up from src/cli or dist/cli). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(dirname(here), '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function load(name: string): Promise<Command> {
  const file = join(commandsDir, `${name}${ext}`);
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !existsSync(file)) {
    throw new FlagError(`unknown command "${name}"; run \`gpg-rl --help\` for the list (${commandNames().join(', ')})`);
  }
  const mod = (await import(file)) as { command: Command };
  return mod.command;
}

async function help(): Promise<void> {
  const lines = [
    'gpg-rl — RL post-training of language models with GPG (Group Policy Gradient)',
    '',
    'usage: gpg-rl <command> [options]',
    '',
    'commands:',
  ];
  for (const name of commandNames()) {
    const c = await load(name);
    lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  }
  lines.push(
    '',
    "Run `gpg-rl <command> --help` for a command's options. Add --debug to any command for stack traces, --device webgpu to run it on the WebGPU backend. `gpg-rl --version` prints the version.",
  );
  process.stdout.write(lines.join('\n') + '\n');
}

/** Removes `--device NAME` / `--device=NAME` from the arguments; returns the name (null when absent). */
export function takeDevice(argv: string[]): { args: string[]; device: string | null } {
  const args: string[] = [];
  let device: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--device') {
      device = argv[++i] ?? '';
      if (!device || device.startsWith('--')) throw new FlagError('--device needs a value (cpu or webgpu)');
    } else if (a.startsWith('--device=')) device = a.slice('--device='.length);
    else args.push(a);
  }
  return { args, device };
}

/** Loads the backend named by --device and says on stderr what it runs on (a fallback is never silent). */
async function selectDevice(device: string): Promise<void> {
  const be = await useBackend(device);
  // child processes (ablate's arms, workers) start on the same backend
  process.env.GPG_RL_BACKEND = be.name;
  const a = (be as { adapter?: { vendor: string; device: string; description: string; features: string[] } }).adapter;
  process.stderr.write(
    a
      ? `gpg-rl: device ${be.name}: ${a.description || `${a.vendor} ${a.device}`} (features: ${a.features.join(', ') || 'none'})\n`
      : `gpg-rl: device ${be.name}\n`,
  );
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let args = argv.filter((a) => a !== '--debug');
  let device: string | null = null;
  try {
    ({ args, device } = takeDevice(args));
  } catch (e) {
    process.stderr.write(`gpg-rl: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }
  const name = args[0];
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    await help();
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`gpg-rl ${packageVersion()}\n`);
    return 0;
  }
  try {
    const cmd = await load(name);
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(cmd.usage.trimEnd() + '\n');
      return 0;
    }
    if (device) await selectDevice(device);
    return await cmd.run(args.slice(1));
  } catch (err) {
    const e = err as Error;
    // a Node system error that escaped (ENOSPC mid-write, …) still reads as one line naming the path
    const msg =
      e instanceof GpgRlError
        ? e.message
        : fsErrorCode(e)
          ? fsErrorMessage(e, (e as { syscall?: string }).syscall ?? 'access')
          : `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
    process.stderr.write(`gpg-rl ${name}: ${msg.split('\n')[0]}\n`);
    if (debug) process.stderr.write(`${e?.stack ?? ''}\n`);
    if (e instanceof FlagError) return EXIT_USAGE;
    return e instanceof GpgRlError && e.code === 'GPG_INTERRUPTED' ? 130 : 1;
  }
}

/**
 * Ctrl-C / SIGTERM for commands that do not handle them (train does, to save a checkpoint): one
 * line, exit 130. A command's own listener makes this one stand aside.
 */
function onSignal(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return;
  process.stderr.write(`gpg-rl ${process.argv[2] ?? ''}: interrupted (${sig})\n`);
  process.exit(130);
}

// Run when executed as the CLI entry (bin/gpg-rl.mjs imports this module).
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
const argv = process.argv.slice(2);
const code = await main(argv);
process.exitCode = code;
// Exit within a second even if something still holds the event loop (a worker or timer a
// library left behind): a CLI that hangs after its answer hangs CI and schedulers.
setTimeout(() => {
  if (argv.includes('--debug'))
    process.stderr.write(`gpg-rl: still open at exit: ${process.getActiveResourcesInfo().join(', ')}\n`);
  process.exit(code);
}, 1000).unref();
