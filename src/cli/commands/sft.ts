/**
 * @module cli/commands/sft
 * `gpg-rl sft RECIPE.yaml [--set key=value ...]`: supervised fine-tuning on prompt/solution
 * pairs (loss on solution tokens only); writes an HF model folder to <output_dir>/model and the
 * loss curve to <output_dir>/sft_log.jsonl.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from '../main.ts';
import { parseFlags, usageText, type FlagSpec } from '../options.ts';
import { UsageError, ConfigError } from '../../errors.ts';
import { loadSftRecipe } from '../../sft/config.ts';
import { sftTrain, type SftPair } from '../../sft/sft.ts';
import { CausalLM } from '../../model/decoder.ts';
import { TextTokenizer } from '../../model/tokenizer.ts';
import { initModel } from '../../model/init.ts';
import { saveModelFolder } from '../../model/folder.ts';
import { readGenerationConfig } from '../../model/config.ts';
import { loadDataset } from '../../data/dataset.ts';
import { fillTemplate } from '../../data/prompts.ts';
import { builtinDataset, TINY_SHAPE } from '../../rl/builtin.ts';
import { DEMO_SHAPE } from '../../demo/demo.ts';
import { setNumThreads } from '../../backend/index.ts';

const flags: Record<string, FlagSpec> = {
  set: { type: 'string', multiple: true, help: 'override a recipe field: --set max_steps=100' },
};

export const command: Command = {
  summary: 'supervised fine-tuning on prompt/solution pairs (warm start before RL)',
  usage: usageText('sft', 'RECIPE.yaml [--set key=value ...]', flags, 'Example: gpg-rl sft recipes/sft/arithmetic.yaml'),
  async run(argv) {
    const p = parseFlags('sft', argv, flags);
    if (p.positionals.length !== 1) throw new UsageError('`gpg-rl sft` needs exactly one recipe file, e.g. `gpg-rl sft recipes/sft/arithmetic.yaml`');
    const cfg = loadSftRecipe(p.positionals[0]!, (p.flags.set as string[] | undefined) ?? []);
    if (cfg.threads > 0) setNumThreads(cfg.threads);
    const out = resolve(cfg.output_dir);
    if (existsSync(out) && readdirSync(out).length > 0) throw new ConfigError(`output_dir ${cfg.output_dir} already exists and is not empty; choose another (--set output_dir=runs/sft2)`);

    // model + tokenizer
    let model: CausalLM;
    let tokenizer: TextTokenizer;
    let extraFiles: Record<string, string> | undefined;
    let tokenizerFrom: string | undefined;
    let generation;
    if (cfg.model_name_or_path === 'builtin:tiny' || cfg.model_name_or_path === 'builtin:demo') {
      const init = initModel(cfg.model_name_or_path === 'builtin:tiny' ? TINY_SHAPE : DEMO_SHAPE, { seed: cfg.seed, charVocab: true, source: cfg.model_name_or_path });
      model = CausalLM.fromHost(init.cfg, init.tensors);
      tokenizer = TextTokenizer.fromJson(init.tokenizer!.tokenizerJson, init.tokenizer!.tokenizerConfig);
      extraFiles = { 'tokenizer.json': JSON.stringify(init.tokenizer!.tokenizerJson, null, 2) + '\n', 'tokenizer_config.json': JSON.stringify(init.tokenizer!.tokenizerConfig, null, 2) + '\n' };
      generation = init.generation;
    } else if (cfg.model_name_or_path.startsWith('builtin:')) {
      throw new ConfigError(`model_name_or_path: unknown built-in model ${cfg.model_name_or_path} (builtin:tiny, builtin:demo)`);
    } else {
      model = CausalLM.load(cfg.model_name_or_path);
      tokenizer = TextTokenizer.fromDir(cfg.model_name_or_path);
      tokenizerFrom = cfg.model_name_or_path;
      generation = readGenerationConfig(cfg.model_name_or_path, model.cfg);
    }
    const eos = tokenizer.eosTokenId ?? model.cfg.eosTokenIds[0];
    if (eos === undefined) throw new ConfigError(`${cfg.model_name_or_path}: no eos token (tokenizer_config.json eos_token or config.json eos_token_id)`);

    // data: (prompt, completion) text pairs → token ids
    let pairs: Array<{ prompt: string; completion: string }>;
    const ds = cfg.dataset;
    if (ds.path.startsWith('builtin:')) {
      pairs = builtinDataset(ds.path, cfg.seed, ds.limit ?? 20000).map((r) => ({ prompt: r.prompt, completion: String(r.fields[ds.completion_field] ?? '') }));
    } else {
      const loaded = await loadDataset({ path: ds.path, promptField: ds.prompt_field, answerField: ds.completion_field, answerExtraction: 'none', limit: ds.limit ?? undefined });
      pairs = loaded.rows.map((r) => ({ prompt: r.prompt, completion: r.answer ?? '' }));
    }
    pairs = pairs.filter((x) => x.completion.length > 0);
    if (pairs.length === 0) throw new ConfigError(`dataset.path ${ds.path}: no row has a non-empty ${ds.completion_field}`);
    const tok: SftPair[] = pairs.map((x) => ({
      prompt: tokenizer.encode(ds.prompt_template ? fillTemplate(ds.prompt_template, x.prompt) : x.prompt, { addSpecialTokens: false }),
      completion: [...tokenizer.encode(x.completion, { addSpecialTokens: false }), eos],
    }));

    mkdirSync(out, { recursive: true });
    const logPath = join(out, 'sft_log.jsonl');
    try {
      let cursor = 0;
      const order = tok.map((_, i) => i);
      const res = await sftTrain(
        model,
        (rng) => {
          if (cursor % order.length === 0) rng.shuffle(order);
          return tok[order[cursor++ % order.length]!]!;
        },
        {
          learningRate: cfg.learning_rate,
          batchSize: cfg.per_device_train_batch_size,
          maxSteps: cfg.max_steps,
          warmupRatio: cfg.warmup_ratio,
          scheduler: cfg.lr_scheduler_type,
          weightDecay: cfg.weight_decay,
          maxGradNorm: cfg.max_grad_norm,
          seed: cfg.seed,
          padTokenId: tokenizer.padTokenId ?? eos,
          onStep: (step, loss) => {
            appendFileSync(logPath, JSON.stringify({ step, loss }) + '\n');
            if (step % cfg.logging_steps === 0 || step === cfg.max_steps) process.stderr.write(`sft step ${step}/${cfg.max_steps}: loss ${loss.toFixed(4)}\n`);
          },
        },
      );
      saveModelFolder(join(out, 'model'), model.cfg, model.toHost(), { generation, tokenizerFrom, extraFiles });
      process.stdout.write(JSON.stringify({ output_dir: out, model_dir: join(out, 'model'), steps: res.steps, first_loss: res.losses[0], final_loss: res.losses.at(-1), seconds: res.seconds }) + '\n');
      return 0;
    } catch (e) {
      rmSync(out, { recursive: true, force: true });
      throw e;
    }
  },
};
