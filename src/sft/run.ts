/**
 * @module sft/run
 * A whole SFT run from a validated recipe (what `gpg-rl sft` does): model (HF folder or
 * builtin:tiny / builtin:demo), (prompt, completion) pairs from the dataset, sftTrain, the loss
 * curve in <output_dir>/sft_log.jsonl and the HF model folder in <output_dir>/model. A failed
 * run leaves no output folder behind.
 */
import { Pace, timingText } from '../io/progress.ts';
import { resolveModelPath } from '../model/hub.ts';
import { appendFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { CausalLM } from '../model/decoder.ts';
import { applyLora, loadBaseModel, saveAdapter } from '../model/lora.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { saveModelFolder } from '../model/folder.ts';
import { readGenerationConfig, type GenerationDefaults } from '../model/config.ts';
import { specialTokens } from '../model/special.ts';
import { loadDataset } from '../data/dataset.ts';
import { fillTemplate } from '../data/prompts.ts';
import { builtinDataset, builtinModel, isBuiltin } from '../builtin/index.ts';
import { setNumThreads } from '../backend/index.ts';
import { sftTrain, type SftPair } from './sft.ts';
import type { SftConfig } from './config.ts';
import { ensureDir } from '../io/fs.ts';

export interface SftRunSummary {
  output_dir: string;
  model_dir: string;
  steps: number;
  first_loss: number | undefined;
  final_loss: number | undefined;
  seconds: number;
}

export async function runSft(
  cfg: SftConfig,
  log: (line: string) => void = (s) => process.stderr.write(s + '\n'),
): Promise<SftRunSummary> {
  if (cfg.threads > 0) setNumThreads(cfg.threads);
  const out = resolve(cfg.output_dir);
  if (existsSync(out) && readdirSync(out).length > 0)
    throw new ConfigError(
      `output_dir ${cfg.output_dir} already exists and is not empty; choose another (--set output_dir=runs/sft2)`,
    );

  // model + tokenizer
  let model: CausalLM;
  let tokenizer: TextTokenizer;
  let extraFiles: Record<string, string> | undefined;
  let tokenizerFrom: string | undefined;
  let generation: GenerationDefaults | null;
  if (isBuiltin(cfg.model_name_or_path)) {
    const b = builtinModel(
      cfg.model_name_or_path,
      cfg.seed,
      ['builtin:tiny', 'builtin:demo'],
      ['builtin:tiny', 'builtin:demo'],
    );
    ({ model, tokenizer, generation } = b);
    extraFiles = b.tokenizerFiles;
  } else {
    const dir = resolveModelPath(cfg.model_name_or_path, { what: 'model_name_or_path' }); // folder or hub cache
    model = cfg.use_peft ? loadBaseModel(dir, cfg.lora_base_dtype) : CausalLM.load(dir);
    tokenizer = TextTokenizer.fromDir(dir);
    tokenizerFrom = dir;
    generation = readGenerationConfig(dir, model.cfg);
  }
  if (cfg.use_peft)
    applyLora(model, {
      r: cfg.lora_r,
      alpha: cfg.lora_alpha,
      dropout: cfg.lora_dropout,
      targetModules: cfg.lora_target_modules ?? undefined,
      useRslora: cfg.use_rslora,
      seed: cfg.seed,
      baseDtype: cfg.lora_base_dtype,
    });
  const { eosTokenId: eos, padTokenId } = specialTokens(model.cfg, tokenizer, generation, cfg.model_name_or_path);

  // data: (prompt, completion) text pairs → token ids
  let pairs: Array<{ prompt: string; completion: string }>;
  const ds = cfg.dataset;
  if (isBuiltin(ds.path)) {
    pairs = builtinDataset(ds.path, cfg.seed, ds.limit ?? 20000).map((r) => ({
      prompt: r.prompt,
      completion: String(r.fields[ds.completion_field] ?? ''),
    }));
  } else {
    const loaded = await loadDataset({
      path: ds.path,
      promptField: ds.prompt_field,
      answerField: ds.completion_field,
      answerExtraction: 'none',
      limit: ds.limit ?? undefined,
    });
    pairs = loaded.rows.map((r) => ({ prompt: r.prompt, completion: r.answer ?? '' }));
  }
  pairs = pairs.filter((x) => x.completion.length > 0);
  if (pairs.length === 0)
    throw new ConfigError(`dataset.path ${ds.path}: no row has a non-empty ${ds.completion_field}`);
  const tok: SftPair[] = pairs.map((x) => ({
    prompt: tokenizer.encode(ds.prompt_template ? fillTemplate(ds.prompt_template, x.prompt) : x.prompt, {
      addSpecialTokens: false,
    }),
    completion: [...tokenizer.encode(x.completion, { addSpecialTokens: false }), eos],
  }));

  ensureDir(out, `output_dir ${out}`); // one clear line for an unwritable folder (never a hang under /proc)
  const logPath = join(out, 'sft_log.jsonl');
  try {
    let cursor = 0;
    const order = tok.map((_, i) => i);
    const pace = new Pace(cfg.max_steps);
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
        gradientCheckpointing: cfg.gradient_checkpointing,
        seed: cfg.seed,
        padTokenId,
        onStep: (step, loss) => {
          appendFileSync(logPath, JSON.stringify({ step, loss }) + '\n');
          if (step % cfg.logging_steps === 0 || step === cfg.max_steps)
            log(`sft step ${step}/${cfg.max_steps}: loss ${loss.toFixed(4)}, ${timingText(pace.at(step))}`);
        },
      },
    );
    if (model.lora)
      saveAdapter(join(out, 'model'), model, {
        baseModelNameOrPath: cfg.model_name_or_path,
        tokenizerFrom,
        extraFiles,
      });
    else
      saveModelFolder(join(out, 'model'), model.cfg, model.streamed(), {
        generation: generation ?? undefined,
        tokenizerFrom,
        extraFiles,
      });
    return {
      output_dir: out,
      model_dir: join(out, 'model'),
      steps: res.steps,
      first_loss: res.losses[0],
      final_loss: res.losses.at(-1),
      seconds: res.seconds,
    };
  } catch (e) {
    rmSync(out, { recursive: true, force: true });
    throw e;
  } finally {
    model.dispose();
  }
}
