/**
 * @module rl/setup
 * Everything a training run needs, built and validated before the run folder is touched (bad
 * input leaves nothing behind): the model and tokenizer (HF folder, built-in, or passed in), the
 * eos / pad rule, the prompts (rendered, tokenized, length-filtered), the reward functions (with
 * the verifier's worker pool when a built-in maths reward needs it) and the step counts.
 */
import { resolve } from 'node:path';
import { resolveModelPath } from '../model/hub.ts';
import { CausalLM } from '../model/decoder.ts';
import { applyLora, loadBaseModel } from '../model/lora.ts';
import { readGenerationConfig, type GenerationDefaults } from '../model/config.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { specialTokens } from '../model/special.ts';
import { loadDataset, type PromptRow } from '../data/dataset.ts';
import { buildMessages, renderPrompt } from '../data/prompts.ts';
import { resolveRewards, type NamedReward, type RewardFn } from '../rewards/index.ts';
import { VerifierPool, anchoredVerifier } from '../rewards/math-verify/pool.ts';
import { builtinDataset, isBuiltin, resolveBuiltinModel } from '../builtin/index.ts';
import { ConfigError } from '../errors.ts';
import { rewardFuncName, type TrainConfig } from './config.ts';
import type { TrainRow } from './rollout.ts';

/** What the caller may pass instead of names in the config (train()'s options). */
export interface SetupInputs {
  rewardFns?: Record<string, RewardFn> | NamedReward[];
  baseDir?: string;
  dryRun?: boolean;
  model?: CausalLM;
  tokenizer?: TextTokenizer;
  modelDir?: string;
  rows?: PromptRow[];
}

export interface RunSetup {
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** The HF folder the model came from (tokenizer and generation config are copied from it), if any. */
  modelSourceDir: string | null;
  /** The name a saved adapter records as its base: the hub repo id when the model came from the hub cache, else the folder. */
  baseModelName: string | null;
  /** Tokenizer files to write into saved models when there is no source folder (built-in models). */
  tokenizerFiles: Record<string, string> | undefined;
  generation: GenerationDefaults | null;
  eosTokenIds: number[];
  padTokenId: number;
  rows: TrainRow[];
  /** Prompts over max_prompt_length, and rows dropped at load (per reason). */
  tooLong: number;
  dropped: Record<string, number>;
  rawRowCount: number;
  rewards: NamedReward[];
  /** The maths verifier's worker pool (close it when the run ends), or null. */
  verifier: VerifierPool | null;
  totalSteps: number;
  promptsPerStep: number;
}

export async function prepareRun(cfg: TrainConfig, opts: SetupInputs, log: (s: string) => void): Promise<RunSetup> {
  const G = cfg.num_generations;
  const promptsPerStep = (cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps) / G;

  // model and tokenizer
  let model: CausalLM;
  let tokenizer: TextTokenizer;
  let modelSourceDir: string | null = null;
  let fromHub = false; // model_name_or_path is a repo id found in the hub cache
  let tokenizerFiles: Record<string, string> | undefined;
  if (opts.model && opts.tokenizer) {
    model = opts.model;
    tokenizer = opts.tokenizer;
    modelSourceDir = opts.modelDir ?? null;
  } else if (isBuiltin(cfg.model_name_or_path)) {
    // a dry run validates with the tiny model (same tokenizer) instead of building the warm start
    const name =
      opts.dryRun && cfg.model_name_or_path === 'builtin:demo-warmstart' ? 'builtin:tiny' : cfg.model_name_or_path;
    const b = await resolveBuiltinModel(name, cfg.seed, log);
    ({ model, tokenizer } = b);
    tokenizerFiles = b.dir ? undefined : b.tokenizerFiles;
    modelSourceDir = b.dir ?? null;
  } else {
    modelSourceDir = resolveModelPath(cfg.model_name_or_path, { what: 'model_name_or_path' });
    fromHub = modelSourceDir !== cfg.model_name_or_path;
    // a LoRA run loads the frozen base straight into its storage dtype (no fp32 copy of a bf16 base)
    model = cfg.use_peft ? loadBaseModel(modelSourceDir, cfg.lora_base_dtype) : CausalLM.load(modelSourceDir);
    tokenizer = TextTokenizer.fromDir(modelSourceDir);
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
  const generation = modelSourceDir ? readGenerationConfig(modelSourceDir, model.cfg) : null;
  const { eosTokenIds, padTokenId } = specialTokens(model.cfg, tokenizer, generation, cfg.model_name_or_path);

  // prompts: load, render (chat template or raw template), tokenize, length filter
  const ds = cfg.dataset;
  let rawRows: PromptRow[];
  let dropped: Record<string, number> = {};
  if (opts.rows) rawRows = opts.rows;
  else if (isBuiltin(ds.path)) rawRows = builtinDataset(ds.path, cfg.seed);
  else {
    const loaded = await loadDataset({
      path: ds.path,
      format: ds.format as 'auto',
      promptField: ds.prompt_field,
      answerField: ds.answer_field,
      answerExtraction: ds.answer_extraction,
      limit: ds.limit ?? undefined,
    });
    rawRows = loaded.rows;
    dropped = { ...loaded.dropped };
  }
  const rows: TrainRow[] = [];
  let tooLong = 0;
  for (const r of rawRows) {
    const messages = buildMessages(r, {
      systemPrompt: ds.system_prompt ?? undefined,
      promptTemplate: ds.prompt_template ?? undefined,
    });
    const text = renderPrompt(messages, tokenizer, { useChatTemplate: ds.use_chat_template });
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    if (ids.length === 0 || ids.length > cfg.max_prompt_length) {
      tooLong++;
      continue;
    }
    rows.push({ ...r, text, ids });
  }
  if (rows.length === 0) {
    const read = rawRows.length + (dropped.missingPrompt ?? 0) + (dropped.unparsableAnswer ?? 0);
    const why = [
      dropped.missingPrompt ? `${dropped.missingPrompt} with an empty or null '${ds.prompt_field}'` : '',
      dropped.unparsableAnswer
        ? `${dropped.unparsableAnswer} whose '${ds.answer_field}' gives no gold answer (answer_extraction ${ds.answer_extraction})`
        : '',
      `${tooLong} longer than max_prompt_length ${cfg.max_prompt_length}`,
    ].filter(Boolean);
    throw new ConfigError(
      `dataset ${ds.path}: no usable prompt among ${read} rows read (${why.join(', ')}); check dataset.prompt_field / answer_field, or raise max_prompt_length`,
    );
  }

  // rewards (the verifier pool is closed again if they cannot be resolved)
  const needsVerifier = cfg.reward_funcs.some((r) => r === 'accuracy' || r === 'cosine');
  const verifier = needsVerifier && !opts.rewardFns ? new VerifierPool({ timeoutMs: 2000 }) : null;
  let rewards: NamedReward[];
  try {
    rewards = await resolveRunRewards(cfg, opts, verifier);
  } catch (e) {
    await verifier?.close();
    throw e;
  }
  const totalSteps =
    cfg.max_steps > 0 ? cfg.max_steps : Math.max(1, Math.ceil((cfg.num_train_epochs * rows.length) / promptsPerStep));
  return {
    model,
    tokenizer,
    modelSourceDir,
    baseModelName: fromHub ? cfg.model_name_or_path : modelSourceDir !== null ? resolve(modelSourceDir) : null,
    tokenizerFiles,
    generation,
    eosTokenIds,
    padTokenId,
    rows,
    tooLong,
    dropped,
    rawRowCount: rawRows.length,
    rewards,
    verifier,
    totalSteps,
    promptsPerStep,
  };
}

/** Reward functions given in code (weights from reward_weights), or the recipe's reward_funcs. */
async function resolveRunRewards(
  cfg: TrainConfig,
  opts: SetupInputs,
  verifier: VerifierPool | null,
): Promise<NamedReward[]> {
  if (opts.rewardFns) {
    const list = Array.isArray(opts.rewardFns)
      ? opts.rewardFns
      : Object.entries(opts.rewardFns).map(([name, fn]) => ({ name, fn, weight: 1 }));
    const w = cfg.reward_weights;
    if (w && w.length !== list.length)
      throw new ConfigError(
        `reward_weights has ${w.length} entries but ${list.length} reward functions were passed to train()`,
      );
    return list.map((r, i) => ({ ...r, weight: w ? w[i]! : r.weight }));
  }
  return resolveRewards(
    cfg.reward_funcs.map((r) =>
      typeof r === 'string' ? r : { path: r.path, export: r.export, name: rewardFuncName(r) },
    ),
    cfg.reward_weights ?? undefined,
    {
      baseDir: opts.baseDir ?? process.cwd(),
      cosineMaxLen: cfg.cosine_max_len,
      cosine: {
        minValueCorrect: cfg.cosine_min_value_correct,
        maxValueCorrect: cfg.cosine_max_value_correct,
        minValueWrong: cfg.cosine_min_value_wrong,
        maxValueWrong: cfg.cosine_max_value_wrong,
        lengthUnit: cfg.cosine_length_unit,
      },
      formatPattern: cfg.format_pattern ?? undefined,
      // anchored extraction unless extract_without_anchor (the pool itself stays unanchored for eval_steps)
      verifier: verifier
        ? anchoredVerifier(verifier, { extract_without_anchor: cfg.extract_without_anchor })
        : undefined,
    },
  );
}
