/**
 * @module model/folder
 * A Hugging Face model folder's weights in and out as plain float32 arrays keyed by HF tensor
 * name: `model.safetensors`, or shards `model-0000i-of-0000N.safetensors` with
 * `model.safetensors.index.json` (`{ metadata: { total_size }, weight_map: { name: file } }`,
 * the layout of transformers' `save_pretrained`). Loading checks every `parameterNames(cfg)`
 * entry is present with the right shape; saving writes config.json, generation_config.json,
 * weights and tokenizer files into a temp folder beside the target and renames it into place.
 * Saving streams: each tensor goes to disk a piece at a time, from host values or straight from a
 * backend tensor (StreamedTensor), so a save never holds a second copy of the model on the host.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ModelLoadError, SafetensorsError } from '../errors.ts';
import { modelConfigToJson, parameterNames, type GenerationDefaults, type ModelConfig } from './config.ts';
import {
  readSafetensorsFile,
  streamFloat32,
  toFloat32,
  writeSafetensorsFile,
  ST_ITEMSIZE,
  type StSource,
} from './safetensors.ts';
import { replaceDirAtomic, writeFileAtomic } from '../io/atomic.ts';

/** A parameter as the model layer sees it: HF shape and float32 values (row-major). */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * A parameter read a range at a time (a backend tensor: `Tensor.readFloat32`), so that saving
 * streams it to disk through a small host buffer instead of copying it whole to the host.
 */
export interface StreamedTensor {
  shape: number[];
  read(offset: number, count: number): Float32Array;
}

/** What the savers take per tensor: host values, or a tensor read piece by piece. */
export type SaveTensor = HostTensor | StreamedTensor;

/** What streams from a backend: a Tensor's shape and ranged reads. */
export interface ReadableTensor {
  readonly shape: readonly number[];
  readFloat32(offset: number, count: number): Float32Array;
}

/** A Tensor as a StreamedTensor. */
export function streamed(t: ReadableTensor): StreamedTensor {
  return { shape: [...t.shape], read: (offset, count) => t.readFloat32(offset, count) };
}

/** A Tensor as a safetensors entry written a piece at a time (F32 unless `dtype`). */
export function tensorSource(t: ReadableTensor, dtype: 'F32' | 'BF16' | 'F16' = 'F32'): StSource {
  return streamFloat32((offset, count) => t.readFloat32(offset, count), [...t.shape], dtype);
}

/** The values of a SaveTensor, `[offset, offset + count)` (a host tensor's is a view, no copy). */
export function readRange(t: SaveTensor): (offset: number, count: number) => Float32Array {
  if ('data' in t) return (offset, count) => t.data.subarray(offset, offset + count);
  return (offset, count) => t.read(offset, count);
}

/** The number of values of a SaveTensor. */
function sizeOf(t: SaveTensor): number {
  return 'data' in t ? t.data.length : t.shape.reduce((a, b) => a * b, 1);
}

export interface SaveOptions {
  /** Weight dtype on disk (default F32; F32 round-trips bit-exactly). */
  dtype?: 'F32' | 'BF16' | 'F16';
  /** Shard above this many bytes, like transformers' `max_shard_size` (default 5 GB). */
  maxShardBytes?: number;
  /** Written as generation_config.json (default: ids from the config). */
  generation?: GenerationDefaults;
  /** A folder to copy tokenizer files from (those of TOKENIZER_FILES that exist). */
  tokenizerFrom?: string;
  /** Extra files written into the folder: plain file name → text content. */
  extraFiles?: Record<string, string>;
}

/** Tokenizer files transformers writes beside a model; copied when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
];

export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** Buffers registered by HF modules that older checkpoints sometimes carry; never parameters. */
function isIgnorable(name: string, cfg: ModelConfig): boolean {
  return name.endsWith('rotary_emb.inv_freq') || (cfg.tieWordEmbeddings && name === 'lm_head.weight');
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The list of (shard file, names) to read: single file or an index. */
function weightFiles(dir: string): Array<{ file: string; names: string[] | null }> {
  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(indexPath)) {
    let idx: unknown;
    try {
      idx = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new ModelLoadError(`${indexPath}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    const wm = (idx as { weight_map?: unknown } | null)?.weight_map;
    if (wm === null || typeof wm !== 'object' || Array.isArray(wm))
      throw new ModelLoadError(`${indexPath}: missing "weight_map" object (tensor name → shard file)`);
    const byFile = new Map<string, string[]>();
    for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
      // Untrusted: a shard must be a plain file name inside the folder.
      if (
        typeof file !== 'string' ||
        file !== basename(file) ||
        file === '..' ||
        file === '.' ||
        !file.endsWith('.safetensors')
      ) {
        throw new ModelLoadError(
          `${indexPath}: weight_map["${name}"] = ${JSON.stringify(file)} is not a .safetensors file name in the folder`,
        );
      }
      (byFile.get(file) ?? byFile.set(file, []).get(file)!).push(name);
    }
    return [...byFile.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([f, names]) => ({ file: join(dir, f), names }));
  }
  if (existsSync(single)) return [{ file: single, names: null }];
  throw new ModelLoadError(
    `${dir}: no model.safetensors or model.safetensors.index.json (only safetensors weights are supported; convert .bin/.pt checkpoints with transformers' save_pretrained(safe_serialization=True))`,
  );
}

/**
 * Loads every parameter of `cfg` from the folder as float32 (F32/BF16/F16/F64 on disk).
 * Errors name the missing, mis-shaped or unexpected tensor. With `onTensor`, each tensor is
 * handed over as soon as it is read and not kept (the returned map stays empty), so at most one
 * shard's file and one tensor's float32 copy are in memory at once.
 */
export function loadModelTensors(
  dir: string,
  cfg: ModelConfig,
  opts: {
    onTensor?: (name: string, t: HostTensor) => void;
    /** Tensors beyond the decoder's that may be present (name → shape; e.g. a value head's `score.weight`). */
    optional?: Readonly<Record<string, readonly number[]>>;
  } = {},
): Map<string, HostTensor> {
  const optional = new Map(Object.entries(opts.optional ?? {}));
  const expected = new Map<string, readonly number[]>(parameterNames(cfg).map((p) => [p.name, p.shape]));
  for (const [name, shape] of optional) expected.set(name, shape);
  const out = new Map<string, HostTensor>();
  const seen = new Set<string>();
  const unexpected: string[] = [];
  for (const { file, names } of weightFiles(dir)) {
    if (!existsSync(file)) throw new ModelLoadError(`${file}: shard listed in model.safetensors.index.json is missing`);
    const { tensors } = readSafetensorsFile(file);
    if (names) {
      const missing = names.find((n) => !tensors.has(n));
      if (missing !== undefined)
        throw new ModelLoadError(
          `${file}: tensor "${missing}" is listed in model.safetensors.index.json but not in the shard`,
        );
    }
    for (const [name, t] of tensors) {
      const shape = expected.get(name);
      if (!shape) {
        if (!isIgnorable(name, cfg)) unexpected.push(name);
        continue;
      }
      if (seen.has(name)) throw new ModelLoadError(`${file}: tensor "${name}" appears in more than one shard`);
      if (!sameShape(t.shape, shape)) {
        throw new ModelLoadError(
          `${file}: tensor "${name}" has shape [${t.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`,
        );
      }
      if (t.dtype !== 'F32' && t.dtype !== 'BF16' && t.dtype !== 'F16' && t.dtype !== 'F64') {
        throw new ModelLoadError(
          `${file}: tensor "${name}" has dtype ${t.dtype}; weights must be F32, BF16, F16 or F64 (quantized checkpoints are not supported)`,
        );
      }
      seen.add(name);
      if (opts.onTensor) opts.onTensor(name, { shape: t.shape.slice(), data: toFloat32(t) });
      else out.set(name, { shape: t.shape.slice(), data: toFloat32(t) });
    }
  }
  if (unexpected.length) {
    throw new ModelLoadError(
      `${dir}: unexpected tensors for ${cfg.architecture} (${unexpected.length}): ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', ...' : ''}; the weights do not match config.json`,
    );
  }
  for (const name of expected.keys()) {
    if (!seen.has(name) && !optional.has(name))
      throw new ModelLoadError(
        `${dir}: missing tensor "${name}" required by config.json (${cfg.architecture}, ${cfg.numLayers} layers${cfg.tieWordEmbeddings ? ', tied' : ', untied'} embeddings)`,
      );
  }
  return out;
}

function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

function generationJson(gen: GenerationDefaults): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(gen.raw);
  const ids = gen.eosTokenIds;
  out['bos_token_id'] = gen.bosTokenId;
  out['eos_token_id'] = ids.length === 0 ? null : ids.length === 1 ? ids[0] : ids.slice();
  out['pad_token_id'] = gen.padTokenId;
  if (gen.doSample !== undefined) out['do_sample'] = gen.doSample;
  if (gen.temperature !== undefined) out['temperature'] = gen.temperature;
  if (gen.topP !== undefined) out['top_p'] = gen.topP;
  if (gen.topK !== undefined) out['top_k'] = gen.topK;
  if (gen.maxNewTokens !== undefined) out['max_new_tokens'] = gen.maxNewTokens;
  return out;
}

function json(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

/**
 * Writes a complete HF model folder at `dir`. Everything goes into a temp folder beside `dir`
 * first; only when it is complete is an existing `dir` moved aside and the new one renamed in.
 */
export function saveModelFolder(
  dir: string,
  cfg: ModelConfig,
  tensors: Map<string, SaveTensor>,
  opts: SaveOptions = {},
): void {
  const dtype = opts.dtype ?? 'F32';
  const maxShard = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShard > 0)) throw new ModelLoadError(`saveModelFolder: maxShardBytes must be > 0 (got ${maxShard})`);
  // Validate everything before touching the disk.
  const params = parameterNames(cfg);
  const known = new Set(params.map((p) => p.name));
  for (const name of tensors.keys()) {
    if (!known.has(name) && !isIgnorable(name, cfg))
      throw new ModelLoadError(
        `saveModelFolder: tensor "${name}" is not a parameter of ${cfg.architecture} with this config`,
      );
  }
  for (const { name, shape } of params) {
    const t = tensors.get(name);
    if (!t) throw new ModelLoadError(`saveModelFolder: missing tensor "${name}"`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!sameShape(t.shape, shape) || sizeOf(t) !== n)
      throw new ModelLoadError(
        `saveModelFolder: tensor "${name}" has shape [${t.shape.join(', ')}] (${sizeOf(t)} values) but the config needs [${shape.join(', ')}]`,
      );
  }
  for (const f of Object.keys(opts.extraFiles ?? {})) {
    if (f !== basename(f) || f === '.' || f === '..' || f === '')
      throw new ModelLoadError(`saveModelFolder: extra file name ${JSON.stringify(f)} must be a plain file name`);
  }
  if (opts.tokenizerFrom !== undefined && !existsSync(opts.tokenizerFrom))
    throw new ModelLoadError(`saveModelFolder: tokenizer folder ${opts.tokenizerFrom} does not exist`);

  const target = resolve(dir);
  try {
    replaceDirAtomic(target, (tmp) => {
      // 1) weights: greedy sharding in parameter order, as transformers' shard_checkpoint does.
      const item = ST_ITEMSIZE[dtype];
      const shards: Array<Array<{ name: string; shape: number[] }>> = [[]];
      let cur = 0;
      let total = 0;
      for (const p of params) {
        const bytes = p.shape.reduce((a, b) => a * b, 1) * item;
        if (cur + bytes > maxShard && shards[shards.length - 1]!.length > 0) {
          shards.push([]);
          cur = 0;
        }
        shards[shards.length - 1]!.push(p);
        cur += bytes;
        total += bytes;
      }
      // each tensor streamed to its shard a piece at a time: no shard-sized host buffer
      const encode = (list: Array<{ name: string; shape: number[] }>): Map<string, StSource> =>
        new Map(list.map(({ name, shape }) => [name, streamFloat32(readRange(tensors.get(name)!), shape, dtype)]));
      if (shards.length === 1) {
        writeSafetensorsFile(join(tmp, 'model.safetensors'), encode(shards[0]!));
      } else {
        const weightMap: Record<string, string> = {};
        shards.forEach((list, i) => {
          const file = shardName(i, shards.length);
          writeSafetensorsFile(join(tmp, file), encode(list));
          for (const p of list) weightMap[p.name] = file;
        });
        const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
        writeFileAtomic(
          join(tmp, 'model.safetensors.index.json'),
          json({ metadata: { total_size: total }, weight_map: sorted }),
        );
      }
      // 2) configs
      writeFileAtomic(join(tmp, 'config.json'), json(modelConfigToJson(cfg, dtype)));
      const gen = opts.generation ?? {
        eosTokenIds: cfg.eosTokenIds,
        padTokenId: cfg.padTokenId,
        bosTokenId: cfg.bosTokenId,
        raw: {},
      };
      writeFileAtomic(join(tmp, 'generation_config.json'), json(generationJson(gen)));
      // 3) tokenizer files and extras
      if (opts.tokenizerFrom !== undefined) {
        for (const f of TOKENIZER_FILES) {
          const src = join(opts.tokenizerFrom, f);
          if (existsSync(src) && statSync(src).isFile()) copyFileSync(src, join(tmp, f));
        }
      }
      for (const [f, text] of Object.entries(opts.extraFiles ?? {})) writeFileAtomic(join(tmp, f), text);
    });
  } catch (e) {
    if (e instanceof ModelLoadError || e instanceof SafetensorsError) throw e;
    throw new ModelLoadError(
      `saveModelFolder: cannot write ${target} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}
