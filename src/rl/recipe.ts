/**
 * @module rl/recipe
 * YAML recipe + `--set key=value` overrides → a validated `TrainConfig`. Every bad field is
 * reported, one line each (`recipe.yaml: num_generations: must be ≥ 2 (got 1)`), in one
 * ConfigError; the first line of its message is a summary that stands on its own.
 *
 * Path rule: paths written in a recipe are relative to the recipe's folder; paths given with
 * `--set` (or to `validateConfig` without `baseDir`) are relative to the working directory.
 * `output_dir` is always relative to the working directory (like TRL / nanoGPT). Values starting
 * with `builtin:` name embedded assets and are not checked on disk. `model_name_or_path` may also
 * be a Hugging Face repo id (`Org/Name`) found in the local hub cache (model/hub.ts; never
 * downloaded): it is kept as written. The model is checked unless `checkModel: false` (for
 * `--dry-run` on a machine without the weights).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument, parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, ModelLoadError } from '../errors.ts';
import { isRepoId, resolveModelPath } from '../model/hub.ts';
import {
  BUILTIN_PREFIX,
  DATASET_FIELDS,
  FIELDS,
  REQUIRED,
  applyDefaults,
  crossFieldChecks,
  inputSchema,
} from './config.ts';
import type { ConfigIssue, TrainConfig } from './config.ts';
import { ROWS_PREFIX } from './callbacks.ts';
import { translateTrl, type TrlTranslation } from './trl.ts';

/** A ConfigError that also carries its lines, for a CLI that prints them all. */
export class ConfigIssuesError extends ConfigError {
  readonly issues: string[];
  constructor(source: string, issues: string[]) {
    const summary =
      issues.length === 1
        ? issues[0]!
        : `${source}: ${issues.length} invalid fields: ${issues.map((l) => (l.startsWith(source + ': ') ? l.slice(source.length + 2) : l)).join('; ')}`;
    super([summary, ...(issues.length > 1 ? issues : [])].join('\n'));
    this.issues = issues;
  }
}

export interface ValidateOptions {
  /** Relative paths (model, dataset, reward modules) resolve against this; default: the working directory. */
  baseDir?: string;
  /** Check that dataset files and reward modules exist (default true). */
  checkPaths?: boolean;
  /** Check that the model folder exists (default true; `--dry-run` may turn it off). */
  checkModel?: boolean;
  /** Default output_dir when the input has none (loadRecipe: runs/<recipe name>). */
  defaultOutputDir?: string;
  /** Read the input as a TRL GRPOConfig (`gpg-rl train --from-trl`): TRL's defaults and meanings (rl/trl.ts). */
  trl?: boolean;
  /** Where the one-line warnings for TRL fields without effect go (default: stderr). */
  warn?: (line: string) => void;
  /** Receives the TRL translation (the mapping `--from-trl` prints). */
  onTrl?: (t: TrlTranslation) => void;
}

/** TRL / open-r1 names that live elsewhere here. */
const ALIASES: Record<string, string> = {
  dataset_name: 'dataset.path',
  dataset_prompt_column: 'dataset.prompt_field',
  system_prompt: 'dataset.system_prompt',
  chat_template: 'dataset.use_chat_template',
  max_response_length: 'max_completion_length',
  lr: 'learning_rate',
  kl_coef: 'beta',
  clip_range: 'epsilon',
  group_size: 'num_generations',
  n_samples: 'num_generations',
  epsilon_low: 'epsilon',
  num_epochs: 'num_train_epochs',
};

// ---------------------------------------------------------------------------------------------
// public API

/**
 * Validates a config object (programmatic use: `train(config, …)`). Throws one ConfigError listing
 * every problem, each line prefixed with `source`.
 */
export function validateConfig(obj: unknown, source = 'config', opts: ValidateOptions = {}): TrainConfig {
  const o = isPlainObject(obj) ? structuredClone(obj) : obj;
  if (isPlainObject(o)) resolvePaths(o, opts.baseDir ?? process.cwd());
  return validateResolved(o, source, new Set(), opts);
}

/**
 * Reads a YAML recipe, applies `--set` overrides ("key=value", dotted keys for nested fields,
 * values parsed as YAML scalars/flow collections) and validates.
 */
export function loadRecipe(
  path: string,
  sets: string[] = [],
  opts: Omit<ValidateOptions, 'baseDir'> = {},
): TrainConfig {
  if (!existsSync(path) || !statSync(path).isFile())
    throw new ConfigError(`${path}: recipe not found (give the path of a .yaml file, e.g. recipes/demo.yaml)`);
  const text = readFileSync(path, 'utf8');
  const doc = parseDocument(text);
  if (doc.errors.length) {
    throw new ConfigIssuesError(
      path,
      doc.errors.map((e) => {
        const lc = e.linePos?.[0];
        return `${path}${lc ? `:${lc.line}:${lc.col}` : ''}: YAML syntax error: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (!isPlainObject(raw))
    throw new ConfigError(`${path}: a recipe must be a YAML mapping of field: value (got ${describeValue(raw)})`);
  resolvePaths(raw, dirname(resolve(path)));

  const setIssues: string[] = [];
  const setKeys = new Set<string>();
  for (const s of sets) {
    try {
      const { key, value } = parseSet(s);
      const v = resolveSetPath(key, value);
      assign(raw, key, v);
      setKeys.add(key.join('.'));
    } catch (e) {
      setIssues.push(`--set ${s}: ${(e as Error).message}`);
    }
  }
  const stem = basename(path, extname(path));
  let cfg: TrainConfig | undefined;
  let rest: string[] = [];
  try {
    cfg = validateResolved(raw, path, setKeys, { ...opts, defaultOutputDir: opts.defaultOutputDir ?? `runs/${stem}` });
  } catch (e) {
    if (!(e instanceof ConfigIssuesError)) throw e;
    rest = e.issues;
  }
  const all = [...setIssues, ...rest];
  if (all.length || !cfg) throw new ConfigIssuesError(path, all);
  return cfg;
}

/** `"a.b=value"` → key ['a','b'] and the value parsed as YAML (so 3 is a number, [x, y] a list). */
export function parseSet(s: string): { key: string[]; value: unknown } {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new ConfigError('expected key=value (e.g. --set max_steps=3)');
  const key = s.slice(0, eq).trim().split('.');
  if (key.some((k) => !/^[A-Za-z0-9_]+$/.test(k)))
    throw new ConfigError(`bad key "${s.slice(0, eq)}": use field names joined by dots (e.g. dataset.limit)`);
  const text = s.slice(eq + 1);
  let value: unknown;
  try {
    value = text === '' ? '' : parseYaml(text);
  } catch {
    value = text; // not YAML (e.g. "a: b: c"): take the text as a string
  }
  return { key, value };
}

// ---------------------------------------------------------------------------------------------
// validation core

function validateResolved(
  o: unknown,
  source: string,
  setKeys: ReadonlySet<string>,
  opts: ValidateOptions,
): TrainConfig {
  const fromSet = (path: string) =>
    [...setKeys].some((k) => path === k || path.startsWith(k + '.') || k.startsWith(path + '.'));
  const fmt = (iss: ConfigIssue) =>
    !iss.path
      ? `${source}: ${iss.message}`
      : fromSet(iss.path)
        ? `--set ${iss.path}: ${iss.message}`
        : `${source}: ${iss.path}: ${iss.message}`;
  if (!isPlainObject(o))
    throw new ConfigIssuesError(source, [
      fmt({ path: '', message: `must be an object of field: value (got ${describeValue(o)})` }),
    ]);
  // TRL's names and values (rl/trl.ts): mapped onto ours, warned about once, or refused
  const trl = translateTrl(o, opts.trl ? 'trl' : 'recipe');
  opts.onTrl?.(trl);
  const warn = opts.warn ?? ((line: string) => process.stderr.write(`gpg-rl: warning: ${line}\n`));
  for (const w of trl.warnings) warn(fmt({ path: '', message: w }));
  const input = trl.config;
  if (input.output_dir === undefined && opts.defaultOutputDir) input.output_dir = opts.defaultOutputDir;

  const parsed = inputSchema.safeParse(input);
  const issues: ConfigIssue[] = parsed.success ? [] : parsed.error.issues.flatMap((i) => zodIssue(i, input));
  issues.unshift(...trl.refused);
  for (const [k, fld] of Object.entries(FIELDS)) {
    if (fld.default === REQUIRED && input[k] === undefined)
      issues.push({ path: k, message: `required; set it in the recipe or with --set ${k}=…` });
  }
  if (issues.length) throw new ConfigIssuesError(source, dedupe(issues.map(fmt)));

  const data = parsed.data as Record<string, unknown>;
  const cfg = applyDefaults(data, issues);
  if (issues.length) throw new ConfigIssuesError(source, issues.map(fmt));
  issues.push(...crossFieldChecks(cfg, new Set(Object.keys(input))));
  issues.push(...pathChecks(cfg, opts));
  if (issues.length) throw new ConfigIssuesError(source, issues.map(fmt));
  return cfg;
}

function pathChecks(c: TrainConfig, opts: ValidateOptions): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  if (opts.checkPaths !== false) {
    const d = c.dataset.path;
    if (!d.startsWith(BUILTIN_PREFIX) && !d.startsWith(ROWS_PREFIX) && !existsSync(d))
      out.push({
        path: 'dataset.path',
        message: `file not found: ${d} (paths in a recipe are relative to its folder)`,
      });
    c.reward_funcs.forEach((r, i) => {
      if (typeof r !== 'string' && !existsSync(r.path))
        out.push({
          path: `reward_funcs.${i}.path`,
          message: `module not found: ${r.path} (paths in a recipe are relative to its folder)`,
        });
    });
  }
  if (opts.checkModel !== false && !c.model_name_or_path.startsWith(BUILTIN_PREFIX)) {
    // a folder, or a repo id in the Hugging Face hub cache (never downloaded)
    try {
      resolveModelPath(c.model_name_or_path);
    } catch (e) {
      if (!(e instanceof ModelLoadError)) throw e;
      out.push({ path: 'model_name_or_path', message: e.message });
    }
  }
  return out;
}

/** One zod issue → our one-line messages (unknown keys: one line each, with a did-you-mean). */
function zodIssue(iss: z.core.$ZodIssue, input: Record<string, unknown>): ConfigIssue[] {
  const path = iss.path.map(String).join('.');
  const got = lookup(input, iss.path as PropertyKey[]);
  const gotText = `(got ${describeValue(got)})`;
  switch (iss.code) {
    case 'unrecognized_keys': {
      const nested = path === 'dataset';
      return iss.keys.map((k) => ({ path: path ? `${path}.${k}` : k, message: `unknown field${suggest(k, nested)}` }));
    }
    case 'invalid_type': {
      if (got === undefined) return [{ path, message: `required; set it in the recipe or with --set ${path}=…` }];
      const exp =
        iss.expected === 'int'
          ? 'an integer'
          : iss.expected === 'object'
            ? 'a mapping'
            : iss.expected === 'array'
              ? 'a list'
              : `a ${iss.expected === 'boolean' ? 'boolean (true/false)' : iss.expected}`;
      if (iss.expected === 'number' && typeof got === 'number')
        return [{ path, message: `must be a finite number ${gotText}` }];
      return [{ path, message: `must be ${exp}${iss.expected === 'nonoptional' ? '' : ''} ${gotText}` }];
    }
    case 'too_small':
    case 'too_big': {
      const bound = iss.code === 'too_small' ? iss.minimum : iss.maximum;
      const op = iss.code === 'too_small' ? (iss.inclusive ? '≥' : '>') : iss.inclusive ? '≤' : '<';
      if (iss.origin === 'string') return [{ path, message: `must not be empty ${gotText}` }];
      if (iss.origin === 'array')
        return [
          {
            path,
            message: `must have ${iss.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)} entr${Number(bound) === 1 ? 'y' : 'ies'} ${gotText}`,
          },
        ];
      return [{ path, message: `must be ${op} ${String(bound)} ${gotText}` }];
    }
    case 'invalid_value':
      return [{ path, message: `must be one of ${iss.values.map(String).join('|')} ${gotText}` }];
    default:
      return [{ path, message: `${iss.message} ${gotText}` }];
  }
}

function suggest(key: string, nested: boolean): string {
  if (!nested && ALIASES[key]) return ` (did you mean ${ALIASES[key]}?)`;
  if (!nested && key in DATASET_FIELDS) return ` (did you mean dataset.${key}?)`;
  const names = Object.keys(nested ? DATASET_FIELDS : FIELDS);
  let best = '';
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(key.toLowerCase(), n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  const near =
    bestD <= Math.max(2, Math.floor(key.length / 3)) || (best.includes(key.toLowerCase()) && key.length >= 4);
  return near ? ` (did you mean ${nested ? 'dataset.' : ''}${best}?)` : `; see \`gpg-rl train --help\` for the fields`;
}

/** Levenshtein distance (small strings). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// paths and helpers

/**
 * model_name_or_path: a relative folder resolves against `base`, except a repo id (`Org/Name`)
 * with no such folder there, which stays as written and is looked up in the hub cache at load.
 */
function modelPath(p: unknown, base: string): unknown {
  const abs = absPath(p, base);
  return typeof p === 'string' && abs !== p && isRepoId(p) && !existsSync(abs as string) ? p : abs;
}

function absPath(p: unknown, base: string): unknown {
  return typeof p === 'string' &&
    p !== '' &&
    !p.startsWith(BUILTIN_PREFIX) &&
    !p.startsWith(ROWS_PREFIX) &&
    !isAbsolute(p)
    ? resolve(base, p)
    : p;
}

/** Resolves the file-valued fields of a raw (unvalidated) config against `base`, in place. */
function resolvePaths(o: Record<string, unknown>, base: string): void {
  o.model_name_or_path = modelPath(o.model_name_or_path, base);
  if (o.model_name_or_path === undefined) delete o.model_name_or_path;
  if (typeof o.value_model_path === 'string') o.value_model_path = absPath(o.value_model_path, base);
  if (isPlainObject(o.dataset) && o.dataset.path !== undefined) o.dataset.path = absPath(o.dataset.path, base);
  if (Array.isArray(o.reward_funcs)) {
    for (const r of o.reward_funcs) if (isPlainObject(r) && r.path !== undefined) r.path = absPath(r.path, base);
  }
}

/** A `--set` value for a path field is relative to the working directory. */
function resolveSetPath(key: string[], value: unknown): unknown {
  const k = key.join('.');
  const cwd = process.cwd();
  if (k === 'model_name_or_path') return modelPath(value, cwd);
  if (k === 'value_model_path' || k === 'dataset.path' || /^reward_funcs\.\d+\.path$/.test(k))
    return absPath(value, cwd);
  if (k === 'dataset' && isPlainObject(value)) return { ...value, path: absPath(value.path, cwd) };
  if (k === 'reward_funcs' && Array.isArray(value))
    return value.map((r) => (isPlainObject(r) ? { ...r, path: absPath(r.path, cwd) } : r));
  return value;
}

function assign(o: Record<string, unknown>, key: string[], value: unknown): void {
  let cur: unknown = o;
  for (let i = 0; i < key.length - 1; i++) {
    const k = key[i]!;
    const c = cur as Record<string, unknown>;
    if (Array.isArray(c) && !/^\d+$/.test(k))
      throw new ConfigError(`${key.slice(0, i).join('.')} is a list; index it with a number`);
    if (c[k] === undefined || c[k] === null) c[k] = /^\d+$/.test(key[i + 1]!) ? [] : {};
    else if (typeof c[k] !== 'object')
      throw new ConfigError(`${key.slice(0, i + 1).join('.')} is ${describeValue(c[k])}, not a mapping`);
    cur = c[k];
  }
  (cur as Record<string, unknown>)[key[key.length - 1]!] = value;
}

function lookup(o: unknown, path: PropertyKey[]): unknown {
  let cur = o;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (Array.isArray(v)) return v.length > 4 ? `a list of ${v.length}` : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return 'a mapping';
  return String(v);
}

function dedupe(lines: string[]): string[] {
  return [...new Set(lines)];
}
