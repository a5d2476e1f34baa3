/**
 * @module rewards/user
 * Loads a user reward function from a module file named in the recipe: `.js`/`.mjs`/`.cjs`, or
 * `.ts`/`.mts` (works because gpg-rl runs under tsx). The path is resolved against the recipe's
 * folder; the export is the default export unless `export` names another. The function gets the
 * TRL-like `{ prompts, completions, completionIds, ...rowFields }` and returns one number (or null)
 * per completion, possibly through a Promise.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.ts';
import type { RewardFn } from './index.ts';

export interface UserRewardSpec {
  /** module path, relative to the recipe folder */
  path: string;
  /** export name; default 'default' */
  export?: string;
  /** name for logs (`rewards/<name>/mean`); default the export name, or the file's base name for a default export */
  name?: string;
}

const MODULE_EXTS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

export async function loadUserReward(spec: UserRewardSpec, baseDir: string): Promise<{ name: string; fn: RewardFn }> {
  const exportName = spec.export ?? 'default';
  const file = resolve(baseDir, spec.path);
  const label = `reward_funcs: ${spec.path}`;
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new ConfigError(`${label}: file not found (resolved to ${file}); paths are relative to the recipe's folder`);
  }
  const ext = extname(file).toLowerCase();
  if (!MODULE_EXTS.has(ext)) {
    throw new ConfigError(
      `${label}: '${ext || '(none)'}' is not a JavaScript/TypeScript module; use .js, .mjs, .cjs, .ts or .mts`,
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    const msg = ((e as Error).message ?? String(e)).split('\n', 1)[0];
    const hint = ext.endsWith('ts')
      ? ' (TypeScript modules need the process to run under tsx, as bin/gpg-rl.mjs does)'
      : '';
    throw new ConfigError(`${label}: cannot import the module: ${msg}${hint}`);
  }
  const fn = mod[exportName];
  if (fn === undefined) {
    const have = Object.keys(mod).filter((k) => k !== '__esModule');
    throw new ConfigError(
      `${label}: has no ${exportName === 'default' ? 'default export' : `export '${exportName}'`} (exports: ${have.join(', ') || 'none'}); set export: to one of them`,
    );
  }
  if (typeof fn !== 'function') {
    throw new ConfigError(
      `${label}: export '${exportName}' is ${fn === null ? 'null' : `a ${typeof fn}`}, not a function`,
    );
  }
  const name = spec.name ?? (exportName !== 'default' ? exportName : basename(file, extname(file)));
  return { name, fn: fn as RewardFn };
}
