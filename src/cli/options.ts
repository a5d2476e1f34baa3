/**
 * @module cli/options
 * A tiny, strict flag parser shared by every command: `--name value`, `--name=value`, boolean
 * `--flag`, repeatable flags, positionals. Unknown flags are usage errors naming the flag.
 */
import { FlagError } from '../errors.ts';

export interface FlagSpec {
  /** Takes a value (`--out DIR`) or is a boolean switch (`--greedy`). */
  type: 'string' | 'boolean';
  /** May be given several times; values collect into an array. */
  multiple?: boolean;
  /** One line for the usage text. */
  help: string;
}

export type ParsedFlags = { positionals: string[]; flags: Record<string, string | boolean | string[] | undefined> };

export function parseFlags(command: string, argv: string[], spec: Record<string, FlagSpec>): ParsedFlags {
  const out: ParsedFlags = { positionals: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      out.positionals.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const s = spec[name];
    if (!s)
      throw new FlagError(
        `unknown option --${name} for \`gpg-rl ${command}\` (known: ${Object.keys(spec)
          .map((k) => '--' + k)
          .join(', ')})`,
      );
    if (s.type === 'boolean') {
      if (value !== undefined) throw new FlagError(`--${name} takes no value`);
      out.flags[name] = true;
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new FlagError(`--${name} needs a value`);
    }
    if (s.multiple)
      ((out.flags[name] as string[] | undefined) ?? ((out.flags[name] = [] as string[]) as string[])).push(value);
    else out.flags[name] = value;
  }
  return out;
}

export function requireFlag(command: string, p: ParsedFlags, name: string): string {
  const v = p.flags[name];
  if (typeof v !== 'string' || v === '') throw new FlagError(`\`gpg-rl ${command}\` needs --${name}`);
  return v;
}

export function intFlag(p: ParsedFlags, name: string, dflt: number, min = 0): number {
  const v = p.flags[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min)
    throw new FlagError(`--${name} must be an integer ≥ ${min} (got ${String(v)})`);
  return n;
}

export function numberFlag(p: ParsedFlags, name: string, dflt: number): number {
  const v = p.flags[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n))
    throw new FlagError(`--${name} must be a number (got ${String(v)})`);
  return n;
}

export function usageText(command: string, synopsis: string, spec: Record<string, FlagSpec>, about = ''): string {
  const lines = [`usage: gpg-rl ${command} ${synopsis}`];
  if (about) lines.push('', about);
  lines.push('', 'options:');
  for (const [k, s] of Object.entries(spec))
    lines.push(`  --${(k + (s.type === 'string' ? ' <v>' : '')).padEnd(24)} ${s.help}`);
  return lines.join('\n');
}
