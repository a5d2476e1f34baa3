/**
 * @module model/hub
 * Models by Hugging Face repo id (`Qwen/Qwen2.5-0.5B-Instruct`) from the local hub cache that
 * `huggingface_hub` (transformers, `hf download`) fills — never downloaded. The cache layout
 * (huggingface_hub `file_download.py`):
 *
 *   <cache>/models--Org--Name/refs/main         the commit hash `main` points at
 *   <cache>/models--Org--Name/snapshots/<hash>/ config.json, *.safetensors, tokenizer.json (links into blobs/)
 *
 * The cache folder is huggingface_hub's: `$HF_HUB_CACHE` (or the older `$HUGGINGFACE_HUB_CACHE`),
 * else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
 * every one of these that is set is searched, in that order. The snapshot is the one `refs/main`
 * names, else the only one there is. `resolveModelPath` is what every command that takes a model
 * folder calls (train and sft recipes' `model_name_or_path`, eval / generate / logprobs `--model`,
 * merge-lora `--base`): an existing folder wins; a repo id is looked up; absent, one error names
 * the repo id and the folders searched.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ModelLoadError } from '../errors.ts';

/** huggingface_hub's repo id rule: `name` or `org/name`, of `[\w.-]`, no `--` or `..`, at most 96 characters. */
export function isRepoId(s: string): boolean {
  return (
    s.length <= 96 &&
    /^(?:[\w.-]+\/)?[\w.-]+$/.test(s) &&
    !s.includes('--') &&
    !s.includes('..') &&
    !/^[.-]|[.-]$|[.-]\/|\/[.-]/.test(s)
  );
}

type Env = Record<string, string | undefined>;

/** The hub cache folders to search, most specific first (duplicates removed). */
export function hubCacheDirs(env: Env = process.env, home: string = homedir()): string[] {
  const set = (v: string | undefined) => (v !== undefined && v.trim() !== '' ? expandHome(v, home) : null);
  const out = [
    set(env['HF_HUB_CACHE']),
    set(env['HUGGINGFACE_HUB_CACHE']),
    set(env['HF_HOME']) !== null ? join(set(env['HF_HOME'])!, 'hub') : null,
    set(env['XDG_CACHE_HOME']) !== null ? join(set(env['XDG_CACHE_HOME'])!, 'huggingface', 'hub') : null,
    join(home, '.cache', 'huggingface', 'hub'),
  ].filter((d): d is string => d !== null);
  return [...new Set(out.map((d) => resolve(d)))];
}

function expandHome(p: string, home: string): string {
  return p === '~' || p.startsWith('~/') ? join(home, p.slice(1)) : p;
}

/** `Org/Name` → `models--Org--Name` (huggingface_hub `repo_folder_name`). */
export function repoFolderName(repoId: string): string {
  return `models--${repoId.split('/').join('--')}`;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The snapshot folder of `repoId` in one cache folder, or null when the repo is not there.
 * A repo folder that is there but unusable (refs/main naming a missing snapshot with several
 * others present, no snapshot with config.json) is an error saying which.
 */
function snapshotIn(cache: string, repoId: string): string | null {
  const repo = join(cache, repoFolderName(repoId));
  const snaps = join(repo, 'snapshots');
  if (!isDir(snaps)) return null;
  const ref = join(repo, 'refs', 'main');
  let chosen: string | null = null;
  if (existsSync(ref)) {
    const hash = readFileSync(ref, 'utf8').trim();
    if (isDir(join(snaps, hash))) chosen = join(snaps, hash);
  }
  if (chosen === null) {
    const all = readdirSync(snaps).filter((n) => isDir(join(snaps, n)));
    if (all.length === 0) return null;
    if (all.length > 1)
      throw new ModelLoadError(
        `model ${repoId}: ${snaps} holds ${all.length} snapshots (${all.join(', ')}) and refs/main names none of them; give the snapshot folder itself`,
      );
    chosen = join(snaps, all[0]!);
  }
  if (!existsSync(join(chosen, 'config.json')))
    throw new ModelLoadError(
      `model ${repoId}: the cached snapshot ${chosen} has no config.json (a partial download?); download the whole repo (\`hf download ${repoId}\`) where there is a network`,
    );
  return chosen;
}

/** The snapshot folder of `repoId` in the hub cache, or null. */
export function findInHubCache(repoId: string, env: Env = process.env, home: string = homedir()): string | null {
  for (const cache of hubCacheDirs(env, home)) {
    const s = snapshotIn(cache, repoId);
    if (s !== null) return s;
  }
  return null;
}

export interface ResolveModelOptions {
  env?: Env;
  home?: string;
  /** Names what asked for the model in the error (e.g. `--model`, `model_name_or_path`). */
  what?: string;
}

/**
 * A model folder: `nameOrPath` itself when it is an existing folder, else the hub cache's
 * snapshot of the repo id it spells. Never downloads. Throws one ModelLoadError naming the repo id
 * and every folder searched when neither exists.
 */
export function resolveModelPath(nameOrPath: string, o: ResolveModelOptions = {}): string {
  if (isDir(nameOrPath)) return nameOrPath;
  return resolveHubModel(nameOrPath, nameOrPath, o);
}

/**
 * As resolveModelPath, for a value that was already made absolute against a recipe's folder:
 * `local` is that path, `raw` what the user wrote (looked up as a repo id when `local` is no folder).
 */
export function resolveHubModel(local: string, raw: string, o: ResolveModelOptions = {}): string {
  if (isDir(local)) return local;
  const what = o.what ? `${o.what}: ` : '';
  const env = o.env ?? process.env;
  const home = o.home ?? homedir();
  if (!isRepoId(raw))
    throw new ModelLoadError(
      `${what}model folder not found: ${local} (a Hugging Face folder with config.json, *.safetensors and tokenizer.json, or a repo id in the hub cache)`,
    );
  const found = findInHubCache(raw, env, home);
  if (found !== null) return found;
  const searched = hubCacheDirs(env, home).map((d) => join(d, repoFolderName(raw)));
  throw new ModelLoadError(
    `${what}model ${raw}: no folder ${local} and not in the Hugging Face hub cache (searched ${searched.join(', ')}); models are never downloaded: fetch it with \`hf download ${raw}\` where there is a network, or give a model folder`,
  );
}
