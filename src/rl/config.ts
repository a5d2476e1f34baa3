/**
 * @module rl/config
 * The trainer config: every knob in ONE table (`FIELDS`), each with its TRL `GRPOConfig` name, zod
 * type, default, meaning and source paper. The table drives validation (`resolveConfig`), the
 * per-`loss_type` defaults of DESIGN §5, the cross-field checks (`crossFieldChecks`, the one place
 * they live, TRL `__post_init__` style) and the generated docs (`describeConfig`, used by
 * `gpg-rl train --help`). Recipe files and `--set` overrides are handled in `recipe.ts`.
 *
 * Papers: GPG (Chu et al., arXiv 2504.02546), GRPO (DeepSeekMath, arXiv 2402.03300), DAPO
 * (arXiv 2503.14476), Dr. GRPO (arXiv 2503.20783).
 */
import { z } from 'zod';
import { LOSS_TYPES, algorithmFor, foreignFields, lossDefaults } from './algorithms/index.ts';
import { GpgRlError } from '../errors.ts';

export { LOSS_TYPES };
export type LossType = (typeof LOSS_TYPES)[number];
export const BUILTIN_REWARDS = ['accuracy', 'format', 'cosine', 'gsm8k'] as const;
export type BuiltinReward = (typeof BUILTIN_REWARDS)[number];
/** A path value starting with this names something built in (the demo model / dataset), not a file. */
export const BUILTIN_PREFIX = 'builtin:';

/** A default that depends on `loss_type` (DESIGN §5, "Defaults per loss_type"). */
export interface PerLoss<T> {
  readonly perLoss: Readonly<Record<LossType, T>>;
}
/** Marks a field the user must set. */
export const REQUIRED: unique symbol = Symbol('required');
type Default<T> = T | PerLoss<T> | typeof REQUIRED;

export interface Field<S extends z.ZodType = z.ZodType> {
  group: string;
  schema: S;
  default: Default<z.output<S>>;
  /** Written once; rendered by describeConfig() and the docs. */
  doc: string;
}

function f<S extends z.ZodType>(group: string, schema: S, dflt: Default<z.output<S>>, doc: string): Field<S> {
  return { group, schema, default: dflt, doc };
}
function perLoss<T>(t: Record<LossType, T>): PerLoss<T> {
  return { perLoss: t };
}
export function isPerLoss(d: unknown): d is PerLoss<unknown> {
  return typeof d === 'object' && d !== null && 'perLoss' in d;
}

const int = () => z.number().int();
const posInt = () => z.number().int().min(1);
const nonNeg = () => z.number().min(0);
const prob = () => z.number().min(0).max(1);

// ---------------------------------------------------------------------------------------------
// dataset: a nested object (its fields have static defaults, applied by zod)

export const DATASET_FIELDS = {
  path: f(
    'Dataset',
    z.string().min(1),
    REQUIRED,
    "Dataset file (JSONL, JSON array or Parquet), relative to the recipe's folder; `builtin:arithmetic` is the embedded demo set.",
  ),
  format: f(
    'Dataset',
    z.enum(['auto', 'jsonl', 'json', 'parquet']),
    'auto',
    'File format; `auto` picks it from the extension.',
  ),
  prompt_field: f(
    'Dataset',
    z.string().min(1),
    'prompt',
    'Row field holding the question / prompt text (GSM8K: `question`, MATH: `problem`).',
  ),
  answer_field: f(
    'Dataset',
    z.string().min(1),
    'answer',
    'Row field holding the gold answer (or the solution it is extracted from).',
  ),
  answer_extraction: f(
    'Dataset',
    z.enum(['none', 'gsm8k', 'boxed']),
    'none',
    "How the gold answer is taken from `answer_field`: as is, the text after GSM8K's `####`, or the last `\\boxed{}`. Rows whose answer cannot be parsed are dropped and counted.",
  ),
  system_prompt: f(
    'Dataset',
    z.string().nullable(),
    null,
    'System message put before each prompt (chat template only).',
  ),
  prompt_template: f(
    'Dataset',
    z.string().nullable(),
    null,
    'Template with `{prompt}` wrapped around the question before tokenisation (e.g. "{prompt}\\nPut the final answer in \\\\boxed{}."); null = the raw question.',
  ),
  use_chat_template: f(
    'Dataset',
    z.boolean(),
    true,
    "Format prompts with the tokenizer's chat template (false: raw text, for base models).",
  ),
  split: f(
    'Dataset',
    z.string().min(1).nullable(),
    null,
    'For a dataset folder holding several files: which one to read (e.g. `train`).',
  ),
  limit: f('Dataset', posInt().nullable(), null, 'Use only the first N rows (after filtering); null = all.'),
} satisfies Record<string, Field>;

function objectOf<T extends Record<string, Field>>(table: T) {
  const shape: Record<string, z.ZodType> = {};
  for (const [k, fld] of Object.entries(table)) {
    const d = fld.default;
    if (isPerLoss(d)) throw new GpgRlError(`objectOf: ${k}: per-loss defaults are top-level only`, 'GPG_INTERNAL');
    shape[k] = d === REQUIRED ? fld.schema : fld.schema.default(d as never);
  }
  return z.strictObject(shape) as unknown as z.ZodObject<{
    [K in keyof T]: T[K]['default'] extends typeof REQUIRED ? T[K]['schema'] : z.ZodDefault<T[K]['schema']>;
  }>;
}
export const datasetSchema = objectOf(DATASET_FIELDS);
export type DatasetConfig = z.output<typeof datasetSchema>;

const rewardFuncSchema = z.union(
  [z.enum(BUILTIN_REWARDS), z.strictObject({ path: z.string().min(1), export: z.string().min(1).default('default') })],
  { error: () => `must be one of ${BUILTIN_REWARDS.join('|')} or { path, export } (a JS/TS module and its export)` },
);
export type RewardFuncSpec = z.output<typeof rewardFuncSchema>;

const overlongSchema = z.strictObject({ max_len: posInt(), cache: int().min(0) });

/** Trackers `report_to` can name besides metrics.jsonl (always written). */
export const TRACKERS = ['tensorboard', 'csv'] as const;
export type Tracker = (typeof TRACKERS)[number];
/** transformers' `report_to` values: a name or a list; `none`, `all` (= every tracker here), `jsonl` (always on). */
const reportToSchema = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => [...new Set((Array.isArray(v) ? v : [v]).flatMap((x) => (x === 'all' ? [...TRACKERS] : [x])))])
  .superRefine((names, ctx) => {
    for (const n of names) {
      if (n === 'none' || n === 'jsonl' || (TRACKERS as readonly string[]).includes(n)) continue;
      ctx.addIssue({
        code: 'custom',
        message:
          n === 'wandb'
            ? 'wandb: no maintained JavaScript library writes W&B offline run folders, so gpg-rl cannot; use tensorboard and upload the event files with `wandb sync --sync-tensorboard <logging_dir>`'
            : `${JSON.stringify(n)} is not a tracker here; use ${[...TRACKERS, 'jsonl', 'none', 'all'].join('|')}`,
      });
    }
  })
  .transform((names) => names.filter((n): n is Tracker => (TRACKERS as readonly string[]).includes(n)));

/** TRL's `scale_rewards` strings: `group` = true, `none` = false; `batch` (batch-level std) is not implemented. */
const scaleRewardsSchema = z
  .union([z.boolean(), z.string()])
  .superRefine((v, ctx) => {
    if (typeof v === 'boolean' || v === 'group' || v === 'none') return;
    ctx.addIssue({
      code: 'custom',
      message:
        v === 'batch'
          ? "batch (TRL: divide by the reward std over the whole batch) is not implemented; use group (true: the group's std) or none (false)"
          : 'must be true|false|group|none',
    });
  })
  .transform((v) => v === true || v === 'group');

// ---------------------------------------------------------------------------------------------
// LoRA: shared with the SFT config (src/sft/config.ts spreads the same table)

export const LORA_FIELDS = {
  use_peft: f(
    'LoRA',
    z.boolean(),
    false,
    'Train LoRA adapters (Hu et al., arXiv 2106.09685) instead of the whole model: the base is frozen, only the adapters and their AdamW state are trained and checkpointed, `<output_dir>/model/` holds a PEFT adapter (adapter_config.json + adapter_model.safetensors, loadable by PEFT, transformers and vLLM), and with beta > 0 the reference model is the base with adapters off. `gpg-rl merge-lora` folds an adapter into a full model folder.',
  ),
  lora_r: f('LoRA', posInt(), 16, 'LoRA rank r (PEFT `r`).'),
  lora_alpha: f(
    'LoRA',
    z.number().gt(0),
    32,
    'LoRA scaling numerator: the update B·A is scaled by lora_alpha / lora_r (PEFT `lora_alpha`).',
  ),
  lora_dropout: f(
    'LoRA',
    z.number().min(0).lt(1),
    0.05,
    'Dropout probability on the adapter input, in the training forward only (seeded; PEFT `lora_dropout`).',
  ),
  lora_target_modules: f(
    'LoRA',
    z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).nullable(),
    null,
    'Modules that get adapters (PEFT `target_modules`): names matched against the end of module paths (e.g. [q_proj, v_proj]), `all-linear`, or one regular expression over whole paths (model.layers.0.self_attn.q_proj); null = every attention and MLP projection (q/k/v/o_proj, gate/up/down_proj). A name matching no layer is an error.',
  ),
  use_rslora: f(
    'LoRA',
    z.boolean(),
    false,
    'rsLoRA (arXiv 2312.03732): scale by lora_alpha / √lora_r instead of lora_alpha / lora_r (PEFT `use_rslora`).',
  ),
  lora_base_dtype: f(
    'LoRA',
    z.enum(['float32', 'bfloat16']),
    'float32',
    'Storage of the frozen base weights of the decoder layers: bfloat16 halves their memory (each product widens one weight to float32 on the fly on CPUs without native bf16); adapters, embeddings and norms stay float32.',
  ),
} satisfies Record<string, Field>;

// ---------------------------------------------------------------------------------------------
// the table: grouped by topic as in TRL's GRPOConfig

export const FIELDS = {
  // > Model and run
  model_name_or_path: f(
    'Model and run',
    z.string().min(1),
    REQUIRED,
    "Hugging Face model folder (config.json, *.safetensors, tokenizer.json), relative to the recipe's folder, or a repo id (`Qwen/Qwen2.5-0.5B-Instruct`) found in the local hub cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub; never downloaded); `builtin:tiny` is a tiny model made by `gpg-rl init-model`.",
  ),
  dataset: f('Model and run', datasetSchema, REQUIRED, 'The training prompts; see the `dataset.*` fields.'),
  output_dir: f(
    'Model and run',
    z.string().min(1),
    'runs/run',
    "Run folder (metrics.jsonl, completions.jsonl, report.html, checkpoints), relative to the working directory. A recipe's default is runs/<recipe name>.",
  ),
  seed: f(
    'Model and run',
    int().min(0),
    42,
    'Seed for data order, sampling and initialisation; the same seed and thread count give bit-identical runs.',
  ),
  threads: f('Model and run', int().min(0), 0, 'CPU threads for the native engine; 0 = all cores.'),
  bf16: f(
    'Model and run',
    z.boolean(),
    false,
    'Mixed precision: bf16 GEMM operands with fp32 accumulation, fp32 master weights, optimizer state and reductions (as PyTorch autocast).',
  ),

  // > LoRA (TRL ModelConfig / PEFT LoraConfig names; model/lora.ts)
  ...LORA_FIELDS,

  // > Parameters that control the data and generation
  max_prompt_length: f(
    'Generation',
    posInt(),
    512,
    'Prompts longer than this many tokens are dropped at load time (counted).',
  ),
  max_completion_length: f('Generation', posInt(), 256, 'Maximum completion tokens generated per prompt.'),
  num_generations: f(
    'Generation',
    int().min(2),
    8,
    'G: completions sampled per prompt (one group). GRPO-style advantages need at least 2.',
  ),
  temperature: f(
    'Generation',
    z.number().gt(0),
    1.0,
    'Sampling temperature; token log-probs use the same temperature.',
  ),
  top_p: f(
    'Generation',
    z.number().gt(0).max(1),
    1.0,
    'Nucleus sampling: keep the smallest token set with this probability mass; 1 = off.',
  ),
  top_k: f('Generation', int().min(0), 0, 'Sample among the k most likely tokens; 0 = off.'),
  generation_dtype: f(
    'Generation',
    z.enum(['auto', 'float32', 'bfloat16']),
    'auto',
    'Weights the rollout engine reads: `float32`, or `bfloat16` (a packed bf16 copy made per generation call and freed after it: half the bytes streamed, fp32 accumulation; the master weights stay fp32); `auto` = bfloat16 for models of 100M parameters or more on a CPU with bf16 dot products (the x86-64-v4-bf16 build: Zen 4/5, Sapphire Rapids), else float32 — as measured (README: 1.41× at the Qwen2.5-0.5B shape, batch 64; no gain at 39M parameters). The run log names the dtype used. Training recomputes the old log-probs in training precision either way and logs `sampling/sampling_logp_difference/{mean,max}`.',
  ),
  generation_kv_cache_gb: f(
    'Generation',
    z.number().gt(0),
    2,
    "KV-cache budget of the rollout engine in GB (paged blocks of 16 positions; a group's prompt blocks are shared by its G completions). Groups wait until their worst case fits; a group larger than the budget is an error.",
  ),
  rollout_servers: f(
    'Generation',
    z.array(z.string().regex(/^https?:\/\/[^\s/]+/, 'must be an http(s) URL such as http://host:8000')),
    [],
    "OpenAI-compatible completions servers that generate the rollouts instead of the local engine (vLLM, SGLang, `gpg-rl serve`; base URLs such as http://gpu1:8000). Prompts are dealt round-robin over the servers, one `/v1/completions` request per server and round (its prompts as token-id lists, n = G, the sampling settings, seeds, logprobs, return_tokens_as_token_ids); a failing request is retried (rollout_server_retries), then its prompts go to the other servers with a warning; when every server fails the step fails and a checkpoint of the last completed step is saved for --resume. Old log-probs are recomputed locally (sampling/sampling_logp_difference compares the servers'). Before the first rollout and after each optimizer step the policy is saved to <output_dir>/rollout_weights (a full HF folder, or the PEFT adapter with use_peft) and each server reloads it (SGLang's /update_weights_from_disk, or vLLM's /v1/load_lora_adapter), so the folder must be on storage the servers see. [] = local rollouts.",
  ),
  rollout_server_retries: f(
    'Generation',
    int().min(0),
    2,
    'Retries of a failed rollout-server request on the same server before it is marked down and its prompts go to another one.',
  ),
  rollout_server_timeout_s: f(
    'Generation',
    z.number().gt(0),
    600,
    "Seconds a rollout-server request (one server's share of a rollout round, or a weight reload) may take before it counts as failed.",
  ),
  max_staleness: f(
    'Generation',
    int().min(0),
    0,
    "Optimizer steps the rollout servers' weights may lag behind the policy. 0 = on-policy (every rollout uses the current weights). 1 (needs rollout_servers) overlaps generation with training: step t+1's prompts are requested, with the weights the servers have, before step t's update runs, so its completions come from the weights one optimizer step old; the weights are synced after that answer is in, never during a request. Old log-probs are still recomputed with the current policy (sampling/sampling_logp_difference then also measures the one-step lag), and sampling/staleness logs the lag per step (0 for the first step and for resampling rounds). Values over 1 are refused.",
  ),
  mask_truncated_completions: f(
    'Generation',
    z.boolean(),
    false,
    "Exclude completions that hit max_completion_length without an end token from the loss (DAPO's overlong filtering, arXiv 2503.14476 §3.4).",
  ),
  overlong_penalty: f(
    'Generation',
    overlongSchema.nullable(),
    null,
    'DAPO soft overlong punishment { max_len, cache }: a completion longer than max_len − cache loses reward linearly, reaching −1 at max_len (arXiv 2503.14476 eq. 13).',
  ),
  log_completions: f(
    'Generation',
    z.boolean(),
    true,
    "Append a sample of each step's completions (prompt, completion, rewards, advantage) to completions.jsonl.",
  ),
  num_completions_to_log: f('Generation', posInt(), 8, 'How many completions per step log_completions writes.'),

  // > Rewards
  reward_funcs: f(
    'Rewards',
    z.array(rewardFuncSchema).min(1),
    ['accuracy'],
    'Reward functions: built-in `accuracy` (maths answer verification), `format` (open-rs: exactly one "\\n</think>\\n" in the completion), `cosine` (length-scaled accuracy), `gsm8k` (final number after #### or in \\boxed{}), or { path, export } naming a JS/TS module function ({ prompts, completions, completionIds, ...rowFields }) => (number | null)[].',
  ),
  reward_weights: f(
    'Rewards',
    z.array(z.number()).nullable(),
    null,
    'Weight per reward function (same order); null = all 1. The total reward is the weighted sum (TRL).',
  ),
  reward_timeout_s: f(
    'Rewards',
    z.number().gt(0),
    10,
    'A reward call slower than this scores 0 for its completions (counted and logged; the run goes on).',
  ),
  extract_without_anchor: f(
    'Rewards',
    z.boolean(),
    false,
    "How the `accuracy` and `cosine` rewards read a completion's answer (Math-Verify's `try_extract_without_anchor`). false (default, as the official GPG / TRL accuracy reward): only anchored answers — `\\boxed{}`, `<answer>…</answer>`, \"final answer is\" — so a number that merely appears in the reasoning earns nothing; true: also the last LaTeX expression and the last number. Evaluation keeps each benchmark's own extraction rules.",
  ),
  format_pattern: f(
    'Rewards',
    z.string().min(1).nullable(),
    null,
    'Regular expression the `format` reward requires of a whole completion instead of its default check; null = open-rs\'s check (exactly one "\\n</think>\\n", as the GPG 1.5B recipe). open-r1\'s regex is exported as OPEN_R1_FORMAT_PATTERN.',
  ),
  cosine_max_len: f(
    'Rewards',
    posInt(),
    1000,
    'Length at which the `cosine` reward reaches its end values (open-r1 / "Demystifying long CoT", arXiv 2502.03373).',
  ),
  cosine_min_value_correct: f('Rewards', z.number(), 0.5, '`cosine` reward of a correct answer at cosine_max_len.'),
  cosine_max_value_correct: f('Rewards', z.number(), 1.0, '`cosine` reward of a correct answer of length 0.'),
  cosine_min_value_wrong: f('Rewards', z.number(), 0.0, '`cosine` reward of a wrong answer of length 0.'),
  cosine_max_value_wrong: f('Rewards', z.number(), -0.5, '`cosine` reward of a wrong answer at cosine_max_len.'),
  cosine_length_unit: f(
    'Rewards',
    z.enum(['chars', 'tokens']),
    'chars',
    "Unit of the `cosine` reward's length (the GPG 1.5B recipe counts characters).",
  ),

  // > Parameters that control the loss (DESIGN §5)
  loss_type: f(
    'Loss',
    z.enum(LOSS_TYPES),
    'gpg',
    'Policy loss: `gpg` (GPG, arXiv 2504.02546: −lp·A, token mean, ÷ inverse_alpha), `grpo` (clipped ratio + β·KL, per-sequence mean; arXiv 2402.03300), `dapo` (clip-higher, token mean; arXiv 2503.14476), `dr_grpo` (unscaled advantages, ÷ B·max_completion_length; arXiv 2503.20783), `ppo` (PPO with a critic: KL in the per-token reward, GAE, clipped policy and value losses; arXiv 1707.06347, 2203.02155; see the PPO fields). `trpo` (natural-gradient step on the surrogate in a KL trust region, no optimizer; arXiv 1502.05477; fields under TRPO). Sets the defaults of the fields marked "per loss_type".',
  ),
  scale_rewards: f(
    'Loss',
    scaleRewardsSchema,
    perLoss(lossDefaults<boolean>('scale_rewards')),
    "Divide advantages by the group reward std (+1e-4). GPG uses F_norm = 1; the Dr. GRPO paper recommends not scaling rewards. TRL's strings are accepted: group = true, none = false (batch is refused).",
  ),
  adjust_gd: f(
    'Loss',
    z.boolean(),
    perLoss(lossDefaults<boolean>('adjust_gd')),
    "GPG's gradient adjustment (AGE): divide the loss by inverse_alpha = valid groups / groups, so groups with identical rewards do not dilute the gradient. gpg only.",
  ),
  min_inverse_alpha: f(
    'Loss',
    prob().nullable(),
    perLoss(lossDefaults<number | null>('min_inverse_alpha')),
    "GPG's β_th: while the valid-group fraction is below it, sample new prompts and keep only their valid groups (at most max_resample_rounds rounds). Official code default 0.5, the paper's main runs 0.6. gpg with adjust_gd only; null = no resampling.",
  ),
  max_resample_rounds: f(
    'Loss',
    posInt(),
    20,
    'Bound on β_th / dynamic-sampling rounds per step; at the limit the step proceeds with inverse_alpha = max(valid/groups, min_inverse_alpha) and the event is logged.',
  ),
  dynamic_sampling: f(
    'Loss',
    z.boolean(),
    perLoss(lossDefaults<boolean>('dynamic_sampling')),
    'DAPO dynamic sampling: drop groups whose rewards are all the same and refill the batch with new prompts (at most max_resample_rounds rounds; arXiv 2503.14476 §3.2).',
  ),
  dynamic_sampling_metric: f(
    'Loss',
    z.string().min(1).nullable(),
    null,
    'What dynamic sampling compares within a group (verl `algorithm.filter_groups.metric`): a reward function name (e.g. `accuracy`) or `reward` for the total weighted reward (overlong penalty included). null = `accuracy` when it is among reward_funcs, else `reward`. DAPO and verl filter on accuracy, so a group whose answers are all right (or all wrong) is dropped even when the length penalty differs.',
  ),
  beta: f(
    'Loss',
    nonNeg(),
    perLoss(lossDefaults<number>('beta')),
    'KL coefficient (k3 estimator). 0 = the reference model is not loaded. Not used by gpg.',
  ),
  epsilon: f(
    'Loss',
    z.number().gt(0).lt(1),
    0.2,
    'Lower clipping bound: ratio ≥ 1 − epsilon (PPO, arXiv 1707.06347). Unused by gpg.',
  ),
  epsilon_high: f(
    'Loss',
    z.number().gt(0).nullable(),
    perLoss(lossDefaults<number | null>('epsilon_high')),
    "Upper clipping bound: ratio ≤ 1 + epsilon_high; null = epsilon. DAPO's clip-higher uses 0.28.",
  ),
  num_iterations: f(
    'Loss',
    posInt(),
    1,
    'μ: optimizer steps per generated batch (old log-probs kept, so ratios differ from 1 and clipping matters). gpg requires 1.',
  ),

  // > PPO with a critic (loss_type ppo; TRL PPOConfig names; rl/algorithms/ppo.ts, rl/critic.ts)
  kl_coef: f(
    'PPO',
    nonNeg(),
    0.05,
    'KL coefficient in the per-token reward: r_t = −kl_coef·KL(π‖π_ref)_t, plus the sequence reward on the last completion token (InstructGPT; TRL PPOConfig `kl_coef`). The reference is a frozen copy of the initial policy; 0 = no reference model. ppo only.',
  ),
  kl_estimator: f(
    'PPO',
    z.enum(['k1', 'k3']),
    'k1',
    'Estimator of the per-token KL in the reward (Schulman 2020; TRL `kl_estimator`): k1 = log π − log π_ref (unbiased, can be negative), k3 = (r − 1) − log r with r = π_ref/π (unbiased, ≥ 0, lower variance). ppo only.',
  ),
  vf_coef: f(
    'PPO',
    nonNeg(),
    0.1,
    "Weight of the value loss (TRL `vf_coef`): the critic's gradient is vf_coef · d(value loss); the logged `loss` is policy loss + vf_coef · value loss. ppo, and trpo with trpo_baseline: value.",
  ),
  cliprange_value: f(
    'PPO',
    z.number().gt(0).nullable(),
    0.2,
    'Clip range of the value loss (TRL `cliprange_value`): the loss is 0.5·max((V − R)², (clamp(V, V_old ± cliprange_value) − R)²); null = plain 0.5·(V − R)². ppo, and trpo with trpo_baseline: value.',
  ),
  gamma: f('PPO', prob(), 1.0, 'Discount factor γ of GAE (TRL `gamma`). ppo, and trpo with trpo_baseline: value.'),
  lam: f(
    'PPO',
    prob(),
    0.95,
    'GAE λ (Schulman et al., arXiv 1506.02438; TRL `lam`). ppo, and trpo with trpo_baseline: value.',
  ),
  num_ppo_epochs: f(
    'PPO',
    posInt(),
    4,
    'Passes over each generated batch (TRL `num_ppo_epochs`); each pass makes num_mini_batches optimizer updates of the policy and the critic. ppo only.',
  ),
  num_mini_batches: f(
    'PPO',
    posInt(),
    1,
    "Mini-batches per pass (TRL `num_mini_batches`): the step's micro-batches, shuffled each pass, in this many runs, one optimizer update each. Must divide gradient_accumulation_steps. Unlike TRL, the generated batch stays per_device_train_batch_size × gradient_accumulation_steps completions (TRL multiplies it by num_mini_batches). ppo only.",
  ),
  whiten_rewards: f(
    'PPO',
    z.boolean(),
    false,
    'Whiten the per-token rewards over the step batch before GAE, keeping their mean (TRL `whiten_rewards`). ppo, and trpo with trpo_baseline: value.',
  ),
  value_model_path: f(
    'PPO',
    z.string().min(1).nullable(),
    null,
    "Folder the critic starts from (TRL `value_model_path`), relative to the recipe's folder: a Hugging Face …ForTokenClassification or …ForSequenceClassification folder with one label (e.g. a reward model), or a …ForCausalLM folder (new value head); null = a copy of the policy with a new value head. Checkpoints hold the critic as `value_model/` (…ForTokenClassification, plus its AdamW state); the run ends with `<output_dir>/value_model`. ppo, and trpo with trpo_baseline: value.",
  ),

  // > TRPO (loss_type trpo; Schulman et al., arXiv 1502.05477)
  max_kl: f(
    'TRPO',
    z.number().gt(0),
    0.001,
    "TRPO's trust region δ: every accepted step keeps the mean KL(π_old ‖ π_θ) over the step's completion tokens (full-vocabulary KL per token) ≤ max_kl. The natural-gradient step is scaled to reach δ in the quadratic model, then the line search backs off. Recorded in trainer_config.json; trpo/kl logs the applied step's KL. trpo only.",
  ),
  cg_iters: f(
    'TRPO',
    posInt(),
    10,
    'Conjugate-gradient iterations for the natural gradient F⁻¹g (one Fisher-vector product each). trpo only.',
  ),
  cg_damping: f(
    'TRPO',
    nonNeg(),
    0.1,
    'Damping λ: CG solves (F + λI) s = g, which keeps directions the sampled tokens say nothing about from exploding (baselines trpo_mpi uses 0.1). trpo only.',
  ),
  cg_subsample: f(
    'TRPO',
    z.number().gt(0).max(1),
    0.2,
    "Fraction of the step's completions (with all their tokens) whose Fisher the CG uses, drawn afresh each step from the seed (TRPO's Fisher subsampling, arXiv 1502.05477 §6); the gradient, the KL and the line search always use every completion. 1 = all. trpo only.",
  ),
  line_search_steps: f(
    'TRPO',
    posInt(),
    10,
    'Backtracking line-search tries: step fractions 1, r, r², … (r = line_search_backtrack_ratio); the first with surrogate improvement and KL ≤ max_kl is taken, and if none is the weights stay unchanged. trpo only.',
  ),
  line_search_backtrack_ratio: f(
    'TRPO',
    z.number().gt(0).lt(1),
    0.5,
    'Factor r by which each line-search try shrinks the step. trpo only.',
  ),
  trpo_baseline: f(
    'TRPO',
    z.enum(['group', 'value']),
    'group',
    'Advantage baseline of TRPO: `group` = the group mean reward (GRPO-style, A = r − mean_g, ÷ std with scale_rewards), `value` = per-token GAE advantages on a learned critic (as in the TRPO paper and baselines trpo_mpi): the value model of loss_type ppo (value_model_path, gamma, lam, cliprange_value, vf_coef, whiten_rewards), fitted once per step after the policy step with its own AdamW at learning_rate. trpo only.',
  ),

  // > Optimisation
  per_device_train_batch_size: f(
    'Optimization',
    posInt(),
    16,
    'Completions per micro-batch (not prompts); must be divisible by num_generations. Prompts per micro-batch = this / num_generations.',
  ),
  gradient_accumulation_steps: f(
    'Optimization',
    posInt(),
    1,
    'Micro-batches per optimizer step. Batch-level counts (tokens, groups, α) are taken over the whole step batch (DESIGN §5).',
  ),
  max_tokens_per_microbatch: f(
    'Optimization',
    int().min(0),
    0,
    'Micro-batches by token budget: the step batch is packed (longest sequences first) into micro-batches whose padded batch × length stays within this many tokens, instead of per_device_train_batch_size completions each (which then only sets the generation batch). Bounds activation memory when completion lengths vary. The loss normaliser is counted over the whole step (DESIGN §5), so the update is the un-split one. Must be ≥ max_prompt_length + max_completion_length. 0 = off.',
  ),
  gradient_checkpointing: f(
    'Optimization',
    z.boolean(),
    false,
    'Activation checkpointing per decoder layer (HF/TRL gradient_checkpointing): the backward pass recomputes each layer from its input instead of keeping its activations, so a micro-batch keeps one [B, T, hidden] tensor per layer plus one layer of activations; costs one more forward pass (~⅓ more compute). Gradients are unchanged (bitwise).',
  ),
  learning_rate: f('Optimization', z.number().gt(0), 1e-6, 'Peak AdamW learning rate.'),
  lr_scheduler_type: f(
    'Optimization',
    z.enum(['constant', 'cosine', 'linear']),
    'linear',
    'Schedule after warmup: constant, cosine decay to 0, or linear decay to 0.',
  ),
  warmup_ratio: f(
    'Optimization',
    z.number().min(0).lt(1),
    0,
    'Fraction of the total steps spent warming the learning rate up linearly from 0.',
  ),
  warmup_steps: f(
    'Optimization',
    nonNeg(),
    0,
    'Optimizer updates of linear warmup; when > 0 it replaces warmup_ratio (transformers). A value in (0, 1) is a ratio of the total, as in transformers 5.',
  ),
  weight_decay: f('Optimization', nonNeg(), 0, 'AdamW decoupled weight decay (arXiv 1711.05101).'),
  adam_beta1: f('Optimization', z.number().min(0).lt(1), 0.9, 'AdamW β1.'),
  adam_beta2: f('Optimization', z.number().min(0).lt(1), 0.999, 'AdamW β2.'),
  adam_epsilon: f('Optimization', z.number().gt(0), 1e-8, 'AdamW ε.'),
  max_grad_norm: f('Optimization', nonNeg(), 1.0, 'Clip the global gradient L2 norm to this; 0 = no clipping.'),
  max_steps: f(
    'Optimization',
    int()
      .min(-1)
      .refine((v) => v !== 0, 'must be −1 (use num_train_epochs) or ≥ 1'),
    -1,
    'Optimizer steps to run; −1 = derive from num_train_epochs.',
  ),
  num_train_epochs: f('Optimization', z.number().gt(0), 1, 'Passes over the prompts when max_steps is −1.'),
  max_consecutive_skipped_steps: f(
    'Optimization',
    int().min(0),
    10,
    'Fail the run after this many steps in a row were skipped (no usable signal: equal rewards in every group, often a reward that keeps failing), with one line saying why; 0 = never. May change on --resume.',
  ),

  // > Logging and saving
  logging_steps: f(
    'Logging and saving',
    posInt(),
    1,
    'Print a progress line every N steps (metrics.jsonl gets every step).',
  ),
  save_steps: f(
    'Logging and saving',
    int().min(0),
    500,
    'Save a checkpoint (HF model folder + trainer state) every N steps; 0 = only at the end.',
  ),
  eval_steps: f(
    'Logging and saving',
    int().min(0),
    0,
    'Every N steps, greedy pass@1 on the first eval_limit problems of each eval_benchmarks set (gpg-rl eval), appended to eval.jsonl in the run folder; 0 = never.',
  ),
  eval_benchmarks: f(
    'Logging and saving',
    z.array(z.enum(['aime24', 'math500', 'amc23', 'minerva', 'olympiadbench'])).min(1),
    ['aime24', 'math500', 'amc23', 'minerva', 'olympiadbench'],
    "Benchmarks evaluated during training (the GPG paper's tables).",
  ),
  eval_limit: f(
    'Logging and saving',
    posInt(),
    20,
    'Problems per benchmark evaluated during training (a subset keeps it cheap).',
  ),
  report_to: f(
    'Logging and saving',
    reportToSchema,
    [],
    'Trackers written beside metrics.jsonl (always on) every logging_steps steps, with the metrics averaged over those steps (TRL): `tensorboard` (events.out.tfevents.* in logging_dir, read by TensorBoard; eval results too) and `csv` (metrics.csv in output_dir). A name or a list; `none` = only metrics.jsonl, `all` = both. `wandb` is refused: no JavaScript writer of W&B offline runs exists (`wandb sync --sync-tensorboard` uploads the TensorBoard files).',
  ),
  logging_dir: f(
    'Logging and saving',
    z.string().min(1).nullable(),
    null,
    'Folder of the TensorBoard event files, relative to the working directory; null = output_dir.',
  ),
  run_name: f(
    'Logging and saving',
    z.string().min(1).nullable(),
    null,
    "A name for the run (report.html's title); null = output_dir.",
  ),
  save_total_limit: f(
    'Logging and saving',
    posInt().nullable(),
    null,
    'Keep only the newest N checkpoint-<step> folders (older ones are deleted after each save, as transformers does); null = keep all.',
  ),
} satisfies Record<string, Field>;

export type FieldName = keyof typeof FIELDS;
type OutOf<F> = F extends Field<infer S> ? z.output<S> : never;
/** The resolved config: every field set, per-loss defaults applied, `epsilon_high` never null. */
export type TrainConfig = { [K in FieldName]: OutOf<(typeof FIELDS)[K]> } & { epsilon_high: number };

/** Zod schema of user input: every top-level field optional (defaults are applied after). */
export const inputSchema = z.strictObject(
  Object.fromEntries(Object.entries(FIELDS).map(([k, fld]) => [k, fld.schema.optional()])) as {
    [K in FieldName]: z.ZodOptional<(typeof FIELDS)[K]['schema']>;
  },
);

/** One problem: a dotted field path ('' = the whole config) and a message without the path. */
export interface ConfigIssue {
  path: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// defaults and cross-field checks

/**
 * Fills defaults into a schema-valid partial config. Per-loss defaults apply only to fields the
 * user did not set. `min_inverse_alpha` defaults to null when the user turned `adjust_gd` off (the
 * resampling belongs to AGE); `epsilon_high` null resolves to `epsilon`.
 */
export function applyDefaults(input: Record<string, unknown>, issues: ConfigIssue[]): TrainConfig {
  const out: Record<string, unknown> = {};
  const lossType = (input.loss_type ?? 'gpg') as LossType;
  for (const [k, fld] of Object.entries(FIELDS) as [string, Field][]) {
    if (input[k] !== undefined) {
      out[k] = input[k];
      continue;
    }
    const d = fld.default;
    if (d === REQUIRED) {
      issues.push({ path: k, message: `required; set it in the recipe or with --set ${k}=…` });
      continue;
    }
    out[k] = structuredClone(isPerLoss(d) ? d.perLoss[lossType] : d);
  }
  if (input.min_inverse_alpha === undefined && out.adjust_gd === false) out.min_inverse_alpha = null;
  if (out.epsilon_high === null) out.epsilon_high = out.epsilon;
  return out as TrainConfig;
}

/**
 * Every check that involves more than one field, in one place (TRL `__post_init__`); messages
 * give the values and the fix. `explicit` = fields the user set (so a default never errors).
 */
export function crossFieldChecks(c: TrainConfig, explicit: ReadonlySet<string>): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const add = (path: string, message: string) => out.push({ path, message });
  const G = c.num_generations;
  if (c.per_device_train_batch_size % G !== 0) {
    const lo = Math.max(G, c.per_device_train_batch_size - (c.per_device_train_batch_size % G));
    add(
      'per_device_train_batch_size',
      `must be divisible by num_generations (${c.per_device_train_batch_size} % ${G} = ${c.per_device_train_batch_size % G}); it counts completions, so use ${lo} or ${lo + G}`,
    );
  }
  const longest = c.max_prompt_length + c.max_completion_length;
  if (c.max_tokens_per_microbatch > 0 && c.max_tokens_per_microbatch < longest)
    add(
      'max_tokens_per_microbatch',
      `must be ≥ max_prompt_length + max_completion_length (${c.max_prompt_length} + ${c.max_completion_length} = ${longest}) so the longest sequence fits a micro-batch (got ${c.max_tokens_per_microbatch}); use ${longest} or more, or 0 for per_device_train_batch_size micro-batches`,
    );
  // the algorithm family's own checks (rl/algorithms/<family>.ts)
  algorithmFor(c.loss_type).check(c, explicit, add);
  for (const [field, types] of foreignFields(c.loss_type))
    if (explicit.has(field))
      add(field, `applies only to loss_type ${types.join('|')} (got loss_type ${c.loss_type}); remove ${field}`);
  if (c.reward_weights !== null && c.reward_weights.length !== c.reward_funcs.length) {
    add(
      'reward_weights',
      `has ${c.reward_weights.length} entries but reward_funcs has ${c.reward_funcs.length}; give one weight per reward function or remove reward_weights`,
    );
  }
  if (c.overlong_penalty !== null) {
    const { max_len, cache } = c.overlong_penalty;
    if (cache >= max_len)
      add('overlong_penalty.cache', `must be < overlong_penalty.max_len (got cache ${cache}, max_len ${max_len})`);
    if (max_len > c.max_completion_length)
      add(
        'overlong_penalty.max_len',
        `must be ≤ max_completion_length (got ${max_len} > ${c.max_completion_length}); longer completions are never generated`,
      );
  }
  if (c.max_staleness > 1)
    add(
      'max_staleness',
      `at most 1 is implemented (got ${c.max_staleness}): 1 generates step t+1 on the rollout servers while step t trains; set 0 or 1`,
    );
  else if (c.max_staleness === 1 && c.rollout_servers.length === 0)
    add(
      'max_staleness',
      'needs rollout_servers (got 1 with local rollouts): local generation runs on the cores training uses, so there is nothing to overlap; set rollout_servers or max_staleness: 0',
    );
  if (c.dataset.prompt_template !== null && !c.dataset.prompt_template.includes('{prompt}')) {
    add(
      'dataset.prompt_template',
      `must contain {prompt} where the question goes (got ${JSON.stringify(c.dataset.prompt_template)})`,
    );
  }
  if (c.dataset.system_prompt !== null && !c.dataset.use_chat_template) {
    add(
      'dataset.system_prompt',
      'needs dataset.use_chat_template: true (a raw prompt has no system message); put the text into dataset.prompt_template instead',
    );
  }
  const names = c.reward_funcs.map((r) => (typeof r === 'string' ? r : `${r.path}#${r.export}`));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) add('reward_funcs', `lists ${dup} twice; weight it with reward_weights instead`);
  return out;
}

/** Metric name of a reward function (`rewards/<name>/mean`): built-in name or the export name. */
export function rewardFuncName(r: RewardFuncSpec): string {
  return typeof r === 'string'
    ? r
    : r.export === 'default'
      ? r.path.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '')
      : r.export;
}

// ---------------------------------------------------------------------------------------------
// docs

function typeName(s: z.ZodType): string {
  const def = (s as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  switch (def.type) {
    case 'number': {
      const checks = (def.checks ?? []) as { _zod?: { def?: { format?: string } } }[];
      return checks.some((c) => c._zod?.def?.format === 'safeint') ? 'int' : 'number';
    }
    case 'boolean':
      return 'bool';
    case 'string':
      return 'string';
    case 'enum':
      return Object.values(def.entries as Record<string, string>).join('|');
    case 'nullable':
      return `${typeName(def.innerType as z.ZodType)} | null`;
    case 'optional':
    case 'default':
      return typeName(def.innerType as z.ZodType);
    case 'pipe': {
      // a refined/transformed input: describe what the user writes
      const inner = def.in as z.ZodType;
      const innerType = (inner as unknown as { _zod: { def: { type: string } } })._zod.def.type;
      return innerType === 'transform' ? typeName(def.out as z.ZodType) : typeName(inner);
    }
    case 'array':
      return `${typeName(def.element as z.ZodType)}[]`;
    case 'union':
      return (def.options as z.ZodType[]).map(typeName).join(' | ');
    case 'object':
      return `{ ${Object.keys(def.shape as object).join(', ')} }`;
    default:
      return String(def.type);
  }
}

function defaultText(d: Default<unknown>): string {
  if (d === REQUIRED) return 'required';
  if (isPerLoss(d)) return 'per loss_type: ' + LOSS_TYPES.map((t) => `${t} ${JSON.stringify(d.perLoss[t])}`).join(', ');
  return JSON.stringify(d);
}

/** Every field, grouped by topic: name, type, default, meaning (for `gpg-rl train --help`). */
export function describeConfig(): string {
  const lines: string[] = [
    'Recipe fields (YAML; override any with --set key=value, nested keys dotted: --set dataset.limit=100):',
  ];
  const emit = (table: Record<string, Field>, prefix: string) => {
    let group = '';
    for (const [k, fld] of Object.entries(table)) {
      const heading = prefix ? `${fld.group} (${prefix}*)` : fld.group;
      if (heading !== group) lines.push('', `> ${(group = heading)}`);
      lines.push(`  ${prefix}${k} (${typeName(fld.schema)}; default ${defaultText(fld.default)})`);
      lines.push(`      ${fld.doc}`);
    }
  };
  emit(FIELDS as Record<string, Field>, '');
  emit(DATASET_FIELDS as Record<string, Field>, 'dataset.');
  return lines.join('\n');
}
