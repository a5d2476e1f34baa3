/**
 * @module builtin
 * `builtin:` names usable in recipes so the demo runs on a fresh clone with nothing prepared:
 *   model_name_or_path: builtin:tiny        a small character-level Qwen2 made like `gpg-rl init-model --char-vocab`
 *   model_name_or_path: builtin:demo-warmstart  the demo's SFT warm start (seed 0), from the cache
 *                       (~/.cache/gpg-rl) or built there first (a few minutes on 2 cores)
 *   dataset.path:       builtin:arithmetic  generated multi-step arithmetic (src/data/arith.ts), level 2;
 *                       builtin:arithmetic-<level> for another difficulty
 */
import { ConfigError } from '../errors.ts';
import { CausalLM } from '../model/decoder.ts';
import { initModel, tokenizerFiles } from '../model/init.ts';
import type { GenerationDefaults } from '../model/config.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';
import { DEMO_SHAPE, WARMSTART, defaultCacheDir, warmStart } from './warmstart.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { arithRows, trainStream, DEFAULT_ARITH_LEVEL } from '../data/arith.ts';
import type { PromptRow } from '../data/dataset.ts';

export const BUILTIN = 'builtin:';

/** Shape of `builtin:tiny` (≈0.8M parameters; HF config.json field names). */
export const TINY_SHAPE = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  max_position_embeddings: 256,
};

export function isBuiltin(s: string): boolean {
  return s.startsWith(BUILTIN);
}

export interface BuiltModel {
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** Files a saved copy needs (tokenizer.json, tokenizer_config.json) when there is no source folder. */
  tokenizerFiles: Record<string, string>;
  generation: GenerationDefaults | null;
}

/** Like builtinModel, also for `builtin:demo-warmstart` (whose folder is returned as `dir`). */
export async function resolveBuiltinModel(
  name: string,
  seed: number,
  log: (s: string) => void,
): Promise<BuiltModel & { dir?: string }> {
  if (name !== 'builtin:demo-warmstart') return builtinModel(name, seed);
  const pool = new VerifierPool({ timeoutMs: 2000 });
  try {
    const ws = await warmStart(0, { cacheDir: defaultCacheDir(), warm: WARMSTART, log, pool });
    return { model: ws.model, tokenizer: ws.tokenizer, tokenizerFiles: {}, generation: null, dir: ws.dir };
  } finally {
    await pool.close();
  }
}

/** Randomly initialised built-in shapes: `builtin:tiny` (recipes, tests) and `builtin:demo` (the demo's shape, for SFT from scratch). */
export const BUILTIN_SHAPES: Record<string, Record<string, unknown>> = {
  'builtin:tiny': TINY_SHAPE,
  'builtin:demo': DEMO_SHAPE,
};

/**
 * A randomly initialised built-in model. `allowed` lists the names this caller accepts (RL recipes:
 * builtin:tiny; SFT: builtin:tiny and builtin:demo); `listed` is what the error offers.
 */
export function builtinModel(
  name: string,
  seed: number,
  allowed: readonly string[] = ['builtin:tiny'],
  listed: readonly string[] = ['builtin:tiny', 'builtin:demo-warmstart'],
): BuiltModel {
  const shape = allowed.includes(name) ? BUILTIN_SHAPES[name] : undefined;
  if (!shape)
    throw new ConfigError(`model_name_or_path: unknown built-in model "${name}" (available: ${listed.join(', ')})`);
  const r = initModel(shape, { seed, charVocab: true, source: name });
  const tok = r.tokenizer!;
  return {
    model: CausalLM.fromHost(r.cfg, r.tensors),
    tokenizer: TextTokenizer.fromJson(tok.tokenizerJson, tok.tokenizerConfig),
    tokenizerFiles: tokenizerFiles(tok),
    generation: r.generation,
  };
}

/** Training rows of a built-in dataset (train split only; the held-out problems never appear). */
export function builtinDataset(name: string, seed: number, n = 20000): PromptRow[] {
  const m = /^builtin:arithmetic(?:-(\d))?$/.exec(name);
  if (!m)
    throw new ConfigError(
      `dataset.path: unknown built-in dataset "${name}" (available: builtin:arithmetic, builtin:arithmetic-<level 1..4>)`,
    );
  const level = m[1] ? Number(m[1]) : DEFAULT_ARITH_LEVEL;
  const next = trainStream(seed, level);
  return arithRows(Array.from({ length: n }, () => next()));
}
