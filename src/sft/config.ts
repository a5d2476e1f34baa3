/**
 * @module sft/config
 * The `gpg-rl sft` recipe: every field with its type, default and meaning, validated with zod;
 * each bad field is reported on its own line (`sft.yaml: learning_rate: …`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { ConfigError, ModelLoadError } from '../errors.ts';
import { isRepoId, resolveModelPath } from '../model/hub.ts';
import { parseSet } from '../rl/recipe.ts';
import { LORA_FIELDS } from '../rl/config.ts';

/** The trainer's LoRA fields (use_peft, lora_r, ...), same types, defaults and docs (rl/config.ts). */
const loraShape = Object.fromEntries(
  Object.entries(LORA_FIELDS).map(([k, f]) => [k, (f.schema as z.ZodType).default(f.default as never)]),
) as { [K in keyof typeof LORA_FIELDS]: z.ZodDefault<(typeof LORA_FIELDS)[K]['schema']> };

export const sftSchema = z.strictObject({
  /** HF model folder, a repo id in the local hub cache (model/hub.ts), or `builtin:tiny` / `builtin:demo` (a fresh character-level model of that shape). */
  model_name_or_path: z.string().min(1),
  dataset: z.strictObject({
    /** JSONL / JSON / Parquet file, or `builtin:arithmetic[-<level>]`. */
    path: z.string().min(1),
    prompt_field: z.string().min(1).default('prompt'),
    /** Row field with the target text (the loss is on these tokens and the eos only). */
    completion_field: z.string().min(1).default('solution'),
    /** `{prompt}` template applied to the prompt text (raw, no chat template). */
    prompt_template: z.string().nullable().default(null),
    limit: z.number().int().positive().nullable().default(null),
  }),
  output_dir: z.string().min(1).default('runs/sft'),
  learning_rate: z.number().positive().default(1e-3),
  per_device_train_batch_size: z.number().int().positive().default(32),
  max_steps: z.number().int().positive().default(500),
  lr_scheduler_type: z.enum(['constant', 'cosine', 'linear']).default('cosine'),
  warmup_ratio: z.number().min(0).lt(1).default(0.02),
  weight_decay: z.number().min(0).default(0),
  max_grad_norm: z.number().min(0).default(1.0),
  /** Activation checkpointing per decoder layer (HF/TRL name): same gradients, less memory, one more forward. */
  gradient_checkpointing: z.boolean().default(false),
  seed: z.number().int().min(0).default(0),
  threads: z.number().int().min(0).default(0),
  logging_steps: z.number().int().positive().default(25),
  /** LoRA instead of full fine-tuning: <output_dir>/model is then a PEFT adapter folder. */
  ...loraShape,
});
export type SftConfig = z.output<typeof sftSchema>;

/** Loads a YAML SFT recipe with --set overrides; relative paths resolve against the recipe's folder. */
export function loadSftRecipe(path: string, sets: string[] = []): SftConfig {
  if (!existsSync(path)) throw new ConfigError(`${path}: recipe not found`);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (e) {
    throw new ConfigError(`${path}: YAML syntax error: ${(e as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(`${path}: a recipe must be a YAML mapping of field: value`);
  const obj = raw as Record<string, unknown>;
  for (const s of sets) {
    let kv;
    try {
      kv = parseSet(s);
    } catch (e) {
      throw new ConfigError(`${path}: --set ${s}: ${(e as Error).message}`);
    }
    let o: Record<string, unknown> = obj;
    for (const k of kv.key.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
    o[kv.key.at(-1)!] = kv.value;
  }
  const r = sftSchema.safeParse(obj);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${path}: ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(
      lines.length === 1
        ? lines[0]!
        : `${path}: ${lines.length} invalid fields: ${lines.map((l) => l.slice(path.length + 2)).join('; ')}`,
    );
  }
  const cfg = r.data;
  const base = dirname(resolve(path));
  const fix = (p: string) => (p.startsWith('builtin:') || isAbsolute(p) ? p : resolve(base, p));
  const model = fix(cfg.model_name_or_path);
  // a relative folder is relative to the recipe; a repo id with no such folder stays as written (hub cache)
  if (!(model !== cfg.model_name_or_path && isRepoId(cfg.model_name_or_path) && !existsSync(model)))
    cfg.model_name_or_path = model;
  cfg.dataset.path = fix(cfg.dataset.path);
  if (!cfg.model_name_or_path.startsWith('builtin:')) {
    try {
      resolveModelPath(cfg.model_name_or_path);
    } catch (e) {
      if (e instanceof ModelLoadError) throw new ConfigError(`${path}: model_name_or_path: ${e.message}`);
      throw e;
    }
  }
  if (!cfg.dataset.path.startsWith('builtin:') && !existsSync(cfg.dataset.path))
    throw new ConfigError(`${path}: dataset.path: file ${cfg.dataset.path} does not exist`);
  return cfg;
}
