/**
 * @module cli/commands/eval
 * `gpg-rl eval --model DIR --benchmarks aime24,math500,amc23,minerva,olympiadbench [--samples k]
 * [--temperature T] [--max-new-tokens N] [--limit N] [--grader math-verify|qwen]
 * [--system-prompt S] [--seed N] [--out DIR] [--completions FILE]`: evaluates a model on the GPG
 * paper's benchmarks (or grades given completions, no model needed) and prints the table in the
 * paper's layout; `--out` writes results.jsonl and summary.json. Every input is checked before
 * the first token is generated, so bad input is one line on stderr, exit 1, and no output.
 */
import { specialTokens } from '../../model/special.ts';
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from '../main.ts';
import { intFlag, numberFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';
import { ModelLoadError, UsageError } from '../../errors.ts';
import { CausalLM } from '../../model/decoder.ts';
import { TextTokenizer } from '../../model/tokenizer.ts';
import { readGenerationConfig, readModelConfig } from '../../model/config.ts';
import { BENCHMARK_IDS, parseBenchmarkList } from '../../eval/benchmarks.ts';
import { readCompletionsFile } from '../../eval/completions.ts';
import {
  DEFAULT_MAX_NEW_TOKENS,
  DEFAULT_SYSTEM_PROMPT,
  evaluate,
  writeEvalOutputs,
  type EvalOptions,
} from '../../eval/evaluate.ts';

const FLAGS: Record<string, FlagSpec> = {
  model: {
    type: 'string',
    help: 'model folder (config.json, *.safetensors, tokenizer.json); optional with --completions',
  },
  benchmarks: {
    type: 'string',
    help: `comma-separated: ${BENCHMARK_IDS.join(',')} (default all; with --completions, those in the file)`,
  },
  samples: {
    type: 'string',
    help: 'completions per problem, k (default 1); pass@1 is averaged over them, pass@k unbiased',
  },
  temperature: { type: 'string', help: 'sampling temperature; 0 = greedy (default 0)' },
  'top-p': { type: 'string', help: 'nucleus sampling mass (default 1 = off)' },
  'max-new-tokens': { type: 'string', help: `tokens per completion (default ${DEFAULT_MAX_NEW_TOKENS})` },
  limit: { type: 'string', help: 'only the first N problems of each benchmark' },
  grader: { type: 'string', help: 'math-verify (default) or qwen (Qwen2.5-Math evaluation semantics)' },
  'system-prompt': {
    type: 'string',
    help: `system message ('' for none; default "${DEFAULT_SYSTEM_PROMPT.replace(/\\/g, '\\\\')}")`,
  },
  seed: { type: 'string', help: 'sampling seed (default 0)' },
  'batch-size': { type: 'string', help: 'sequences per generation batch (default 16)' },
  'timeout-ms': { type: 'string', help: 'verifier time limit per comparison in ms (default 5000)' },
  out: { type: 'string', help: 'folder for results.jsonl and summary.json' },
  completions: {
    type: 'string',
    help: 'JSONL of {"benchmark","index","completion"[,"sample"]} to grade instead of generating',
  },
};

export const command: Command = {
  summary: 'evaluate a model (or given completions) on AIME24, MATH-500, AMC23, Minerva, OlympiadBench',
  usage: usageText(
    'eval',
    '--model DIR [--benchmarks aime24,math500,...] [--samples k] [--temperature T] [--max-new-tokens N] [--limit N] [--out DIR] | --completions FILE',
    FLAGS,
    "Prints pass@1 (averaged over k samples) and pass@k per benchmark in the GPG paper's table layout. Data: ../shared/data, or $GPG_RL_DATA_DIR.",
  ),
  async run(argv: string[]): Promise<number> {
    const p = parseFlags('eval', argv, FLAGS);
    if (p.positionals.length)
      throw new UsageError(`unexpected argument "${p.positionals[0]}" for \`gpg-rl eval\`; see \`gpg-rl eval --help\``);
    const str = (k: string): string | undefined => p.flags[k] as string | undefined;
    const modelDir = str('model');
    const completionsFile = str('completions');
    if (!completionsFile && !modelDir)
      throw new UsageError('`gpg-rl eval` needs --model DIR (or --completions FILE to grade given completions)');
    const grader = str('grader') ?? 'math-verify';
    if (grader !== 'math-verify' && grader !== 'qwen')
      throw new UsageError(`--grader must be math-verify or qwen (got ${grader})`);
    const opts: EvalOptions = {
      grader,
      limit: p.flags['limit'] !== undefined ? intFlag(p, 'limit', 0, 1) : undefined,
      systemPrompt: str('system-prompt'),
      timeoutMs: intFlag(p, 'timeout-ms', 5000, 1),
      onProgress: (m) => process.stderr.write(m + '\n'),
    };
    if (str('benchmarks') !== undefined) opts.benchmarks = parseBenchmarkList(str('benchmarks')!);
    if (p.flags['samples'] !== undefined) opts.samples = intFlag(p, 'samples', 1, 1);
    const temperature = numberFlag(p, 'temperature', 0);
    if (temperature < 0) throw new UsageError(`--temperature must be ≥ 0 (got ${temperature}); 0 means greedy`);
    const topP = numberFlag(p, 'top-p', 1);
    if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1] (got ${topP})`);
    const maxNewTokens = intFlag(p, 'max-new-tokens', DEFAULT_MAX_NEW_TOKENS, 1);
    const seed = intFlag(p, 'seed', 0, 0);
    const batchSize = intFlag(p, 'batch-size', 16, 1);
    const out = str('out');
    if (out !== undefined && existsSync(out) && !statSync(out).isDirectory())
      throw new UsageError(
        `--out ${out}: exists and is not a folder; give a folder for results.jsonl and summary.json`,
      );

    let model: CausalLM | null = null;
    let tokenizer: TextTokenizer | null = null;
    if (modelDir !== undefined) {
      if (!existsSync(modelDir) || !statSync(modelDir).isDirectory())
        throw new ModelLoadError(
          `--model ${modelDir}: no such folder; give a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)`,
        );
      tokenizer = TextTokenizer.fromDir(modelDir);
      opts.modelName = basename(resolve(modelDir));
    } else opts.modelName = basename(completionsFile!);
    try {
      if (completionsFile !== undefined) {
        opts.completions = readCompletionsFile(completionsFile);
      } else {
        const cfg = readModelConfig(modelDir!);
        const gen = readGenerationConfig(modelDir!, cfg);
        Object.assign(opts, { temperature, topP, maxNewTokens, seed, batchSize });
        const special = specialTokens(cfg, tokenizer!, gen, modelDir!);
        opts.eosTokenIds = special.eosTokenIds;
        opts.padTokenId = special.padTokenId;
        model = CausalLM.load(modelDir!);
      }
      const result = await evaluate(model, tokenizer, opts);
      if (out !== undefined) {
        const files = writeEvalOutputs(out, result);
        process.stderr.write(`eval: wrote ${files.results} and ${files.summary}\n`);
      }
      process.stdout.write(result.table + '\n');
      const s = result.summary;
      const counts = Object.entries(s.benchmarks)
        .map(([id, b]) => `${id} ${b!.correct}/${b!.completions}`)
        .join(', ');
      process.stderr.write(
        `eval: ${counts}; verifier timeouts ${s.verifier.timeouts}, crashes ${s.verifier.crashes}; ${s.time_s.toFixed(1)} s\n`,
      );
      return 0;
    } finally {
      model?.dispose();
    }
  },
};
