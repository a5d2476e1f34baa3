/**
 * @module rl/trl
 * TRL's `GRPOConfig` (and the transformers `TrainingArguments` it extends) field by field: what
 * each one means here. The one table of TRL names outside `FIELDS` (config.ts); loss-type aliases
 * come from the algorithm registry (`LOSS_TYPE_ALIASES`). Every field is one of:
 *
 * - `ours`: a field of FIELDS with the same meaning (TRL's default noted where it differs);
 * - `map`: rewritten onto our fields (`eval_strategy: no` → `eval_steps: 0`, `bf16: null` → TRL's
 *   rule, `lr_scheduler_type: constant_with_warmup` → `constant`, …);
 * - `inert`: no effect here (hub, vLLM, DeepSpeed, dataloader knobs, …): accepted, with one warning
 *   when the value asks for something we do not do (`push_to_hub: true`);
 * - `refuse`: accepted at the value that matches what we do, else one line naming the field and
 *   why (`min_p`, `delta`, `sync_ref_model: true`, …).
 *
 * Two modes. In a plain recipe (`mode: 'recipe'`) the names are accepted where the meaning is ours
 * and our defaults stay. With `gpg-rl train --from-trl` (`mode: 'trl'`) the file is read as a TRL
 * config: TRL's defaults apply to fields it leaves out (loss_type dapo, beta 0, scale_rewards group,
 * bf16 on, logging_steps 10, …) and TRL's meanings replace ours (TRL's `dapo`/`bnpo` are only
 * token-level normalisation: no dynamic sampling, epsilon_high = epsilon). Each rewrite is recorded
 * for the printed mapping. Fields are from huggingface/trl `trl/trainer/grpo_config.py` +
 * `base_config.py` (1.x) and transformers `training_args.py` (5.x).
 */
import { ConfigError } from '../errors.ts';
import { LOSS_TYPE_ALIASES, LOSS_TYPES } from './algorithms/index.ts';
import { FIELDS } from './config.ts';

export type TrlMode = 'recipe' | 'trl';

/** The outcome of reading TRL names: our raw config, one-line warnings, and (trl mode) the mapping. */
export interface TrlTranslation {
  config: Record<string, unknown>;
  warnings: string[];
  mapping: string[];
  /** Problems, one line each, as `field: message` (the caller prefixes the source). */
  refused: { path: string; message: string }[];
}

interface Ctx {
  mode: TrlMode;
  /** the input, as written */
  input: Readonly<Record<string, unknown>>;
  out: Record<string, unknown>;
  set(path: string, value: unknown, why?: string): void;
  warn(field: string, message: string): void;
  refuse(field: string, message: string): void;
}

type Entry =
  | { kind: 'ours'; trlDefault?: unknown }
  | { kind: 'map'; trlDefault?: unknown; apply: (v: unknown, c: Ctx) => void }
  | { kind: 'inert'; why: string; quiet: (v: unknown) => boolean }
  | { kind: 'refuse'; why: string; ok: (v: unknown) => boolean };

const same = (trlDefault?: unknown): Entry => ({ kind: 'ours', trlDefault });
const eq = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const isEmpty = (v: unknown) =>
  v === null || v === undefined || v === '' || (typeof v === 'object' && Object.keys(v as object).length === 0);
/** No effect here; quiet at `dflt` (or any value matching `quietWhen`), one warning otherwise. */
const inert = (why: string, dflt?: unknown, quietWhen?: (v: unknown) => boolean): Entry => ({
  kind: 'inert',
  why,
  quiet: quietWhen ?? ((v) => eq(v, dflt) || (dflt === null && isEmpty(v))),
});
/** Accepted where it matches what we do (`ok`), refused otherwise. */
const only = (why: string, ok: (v: unknown) => boolean): Entry => ({ kind: 'refuse', why, ok });
const isNull = (v: unknown) => isEmpty(v);

/** `logging_steps`, `save_steps`, `eval_steps`: transformers allows a float in [0, 1) as a ratio of the total. */
function wholeSteps(field: string, ours: string): Entry & { kind: 'map' } {
  return {
    kind: 'map',
    apply: (v, c) => {
      if (v === null || v === undefined) return;
      if (typeof v === 'number' && v > 0 && v < 1) {
        c.refuse(field, `a ratio of the total steps (${v}) is not supported; give whole steps`);
        return;
      }
      c.set(ours, v);
    },
  };
}

function lossType(v: unknown, c: Ctx): void {
  if (typeof v !== 'string') {
    c.set('loss_type', v);
    return;
  }
  const alias = LOSS_TYPE_ALIASES[v];
  // TRL's dapo is the bnpo-like token mean without DAPO's other parts (dynamic sampling, clip-higher)
  const trlDapo = c.mode === 'trl' && v === 'dapo';
  if (alias || trlDapo) {
    const a = alias ?? LOSS_TYPE_ALIASES.bnpo!;
    c.set('loss_type', a.lossType, `${v}: ${a.note}`);
    for (const [k, d] of Object.entries(a.defaults)) if (c.input[k] === undefined) c.set(k, d);
    return;
  }
  if ((LOSS_TYPES as readonly string[]).includes(v) || c.mode === 'recipe') {
    c.set('loss_type', v); // (a recipe's unknown value gets the schema's error)
    return;
  }
  const trlOnly: Record<string, string> = {
    cispo: 'CISPO (clipped importance weights, MiniMax-M1) is not implemented',
    sapo: 'SAPO (soft adaptive gate) is not implemented',
    luspo: 'LUSPO (length-unbiased sequence-level loss) is not implemented',
  };
  c.refuse(
    'loss_type',
    `${trlOnly[v] ?? `${JSON.stringify(v)} is not a loss type here`}; use ${[...LOSS_TYPES, ...Object.keys(LOSS_TYPE_ALIASES)].join('|')}`,
  );
}

/** transformers 5 `bf16: null` means "on unless fp16"; fp16 itself is not supported. */
function bf16(v: unknown, c: Ctx): void {
  if (v === null || v === undefined) {
    if (c.mode === 'trl') c.set('bf16', c.input.fp16 !== true, 'bf16: null = on unless fp16 (TRL)');
    return;
  }
  c.set('bf16', v);
}

const SCHEDULERS: Record<string, string> = {
  linear: 'linear',
  cosine: 'cosine',
  constant: 'constant',
  // ours warms up before any schedule, so constant_with_warmup is constant with warmup_steps/ratio
  constant_with_warmup: 'constant',
};

/** Every field of TRL's GRPOConfig, its BaseConfig and transformers' TrainingArguments. */
export const TRL_FIELDS: Record<string, Entry> = {
  // --- GRPOConfig: model and reference model
  model_init_kwargs: inert("transformers' from_pretrained options; models load from safetensors here", null),
  disable_dropout: inert('our decoders have no dropout', false, () => true),
  cast_lm_head_to_fp32: inert('the lm_head already computes in fp32 (bf16 is autocast on fp32 master weights)', false),
  // --- data preprocessing
  remove_unused_columns: inert('reward functions always get every row field', false),
  num_generations: same(8),
  num_generations_eval: inert('evaluation is greedy pass@1 (gpg-rl eval for pass@k)', null),
  max_completion_length: same(256),
  ds3_gather_for_generation: inert('no DeepSpeed here', true),
  shuffle_dataset: only(
    'the prompt order is always shuffled (seeded); an unshuffled order is not implemented',
    (v) => v !== false,
  ),
  // --- generation
  generation_batch_size: {
    kind: 'map',
    apply: (v, c) => {
      if (v === null || v === undefined) return;
      const bs = Number(
        c.input.per_device_train_batch_size ?? (c.mode === 'trl' ? 8 : FIELDS.per_device_train_batch_size.default),
      );
      const ga = Number(c.input.gradient_accumulation_steps ?? 1);
      if (v !== bs * ga)
        c.refuse(
          'generation_batch_size',
          `other values than per_device_train_batch_size × gradient_accumulation_steps (${bs * ga}) are implemented by issue 12; today each step generates its whole batch at once (got ${String(v)})`,
        );
    },
  },
  steps_per_generation: {
    kind: 'map',
    apply: (v, c) => {
      if (v === null || v === undefined) return;
      const ga = Number(c.input.gradient_accumulation_steps ?? 1);
      if (v !== ga)
        c.refuse(
          'steps_per_generation',
          `must equal gradient_accumulation_steps (${ga}): each optimizer step generates its own batch here (got ${String(v)})`,
        );
    },
  },
  temperature: same(1.0),
  top_p: same(1.0),
  top_k: same(0),
  min_p: only('min-p sampling is not implemented (top_p / top_k are)', isNull),
  generation_kwargs: only('extra generation options are not supported (temperature, top_p, top_k are fields)', isNull),
  chat_template_kwargs: only('chat template options are not supported', isNull),
  repetition_penalty: only('a repetition penalty is not implemented', (v) => v === 1 || v === null),
  use_transformers_paged: inert('generation runs on the native engine', false),
  cache_implementation: inert('generation runs on the native engine (KV cache built in)', null),
  // --- vLLM
  use_vllm: inert(
    "generation runs in-process on the native engine; for a vLLM fleet set rollout_servers to its OpenAI-compatible URLs (TRL's `trl vllm-serve` protocol is not spoken)",
    false,
  ),
  vllm_mode: inert('no vLLM here', 'server'),
  vllm_model_impl: inert('no vLLM here', 'vllm'),
  vllm_enable_sleep_mode: inert('no vLLM here', false),
  vllm_structured_outputs_regex: inert('no vLLM here', null),
  vllm_server_base_url: inert(
    "TRL's `trl vllm-serve` protocol (NCCL weight sync) is not spoken; set rollout_servers to OpenAI-compatible `vllm serve` URLs instead",
    null,
  ),
  vllm_server_host: inert('no vLLM here', '0.0.0.0'),
  vllm_server_port: inert('no vLLM here', 8000),
  vllm_server_timeout: inert('no vLLM here', 240),
  vllm_group_port: inert('no vLLM here', 51216),
  vllm_gpu_memory_utilization: inert('no vLLM here', 0.3),
  vllm_max_model_length: inert('no vLLM here', null),
  vllm_tensor_parallel_size: inert('no vLLM here', 1),
  vllm_importance_sampling_correction: inert(
    'no vLLM here: sampling and training log-probs come from one engine',
    true,
  ),
  vllm_importance_sampling_mode: inert('no vLLM here', 'sequence_mask'),
  vllm_importance_sampling_cap: inert('no vLLM here', 3),
  // --- training
  beta: same(0.0),
  num_iterations: same(1),
  epsilon: same(0.2),
  delta: only("two-sided clipping (INTELLECT-2's delta) is not implemented", isNull),
  epsilon_high: { kind: 'map', apply: (v, c) => c.set('epsilon_high', v ?? null) },
  sapo_temperature_neg: inert('only for loss_type sapo, which is not implemented', 1.05),
  sapo_temperature_pos: inert('only for loss_type sapo, which is not implemented', 1.0),
  importance_sampling_level: only(
    'sequence-level importance ratios (GSPO) are not implemented',
    (v) => v === 'token' || v === null,
  ),
  reward_weights: same(null),
  multi_objective_aggregation: only(
    'normalize_then_sum (GDPO) is not implemented: rewards are summed, then normalised',
    (v) => v === 'sum_then_normalize' || v === null,
  ),
  scale_rewards: same('group'),
  loss_type: { kind: 'map', trlDefault: 'dapo', apply: lossType },
  mask_truncated_completions: same(false),
  sync_ref_model: only('reference-model syncing (TR-DPO) is not implemented', (v) => v === false || v === null),
  ref_model_mixup_alpha: inert('only with sync_ref_model, which is not implemented', 0.6),
  ref_model_sync_steps: inert('only with sync_ref_model, which is not implemented', 512),
  top_entropy_quantile: only('high-entropy token selection is not implemented', (v) => v === 1 || v === null),
  max_tool_calling_iterations: inert('no tool calling here', null),
  off_policy_mask_threshold: only('off-policy sequence masking is not implemented', isNull),
  use_bias_correction_kl: only(
    'the importance-corrected KL estimator is not implemented',
    (v) => v === false || v === null,
  ),
  // --- logging
  log_completions: same(false),
  num_completions_to_print: {
    kind: 'map',
    apply: (v, c) => {
      if (v !== null && v !== undefined)
        c.set('num_completions_to_log', v, 'num_completions_to_print → num_completions_to_log (completions.jsonl)');
    },
  },
  log_unique_prompts: inert('completions.jsonl logs the first completions of each step', false),
  log_completions_hub_repo: inert('nothing is uploaded to the Hub', null),

  // --- BaseConfig (TRL's overrides of TrainingArguments)
  logging_steps: { ...wholeSteps('logging_steps', 'logging_steps'), trlDefault: 10 },
  gradient_checkpointing: inert(
    'activation recomputation is implemented by issue 12 (real scale); until then activations are kept',
    false,
  ),
  bf16: { kind: 'map', trlDefault: null, apply: bf16 },
  lr_scheduler_kwargs: only('scheduler options are not supported', isNull),
  use_liger_kernel: inert('the native engine has its own fused kernels', false),
  torch_empty_cache_steps: inert('no PyTorch allocator here', null),

  // --- TrainingArguments
  output_dir: {
    kind: 'map',
    apply: (v, c) => {
      if (v !== null && v !== undefined) c.set('output_dir', v); // TRL's None: our default (runs/<recipe name>)
    },
  },
  per_device_train_batch_size: same(8),
  num_train_epochs: same(3),
  max_steps: same(-1),
  learning_rate: same(1e-6),
  lr_scheduler_type: {
    kind: 'map',
    apply: (v, c) => {
      if (typeof v === 'string' && SCHEDULERS[v])
        c.set(
          'lr_scheduler_type',
          SCHEDULERS[v],
          v !== SCHEDULERS[v] ? `${v} → ${SCHEDULERS[v]} (warmup applies to every schedule here)` : undefined,
        );
      else if (c.mode === 'recipe') c.set('lr_scheduler_type', v);
      else
        c.refuse(
          'lr_scheduler_type',
          `${JSON.stringify(v)} is not implemented; use ${Object.keys(SCHEDULERS).join('|')}`,
        );
    },
  },
  warmup_steps: same(0),
  optim: only('the optimizer is AdamW (adamw_torch / adamw_torch_fused)', (v) =>
    ['adamw_torch', 'adamw_torch_fused', 'adamw_hf', null].includes(v as string),
  ),
  optim_args: only('optimizer options are not supported', isNull),
  weight_decay: same(0),
  adam_beta1: same(0.9),
  adam_beta2: same(0.999),
  adam_epsilon: same(1e-8),
  optim_target_modules: only('GaLore / APOLLO target modules are not supported', isNull),
  gradient_accumulation_steps: same(1),
  average_tokens_across_devices: inert(
    'token counts are always taken over the whole step batch (DESIGN §5)',
    true,
    () => true,
  ),
  max_grad_norm: same(1.0),
  label_smoothing_factor: inert('a supervised-loss option; the RL loss has no labels', 0),
  fp16: only('fp16 mixed precision is not implemented; use bf16', (v) => v === false || v === null),
  bf16_full_eval: inert('evaluation uses the training precision', false),
  fp16_full_eval: inert('evaluation uses the training precision', false),
  tf32: inert('a GPU setting', null),
  gradient_checkpointing_kwargs: inert('see gradient_checkpointing (issue 12)', null),
  torch_compile: inert('no PyTorch here', false),
  torch_compile_backend: inert('no PyTorch here', null),
  torch_compile_mode: inert('no PyTorch here', null),
  liger_kernel_config: inert('the native engine has its own fused kernels', null),
  use_cache: inert('generation always uses its KV cache; training needs none', false, () => true),
  neftune_noise_alpha: only('NEFTune embedding noise is not implemented', isNull),
  auto_find_batch_size: inert('batch sizes are used as given', false),
  logging_strategy: only('logging is per step (logging_steps)', (v) => v === 'steps' || v === null),
  logging_first_step: inert('metrics.jsonl has every step; trackers log every logging_steps', false),
  log_on_each_node: inert('one process', true),
  logging_nan_inf_filter: inert('non-finite values are written as null / left out', true, () => true),
  include_num_input_tokens_seen: inert('token throughput is logged as tokens_per_s/*', 'no'),
  log_level: inert('console output is the progress line and warnings', 'passive', () => true),
  log_level_replica: inert('one process', 'warning', () => true),
  disable_tqdm: inert('the progress bar is drawn only on a terminal', null, () => true),
  report_to: same('none'),
  run_name: same(null),
  project: inert('only for trackio', 'huggingface'),
  trackio_space_id: inert('only for trackio', 'trackio'),
  eval_strategy: {
    kind: 'map',
    apply: (v, c) => {
      if (v === 'no' || v === null || v === undefined) {
        if (v === 'no' && (c.input.eval_steps ?? 0) !== 0) c.set('eval_steps', 0, 'eval_strategy: no → eval_steps: 0');
        return;
      }
      if (v === 'steps') {
        if (c.input.eval_steps === undefined || c.input.eval_steps === null) {
          const every = c.input.logging_steps ?? c.out.logging_steps ?? FIELDS.logging_steps.default;
          c.set('eval_steps', every, 'eval_strategy: steps without eval_steps → every logging_steps (transformers)');
        }
        return;
      }
      c.refuse('eval_strategy', `${JSON.stringify(v)} is not implemented; use steps (with eval_steps) or no`);
    },
  },
  eval_steps: wholeSteps('eval_steps', 'eval_steps'),
  eval_delay: only('a delayed first evaluation is not implemented', (v) => v === 0 || v === null),
  per_device_eval_batch_size: inert('evaluation batches all problems of a benchmark subset', 8),
  prediction_loss_only: inert('evaluation scores answers, not a loss', false),
  eval_on_start: only(
    'an evaluation before the first step is not implemented (run gpg-rl eval on the model)',
    (v) => v === false || v === null,
  ),
  eval_do_concat_batches: inert('evaluation scores answers, not tensors', true),
  eval_use_gather_object: inert('one process', false),
  eval_accumulation_steps: inert('evaluation scores answers, not tensors', null),
  include_for_metrics: inert('no compute_metrics here', null),
  batch_eval_metrics: inert('no compute_metrics here', false),
  save_only_model: inert('checkpoints always hold the optimizer state so --resume is exact', false),
  save_strategy: {
    kind: 'map',
    apply: (v, c) => {
      if (v === 'steps' || v === null || v === undefined) return;
      if (v === 'no') {
        c.set('save_steps', 0, 'save_strategy: no → save_steps: 0 (the final model is still saved)');
        return;
      }
      c.refuse('save_strategy', `${JSON.stringify(v)} is not implemented; use steps (with save_steps) or no`);
    },
  },
  save_steps: wholeSteps('save_steps', 'save_steps'),
  save_on_each_node: inert('one process', false),
  save_total_limit: same(null),
  enable_jit_checkpoint: inert('SIGTERM handling is not configured by a field', false),
  push_to_hub: inert('nothing is uploaded to the Hub; upload output_dir/model yourself', false),
  hub_token: inert('nothing is uploaded to the Hub', null),
  hub_private_repo: inert('nothing is uploaded to the Hub', null),
  hub_model_id: inert('nothing is uploaded to the Hub', null),
  hub_strategy: inert('nothing is uploaded to the Hub', 'every_save'),
  hub_always_push: inert('nothing is uploaded to the Hub', false),
  hub_revision: inert('nothing is uploaded to the Hub', null),
  load_best_model_at_end: only(
    'best-checkpoint selection is not implemented; the final model is the last step',
    (v) => v === false || v === null,
  ),
  metric_for_best_model: inert('only with load_best_model_at_end', null),
  greater_is_better: inert('only with load_best_model_at_end', null),
  ignore_data_skip: inert('--resume restores the data order exactly, without replaying it', false),
  restore_callback_states_from_checkpoint: inert('callbacks keep no state in checkpoints', false),
  full_determinism: inert('runs are always bit-identical for the same seed and threads', false, () => true),
  seed: same(42),
  data_seed: only('one seed drives data order and sampling here', isNull),
  use_cpu: inert('the native engine runs on the CPU (or another backend by GPG_RL_BACKEND)', false, () => true),
  accelerator_config: inert('no Accelerate here', null),
  parallelism_config: inert('no Accelerate here', null),
  dataloader_drop_last: inert('prompts are sampled per step, not batched by a dataloader', false),
  dataloader_num_workers: inert('no dataloader here', 0),
  dataloader_pin_memory: inert('no dataloader here', true),
  dataloader_persistent_workers: inert('no dataloader here', false),
  dataloader_prefetch_factor: inert('no dataloader here', null),
  label_names: inert('no labels in the RL loss', null),
  train_sampling_strategy: only('prompts are sampled in a seeded random order', (v) => v === 'random' || v === null),
  length_column_name: inert('only for group_by_length', 'length'),
  ddp_find_unused_parameters: inert('no DDP here', null),
  ddp_bucket_cap_mb: inert('no DDP here', null),
  ddp_broadcast_buffers: inert('no DDP here', null),
  ddp_backend: inert('no DDP here', null),
  ddp_timeout: inert('no DDP here', 1800),
  fsdp: inert('no FSDP here', null),
  fsdp_config: inert('no FSDP here', null),
  deepspeed: inert('no DeepSpeed here', null),
  debug: inert('use --debug for stack traces', ''),
  skip_memory_metrics: inert('no memory metrics are logged', true),
  do_train: inert('a flag for scripts; gpg-rl train trains', false, () => true),
  do_eval: inert('a flag for scripts; eval_steps controls evaluation', null, () => true),
  do_predict: inert('a flag for scripts', false),
  resume_from_checkpoint: inert(
    'pass --resume to gpg-rl train (it continues the newest checkpoint in output_dir)',
    null,
  ),
};

/** Names TRL's command line takes beside GRPOConfig (ScriptArguments / ModelConfig) that have a home here. */
const SCRIPT_ALIASES: Record<string, string> = {
  dataset_name: 'dataset.path',
  dataset_train_split: 'dataset.split',
};

/**
 * Reads TRL names. In recipe mode only fields outside FIELDS (and TRL's loss-type and
 * scale_rewards values) are translated; in trl mode every field is read with TRL's meaning and
 * TRL's defaults fill what the file leaves out.
 */
export function translateTrl(input: Record<string, unknown>, mode: TrlMode): TrlTranslation {
  const res: TrlTranslation = { config: {}, warnings: [], mapping: [], refused: [] };
  const warned = new Set<string>();
  const out: Record<string, unknown> = {};
  const c: Ctx = {
    mode,
    input,
    out,
    set(path, value, why) {
      const keys = path.split('.');
      let cur = out;
      for (const k of keys.slice(0, -1)) {
        if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
        cur = cur[k] as Record<string, unknown>;
      }
      cur[keys.at(-1)!] = value;
      if (why) res.mapping.push(why);
    },
    warn(field, message) {
      if (warned.has(field)) return;
      warned.add(field);
      res.warnings.push(`${field}: ${message}`);
    },
    refuse(field, message) {
      res.refused.push({ path: field, message });
    },
  };
  if (mode === 'trl') {
    // TRL's defaults first, for what the file leaves out (ours stay where TRL has none)
    for (const [k, e] of Object.entries(TRL_FIELDS)) {
      if (input[k] !== undefined || (e.kind !== 'ours' && e.kind !== 'map') || e.trlDefault === undefined) continue;
      apply(k, e.trlDefault, true);
    }
    // TRL's epsilon_high is epsilon unless set, whatever the loss type
    if (input.epsilon_high === undefined) c.set('epsilon_high', null);
    if (input.dynamic_sampling === undefined) c.set('dynamic_sampling', false);
  }
  for (const [k, v] of Object.entries(input)) {
    if (SCRIPT_ALIASES[k] && mode === 'trl') {
      c.set(SCRIPT_ALIASES[k], v, `${k} → ${SCRIPT_ALIASES[k]}`);
      continue;
    }
    const e = TRL_FIELDS[k];
    const ourField = k in FIELDS;
    if (!e || (mode === 'recipe' && ourField && e.kind === 'ours')) {
      // dataset_name may have set dataset.path already
      if (k === 'dataset' && typeof v === 'object' && v !== null && typeof out.dataset === 'object')
        out[k] = { ...(v as object), ...(out.dataset as object) };
      else out[k] = v;
      continue;
    }
    // in recipe mode a field of ours keeps our meaning; TRL's values of loss_type and lr_scheduler_type are mapped
    if (mode === 'recipe' && ourField && k !== 'loss_type' && k !== 'lr_scheduler_type') {
      out[k] = v;
      continue;
    }
    apply(k, v, false);
  }
  res.config = out;
  return res;

  function apply(k: string, v: unknown, isDefault: boolean): void {
    const e = TRL_FIELDS[k]!;
    switch (e.kind) {
      case 'ours':
        c.set(
          k,
          v,
          isDefault && mode === 'trl' && !eq(v, FIELDS[k as keyof typeof FIELDS]?.default)
            ? `${k}: ${JSON.stringify(v)} (TRL's default)`
            : undefined,
        );
        return;
      case 'map':
        e.apply(v, c);
        return;
      case 'inert':
        if (!e.quiet(v)) c.warn(k, `has no effect in gpg-rl (${e.why}); ignored`);
        return;
      case 'refuse':
        if (!e.ok(v)) c.refuse(k, `${e.why} (got ${JSON.stringify(v)})`);
        return;
    }
  }
}

/** Throws one ConfigError for refused fields (one line each, prefixed with the source). */
export function refuseTrl(source: string, t: TrlTranslation): void {
  if (t.refused.length === 0) return;
  const lines = t.refused.map((r) => `${source}: ${r.path}: ${r.message}`);
  throw new ConfigError(lines.join('\n'));
}
