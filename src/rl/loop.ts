/**
 * @module rl/loop
 * The GPG training loop, read top to bottom (nanoGPT's train.py shape):
 *
 *   setup:  config → model (+ frozen reference when beta > 0) → tokenizer → prompts → rewards
 *           (everything validated before the run folder is created, so bad input leaves nothing)
 *   loop:   1) sample prompts → G completions each → rewards        (rollout.ts)
 *           2) β_th resampling (gpg) / dynamic sampling (dapo)       (alpha.ts)
 *           3) advantages A = r − mean_g (÷ std_g when scale_rewards) (advantages.ts)
 *           4) micro-batches: token log-probs → loss → backward       (losses.ts, DESIGN §5)
 *           5) clip grad norm, AdamW step with the lr schedule        (schedule.ts)
 *           6) metrics.jsonl row, completions.jsonl sample, checkpoint, progress line
 *   end:    final HF model folder in <output_dir>/model, report.html
 *
 * `train(config, { rewardFns })` is the public API; `gpg-rl train` is a thin wrapper over it.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../model/safetensors.ts';
import { join, resolve } from 'node:path';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward, noGrad } from '../tensor/tape.ts';
import { setAutocast } from '../tensor/ops/matmul.ts';
import { AdamW, clipGradNorm, gradNorm as globalGradNorm } from '../tensor/optim.ts';
import { setNumThreads } from '../backend/index.ts';
import { CausalLM } from '../model/decoder.ts';
import { readGenerationConfig } from '../model/config.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { Rng } from '../data/rng.ts';
import { PromptSampler } from '../data/sampler.ts';
import { loadDataset, type PromptRow } from '../data/dataset.ts';
import { buildMessages, renderPrompt } from '../data/prompts.ts';
import { resolveRewards, type NamedReward, type RewardFn } from '../rewards/index.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';
import { ConfigError, GpgRlError } from '../errors.ts';
import { rewardFuncName, type TrainConfig } from './config.ts';
import { validateConfig } from './recipe.ts';
import { advantages, nanMeanStd, rewardStats } from './advantages.ts';
import { collectDynamic, collectWithThreshold, inverseAlpha as inverseAlphaOf } from './alpha.ts';
import { isGroupValid } from './advantages.ts';
import { computeLoss } from './losses.ts';
import { METRIC, MetricsWriter, ProgressBar, formatProgress, metricKeys, rewardMeanKey, rewardStdKey, truncateMetrics, type MetricsRow } from './metrics.ts';
import { writeReport } from './report.ts';
import { learningRateAt } from './schedule.ts';
import { packBatch } from './batch.ts';
import { rollout, type Group, type RolloutStats, type TrainRow } from './rollout.ts';
import { hashConfig, latestCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { builtinDataset, isBuiltin, resolveBuiltinModel } from './builtin.ts';

export interface TrainOptions {
  /** Reward functions given in code (replace `reward_funcs`); weights from `reward_weights` in the same order. */
  rewardFns?: Record<string, RewardFn> | NamedReward[];
  /** Folder that relative paths in a raw config resolve against (default: cwd). */
  baseDir?: string;
  /** Continue from the newest checkpoint in output_dir. */
  resume?: boolean;
  /** Progress/log lines (default: stderr with a progress bar on a TTY). */
  log?: (line: string) => void;
  /** Already-built pieces (the demo passes its warm-started model and the folder it came from). */
  model?: CausalLM;
  tokenizer?: TextTokenizer;
  modelDir?: string;
  rows?: PromptRow[];
  /** Called after each step with its metrics row. */
  onStep?: (row: MetricsRow) => void;
  /** Validate everything and stop before creating the run folder. */
  dryRun?: boolean;
  /**
   * Stop after the step in which this many completions have been generated in total (resampling
   * included): the ablation gives every arm the same generation budget.
   */
  maxGeneratedCompletions?: number;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  /** Completions and tokens generated over the run (resampling included). */
  generatedCompletions: number;
  generatedTokens: number;
  seconds: number;
  modelDir: string | null;
  metrics: MetricsRow[];
  model: CausalLM;
}

/** Fields that may change between a run and its --resume. */
const RESUMABLE = new Set(['max_steps', 'output_dir', 'save_steps', 'logging_steps', 'eval_steps', 'eval_benchmarks', 'eval_limit', 'log_completions', 'num_completions_to_log', 'threads']);

export async function train(configIn: TrainConfig | Record<string, unknown>, opts: TrainOptions = {}): Promise<TrainResult> {
  const cfg = isResolved(configIn) ? configIn : validateConfig(configIn, 'config', { baseDir: opts.baseDir });
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  if (cfg.threads > 0) setNumThreads(cfg.threads);
  const runDir = resolve(cfg.output_dir);

  // ---- setup: validate and build everything before touching the run folder --------------
  const existing = existsSync(runDir) && readdirSync(runDir).length > 0;
  if (existing && !opts.resume && !opts.dryRun) {
    throw new ConfigError(`output_dir ${cfg.output_dir} already holds a run; pass --resume to continue it, or choose another output_dir (--set output_dir=runs/new)`);
  }
  const G = cfg.num_generations;
  const stepBatch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps; // completions per optimizer step
  const promptsPerStep = stepBatch / G;

  let model: CausalLM;
  let tokenizer: TextTokenizer;
  let modelSourceDir: string | null = null;
  let tokenizerFiles: Record<string, string> | undefined;
  if (opts.model && opts.tokenizer) {
    model = opts.model;
    tokenizer = opts.tokenizer;
    modelSourceDir = opts.modelDir ?? null;
  } else if (isBuiltin(cfg.model_name_or_path)) {
    // a dry run validates with the tiny model (same tokenizer) instead of building the warm start
    const name = opts.dryRun && cfg.model_name_or_path === 'builtin:demo-warmstart' ? 'builtin:tiny' : cfg.model_name_or_path;
    const b = await resolveBuiltinModel(name, cfg.seed, log);
    ({ model, tokenizer } = b);
    tokenizerFiles = b.dir ? undefined : b.tokenizerFiles;
    modelSourceDir = b.dir ?? null;
  } else {
    modelSourceDir = cfg.model_name_or_path;
    model = CausalLM.load(modelSourceDir);
    tokenizer = TextTokenizer.fromDir(modelSourceDir);
  }
  const generation = modelSourceDir ? readGenerationConfig(modelSourceDir, model.cfg) : null;
  const eos = [...new Set([...(generation?.eosTokenIds ?? []), ...model.cfg.eosTokenIds, ...(tokenizer.eosTokenId !== null ? [tokenizer.eosTokenId] : [])])];
  if (eos.length === 0) throw new ConfigError(`${cfg.model_name_or_path}: no eos token id (config.json, generation_config.json or tokenizer_config.json); generation would never stop`);
  const padId = tokenizer.padTokenId ?? model.cfg.padTokenId ?? eos[0]!;

  // prompts: load, render (chat template or raw template), tokenize, length filter
  const ds = cfg.dataset;
  let rawRows: PromptRow[];
  let dropped: Record<string, number> = {};
  if (opts.rows) rawRows = opts.rows;
  else if (isBuiltin(ds.path)) rawRows = builtinDataset(ds.path, cfg.seed);
  else {
    const loaded = await loadDataset({ path: ds.path, format: ds.format as 'auto', promptField: ds.prompt_field, answerField: ds.answer_field, answerExtraction: ds.answer_extraction, limit: ds.limit ?? undefined });
    rawRows = loaded.rows;
    dropped = { ...loaded.dropped };
  }
  const rows: TrainRow[] = [];
  let tooLong = 0;
  for (const r of rawRows) {
    const messages = buildMessages(r, { systemPrompt: ds.system_prompt ?? undefined, promptTemplate: ds.prompt_template ?? undefined });
    const text = renderPrompt(messages, tokenizer, { useChatTemplate: ds.use_chat_template });
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    if (ids.length === 0 || ids.length > cfg.max_prompt_length) {
      tooLong++;
      continue;
    }
    rows.push({ ...r, text, ids });
  }
  if (rows.length === 0) throw new ConfigError(`dataset ${ds.path}: no usable prompt (${rawRows.length} rows, ${tooLong} longer than max_prompt_length ${cfg.max_prompt_length}); raise max_prompt_length or check dataset.prompt_field`);

  // rewards
  const needsVerifier = cfg.reward_funcs.some((r) => r === 'accuracy' || r === 'cosine');
  const verifier = needsVerifier && !opts.rewardFns ? new VerifierPool({ timeoutMs: 2000 }) : null;
  let rewards: NamedReward[];
  try {
    if (opts.rewardFns) {
      const list = Array.isArray(opts.rewardFns) ? opts.rewardFns : Object.entries(opts.rewardFns).map(([name, fn]) => ({ name, fn, weight: 1 }));
      const w = cfg.reward_weights;
      if (w && w.length !== list.length) throw new ConfigError(`reward_weights has ${w.length} entries but ${list.length} reward functions were passed to train()`);
      rewards = list.map((r, i) => ({ ...r, weight: w ? w[i]! : r.weight }));
    } else {
      rewards = await resolveRewards(
        cfg.reward_funcs.map((r) => (typeof r === 'string' ? r : { path: r.path, export: r.export, name: rewardFuncName(r) })),
        cfg.reward_weights ?? undefined,
        {
          baseDir: opts.baseDir ?? process.cwd(),
          cosineMaxLen: cfg.cosine_max_len,
          cosine: { minValueCorrect: cfg.cosine_min_value_correct, maxValueCorrect: cfg.cosine_max_value_correct, minValueWrong: cfg.cosine_min_value_wrong, maxValueWrong: cfg.cosine_max_value_wrong, lengthUnit: cfg.cosine_length_unit },
          formatPattern: cfg.format_pattern ?? undefined,
          verifier: verifier ?? undefined,
        },
      );
    }
  } catch (e) {
    await verifier?.close();
    throw e;
  }
  const totalSteps = cfg.max_steps > 0 ? cfg.max_steps : Math.max(1, Math.ceil((cfg.num_train_epochs * rows.length) / promptsPerStep));
  // the lr schedule runs over optimizer updates: num_iterations of them per step (DESIGN §5)
  const scheduleSteps = totalSteps * cfg.num_iterations;
  const configHash = hashConfig(Object.fromEntries(Object.entries(cfg).filter(([k]) => !RESUMABLE.has(k))));
  if (opts.dryRun) {
    await verifier?.close();
    log(`dry run: ${cfg.output_dir}: ${rows.length} prompts (${tooLong} over max_prompt_length, ${JSON.stringify(dropped)} dropped at load), ${rewards.length} reward function(s) [${rewards.map((r) => r.name).join(', ')}], ${totalSteps} steps of ${promptsPerStep} prompts × ${G} completions, model ${model.cfg.architecture} ${(model.numParameters() / 1e6).toFixed(2)}M params`);
    return { runDir, steps: 0, generatedCompletions: 0, generatedTokens: 0, seconds: 0, modelDir: null, metrics: [], model };
  }

  // ---- state: optimizer, RNGs, data order (fresh or from the newest checkpoint) ----------
  const rng = new Rng(cfg.seed, 1); // sampling
  let sampler = new PromptSampler(rows, cfg.seed);
  const decayed = (name: string) => !name.endsWith('.bias') && !name.endsWith('norm.weight');
  const named = [...model.params.entries()];
  let optimizer: AdamW | null = null;
  let startStep = 0;
  let optimizerStep = 0;
  const counters: Record<string, number> = { skipped_steps: 0, reward_failures: 0 };
  // The frozen reference (k3 KL) is the initial policy, copied before a resume overwrites the
  // weights with the checkpoint's (also right for built-in or in-memory models with no folder).
  const ref = cfg.beta > 0 ? CausalLM.fromHost(model.cfg, model.toHost()) : null;
  if (opts.resume) {
    let ck: ReturnType<typeof latestCheckpoint>;
    try {
      ck = latestCheckpoint(runDir);
    } catch (e) {
      // a damaged checkpoint: report it, and release the verifier workers so the process can exit
      ref?.dispose();
      await verifier?.close();
      throw e;
    }
    if (!ck && existing) {
      // killed before its first checkpoint: start over, dropping the rows of the lost steps
      truncateMetrics(join(runDir, 'metrics.jsonl'), 0);
      truncateJsonl(join(runDir, 'completions.jsonl'), 0);
    }
    if (ck) {
      if (ck.data.state.configHash !== configHash) {
        ref?.dispose();
        await verifier?.close();
        throw new ConfigError(`--resume: ${ck.dir} was written with different settings (only ${[...RESUMABLE].join(', ')} may change); use the original recipe or another output_dir`);
      }
      const weights = CausalLM.load(ck.dir);
      for (const [name, p] of model.params) p.copyFrom(weights.params.get(name)!);
      weights.dispose();
      startStep = ck.data.state.step;
      optimizerStep = ck.data.state.optimizerStep;
      sampler = PromptSampler.restore(rows, ck.data.state.sampler);
      rng.setState(ck.data.state.rng);
      Object.assign(counters, ck.data.state.counters);
      optimizer = new AdamW(named.map(([n, p]) => ({ param: p, weightDecay: decayed(n) ? cfg.weight_decay : 0 })), { lr: cfg.learning_rate, beta1: cfg.adam_beta1, beta2: cfg.adam_beta2, eps: cfg.adam_epsilon });
      optimizer.loadState({ step: optimizerStep, m: named.map(([n]) => ck.data.m.get(n)!), v: named.map(([n]) => ck.data.v.get(n)!) });
      truncateMetrics(join(runDir, 'metrics.jsonl'), startStep);
      truncateJsonl(join(runDir, 'completions.jsonl'), startStep);
      log(`resuming ${cfg.output_dir} from ${ck.dir} (step ${startStep})`);
    }
  }
  optimizer ??= new AdamW(named.map(([n, p]) => ({ param: p, weightDecay: decayed(n) ? cfg.weight_decay : 0 })), { lr: cfg.learning_rate, beta1: cfg.adam_beta1, beta2: cfg.adam_beta2, eps: cfg.adam_epsilon });

  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, 'trainer_config.json'), JSON.stringify(cfg, null, 1) + '\n');
  const rewardNames = rewards.map((r) => r.name);
  const keys = metricKeys({ rewardFns: rewardNames, beta: cfg.beta, lossType: cfg.loss_type, numIterations: cfg.num_iterations });
  const metrics = new MetricsWriter(join(runDir, 'metrics.jsonl'), keys);
  const bar = new ProgressBar(totalSteps, opts.log ? { write: (s: string) => opts.log!(s.replace(/\n$/, '')) } : process.stderr);
  const allRows: MetricsRow[] = [];
  setAutocast(cfg.bf16);
  model.setRequiresGrad(true);
  const tokenizerDir = modelSourceDir && existsSync(join(modelSourceDir, 'tokenizer.json')) ? modelSourceDir : null;

  const saveModel = (dir: string | null, step: number) => {
    const extra = tokenizerDir ? undefined : tokenizerFiles;
    const data = { state: { step, optimizerStep, sampler: sampler.state(), rng: rng.state(), counters: { ...counters }, configHash }, m: new Map<string, Float32Array>(), v: new Map<string, Float32Array>() };
    const st = optimizer!.state();
    named.forEach(([n], i) => {
      data.m.set(n, st.m[i]!);
      data.v.set(n, st.v[i]!);
    });
    const ck = saveCheckpoint(runDir, model.cfg, model.toHost(), data, { generation: generation ?? undefined, tokenizerFrom: tokenizerDir ?? undefined, extraFiles: extra });
    if (dir) {
      // staged, then renamed into place: a kill never leaves a half-written <output_dir>/model
      const stage = `${dir}.staging-${process.pid}`;
      rmSync(stage, { recursive: true, force: true });
      mkdirSync(stage, { recursive: true });
      for (const f of readdirSync(ck)) if (f !== 'optimizer.safetensors' && f !== 'trainer_state.json') writeFileSync(join(stage, f), readFileSync(join(ck, f)));
      rmSync(dir, { recursive: true, force: true });
      renameSync(stage, dir);
    }
    return ck;
  };

  // benchmark subsets during training (eval_steps): greedy pass@1 into eval.jsonl
  const evalDuringTraining = async (step: number) => {
    const { evaluate } = await import('../eval/evaluate.ts');
    model.setRequiresGrad(false);
    const r = await evaluate(model, tokenizer, { benchmarks: cfg.eval_benchmarks, limit: cfg.eval_limit, maxNewTokens: cfg.max_completion_length, eosTokenIds: eos, padTokenId: padId, pool: verifier ?? undefined });
    model.setRequiresGrad(true);
    appendFileSync(join(runDir, 'eval.jsonl'), JSON.stringify({ step, ...r.summary }) + '\n');
    log(`step ${step}: eval pass@1 ${cfg.eval_benchmarks.map((b) => `${b} ${(r.summary.benchmarks[b]?.pass1 ?? NaN).toFixed(3)}`).join(', ')}, average ${r.summary.average.pass1.toFixed(3)}`);
  };

  // ---- the loop ---------------------------------------------------------------------------
  let generatedCompletions = 0;
  let generatedTokens = 0;
  let lastStep = totalSteps;
  const tRun = performance.now();
  try {
    for (let step = startStep; step < totalSteps; step++) {
      const t0 = performance.now();
      const stats: RolloutStats = { generatedTokens: 0, generationSeconds: 0, rewardSeconds: 0, rewardFailures: {}, errors: [] };
      // Generation takes the whole step batch at once (TRL's generation_batch_size = per-device batch ×
      // gradient_accumulation_steps), so the samples of a step do not depend on how it is split into
      // micro-batches for the backward pass, and accumulating 2 × B equals one batch of 2B (DESIGN §5).
      const ctx = {
        model, rng, G, maxNewTokens: cfg.max_completion_length, temperature: cfg.temperature, topP: cfg.top_p, topK: cfg.top_k,
        eosTokenIds: eos, padTokenId: padId, decode: (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true }),
        rewards, rewardTimeoutMs: cfg.reward_timeout_s * 1000, overlong: cfg.overlong_penalty, genBatch: stepBatch,
      };
      const sample = (n: number) => {
        generatedCompletions += n * G;
        return rollout(ctx, sampler.next(n), stats);
      };
      const isValid = (g: Group) => isGroupValid(g.rewards);

      // 1–2) experience, with GPG's β_th resampling or DAPO's dynamic sampling
      let groups: Group[];
      let invAlpha = 1;
      let rounds = 0;
      let skip = false;
      model.setRequiresGrad(false);
      if (cfg.loss_type === 'gpg' && cfg.adjust_gd && cfg.min_inverse_alpha !== null && cfg.min_inverse_alpha > 0) {
        const r = await collectWithThreshold(sample, isValid, { groupsPerStep: promptsPerStep, minInverseAlpha: cfg.min_inverse_alpha, maxRounds: cfg.max_resample_rounds });
        groups = r.groups;
        invAlpha = r.inverseAlpha;
        rounds = r.rounds;
        skip = r.skip;
        if (!r.thresholdReached && !r.skip) bar.log(`step ${step + 1}: valid-group fraction ${(r.validGroups / r.groups.length).toFixed(2)} below min_inverse_alpha ${cfg.min_inverse_alpha} after ${r.rounds} resampling rounds; proceeding with inverse_alpha ${r.inverseAlpha.toFixed(3)}`);
      } else if (cfg.dynamic_sampling) {
        const r = await collectDynamic(sample, isValid, { groupsPerStep: promptsPerStep, maxRounds: cfg.max_resample_rounds });
        groups = r.groups;
        rounds = r.rounds;
        skip = r.skip;
      } else {
        groups = await sample(promptsPerStep);
        if (cfg.loss_type === 'gpg' && cfg.adjust_gd) {
          const v = groups.filter(isValid).length;
          invAlpha = inverseAlphaOf(v, groups.length);
          skip = v === 0;
        }
      }
      model.setRequiresGrad(true);
      if (!(cfg.loss_type === 'gpg' && cfg.adjust_gd)) invAlpha = 1;
      const genSeconds = stats.generationSeconds;
      for (const e of stats.errors) {
        counters.reward_failures = (counters.reward_failures ?? 0) + 1;
        bar.log(`step ${step + 1}: reward ${e.name} failed (${e.kind}): ${e.message}`);
      }

      // 3) advantages over the whole step batch
      const rewardsAll = new Float64Array(groups.length * G);
      groups.forEach((g, k) => rewardsAll.set(g.rewards, k * G));
      const adv = advantages(rewardsAll, G, { scaleRewards: cfg.scale_rewards });
      const rs = rewardStats(rewardsAll, G);

      // 4–5) loss over micro-batches, then one optimizer step per iteration
      const seqPrompts: number[][] = [];
      const seqComps: number[][] = [];
      const seqKeep: boolean[] = [];
      for (const g of groups) for (let i = 0; i < G; i++) {
        seqPrompts.push(g.row.ids);
        seqComps.push(g.completions[i]!);
        seqKeep.push(!(cfg.mask_truncated_completions && !g.finished[i]));
      }
      const nSeq = seqPrompts.length;
      const mb = cfg.per_device_train_batch_size;
      const micro: Array<{ lo: number; hi: number; packed: ReturnType<typeof packBatch>; oldLp?: Float64Array; refLp?: Float64Array }> = [];
      let tokensAll = 0;
      for (let lo = 0; lo < nSeq; lo += mb) {
        const hi = Math.min(nSeq, lo + mb);
        const packed = packBatch(seqPrompts.slice(lo, hi), seqComps.slice(lo, hi), padId, seqKeep.slice(lo, hi));
        for (const x of packed.m) tokensAll += x;
        micro.push({ lo, hi, packed });
      }
      let lossSum = 0;
      let gradNorm = NaN;
      let entropySum = 0;
      let entropyCount = 0;
      let klSum = 0;
      let clipSum = 0;
      let trainTokens = 0;
      const tTrain = performance.now();
      let lr = learningRateAt(optimizerStep, scheduleSteps, { learningRate: cfg.learning_rate, warmupRatio: cfg.warmup_ratio, scheduler: cfg.lr_scheduler_type });
      if (skip) counters.skipped_steps = (counters.skipped_steps ?? 0) + 1;
      else {
        for (let it = 0; it < cfg.num_iterations; it++) {
          for (const mbk of micro) {
            const { packed } = mbk;
            const { B, T } = packed;
            if (cfg.beta > 0 && it === 0) mbk.refLp = denseLogps(ref!, packed, cfg.temperature);
            const res = tidy(() => {
              const { logps, index, entropy } = model.tokenLogps(packed, { temperature: cfg.temperature, select: packed.m, entropy: it === 0 });
              const lpC = logps.toFloat32();
              const lp = new Float64Array(B * (T - 1));
              for (let i = 0; i < index.length; i++) {
                if (!Number.isFinite(lpC[i]!)) throw new GpgRlError(`step ${step + 1}: the policy produced a non-finite token log-prob (${lpC[i]}) in micro-batch ${micro.indexOf(mbk) + 1}; the weights have diverged (lower learning_rate, keep max_grad_norm > 0, or check the model files)`, 'GPG_NONFINITE');
                lp[index[i]!] = lpC[i]!;
              }
              if (it === 0 && cfg.num_iterations > 1) mbk.oldLp = lp.slice();
              const out = computeLoss({
                lossType: cfg.loss_type, lp, oldLp: cfg.num_iterations > 1 ? mbk.oldLp : undefined, refLp: mbk.refLp, mask: packed.m,
                advantages: adv.subarray(mbk.lo, mbk.hi), B, Tm1: T - 1, epsilon: cfg.epsilon, epsilonHigh: cfg.epsilon_high, beta: cfg.beta,
                inverseAlpha: invAlpha, maxCompletionLength: cfg.max_completion_length, denominators: { tokens: tokensAll, sequences: nSeq },
              });
              if (index.length > 0) {
                const seed = new Float32Array(index.length);
                for (let i = 0; i < index.length; i++) seed[i] = out.dlp[index[i]!]!;
                backward(logps, Tensor.fromArray(seed, [index.length]));
              }
              if (entropy) for (const e of entropy) {
                entropySum += e;
                entropyCount++;
              }
              return out;
            });
            lossSum += res.loss;
            klSum += res.metrics.klSum ?? 0;
            clipSum += res.metrics.clippedTokens ?? 0;
            trainTokens += B * T;
          }
          const params = model.parameters();
          gradNorm = cfg.max_grad_norm > 0 ? clipGradNorm(params, cfg.max_grad_norm) : gradNormOf(params);
          lr = learningRateAt(optimizerStep, scheduleSteps, { learningRate: cfg.learning_rate, warmupRatio: cfg.warmup_ratio, scheduler: cfg.lr_scheduler_type });
          if (Number.isFinite(gradNorm)) optimizer.step(lr);
          else bar.log(`step ${step + 1}: non-finite gradient norm; update skipped`);
          optimizer.zeroGrad();
          optimizerStep++;
        }
      }
      const trainSeconds = (performance.now() - tTrain) / 1000;

      // 6) metrics, completions sample, checkpoint, progress
      const lens = groups.flatMap((g) => g.completions.map((c) => c.length));
      const truncated = groups.flatMap((g) => g.finished.map((f) => (f ? 0 : 1)));
      const row: MetricsRow = {
        [METRIC.step]: step + 1,
        [METRIC.loss]: skip ? NaN : lossSum / cfg.num_iterations,
        [METRIC.gradNorm]: gradNorm,
        [METRIC.learningRate]: lr,
        [METRIC.reward]: rs.reward,
        [METRIC.rewardStd]: rs.rewardStd,
        [METRIC.fracRewardZeroStd]: rs.fracRewardZeroStd,
        [METRIC.meanLength]: mean(lens),
        [METRIC.minLength]: lens.length ? Math.min(...lens) : NaN,
        [METRIC.maxLength]: lens.length ? Math.max(...lens) : NaN,
        [METRIC.clippedRatio]: mean(truncated),
        [METRIC.entropy]: entropyCount ? entropySum / entropyCount : NaN,
        [METRIC.inverseAlpha]: skip ? 0 : invAlpha,
        [METRIC.validGroups]: rs.validGroups,
        [METRIC.resampleRounds]: rounds,
        [METRIC.skippedSteps]: counters.skipped_steps ?? 0,
        [METRIC.tokensPerSGeneration]: genSeconds > 0 ? stats.generatedTokens / genSeconds : NaN,
        [METRIC.tokensPerSTraining]: trainSeconds > 0 && trainTokens > 0 ? trainTokens / trainSeconds : NaN,
        [METRIC.timeS]: (performance.now() - t0) / 1000,
      };
      for (const name of rewardNames) {
        const all = new Float64Array(groups.length * G);
        groups.forEach((g, k) => all.set(g.perFn[name] ?? new Float64Array(G).fill(NaN), k * G));
        const s = nanMeanStd(all);
        row[rewardMeanKey(name)] = s.mean;
        row[rewardStdKey(name)] = s.std;
      }
      if (cfg.beta > 0) row[METRIC.kl] = tokensAll > 0 ? klSum / cfg.num_iterations / tokensAll : NaN;
      if (keys.includes(METRIC.clipRatioRegionMean)) row[METRIC.clipRatioRegionMean] = tokensAll > 0 ? clipSum / cfg.num_iterations / tokensAll : NaN;
      metrics.write(row);
      allRows.push(row);
      if (cfg.log_completions) logCompletions(join(runDir, 'completions.jsonl'), step + 1, groups, adv, cfg.num_completions_to_log);
      opts.onStep?.(row);
      if ((step + 1) % cfg.logging_steps === 0 || step + 1 === totalSteps) bar.update(step + 1, formatProgress(row, totalSteps));
      generatedTokens += stats.generatedTokens;
      if (cfg.eval_steps > 0 && (step + 1) % cfg.eval_steps === 0) await evalDuringTraining(step + 1);
      if (opts.maxGeneratedCompletions !== undefined && generatedCompletions >= opts.maxGeneratedCompletions) {
        lastStep = step + 1;
        break;
      }
      if (cfg.save_steps > 0 && (step + 1) % cfg.save_steps === 0 && step + 1 < totalSteps) saveModel(null, step + 1);
    }
    bar.done?.();
    const modelDir = join(runDir, 'model');
    saveModel(modelDir, lastStep);
    writeReport(runDir, { config: cfg as unknown as Record<string, unknown>, title: `gpg-rl run: ${cfg.output_dir}` });
    return { runDir, steps: lastStep, generatedCompletions, generatedTokens, seconds: (performance.now() - tRun) / 1000, modelDir, metrics: allRows, model };
  } finally {
    metrics.close();
    setAutocast(false);
    model.setRequiresGrad(false);
    ref?.dispose();
    await verifier?.close();
  }
}

function isResolved(c: unknown): c is TrainConfig {
  return typeof c === 'object' && c !== null && 'epsilon_high' in c && typeof (c as { epsilon_high: unknown }).epsilon_high === 'number' && 'dynamic_sampling' in c;
}

function mean(xs: number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** max_grad_norm 0 = no clipping: only measure (clipGradNorm rejects an infinite bound). */
function gradNormOf(params: Tensor[]): number {
  return globalGradNorm(params);
}

/** Reference-model token log-probs as a dense [B*(T-1)] array (no gradient). */
function denseLogps(ref: CausalLM, packed: ReturnType<typeof packBatch>, temperature: number): Float64Array {
  const { B, T } = packed;
  return noGrad(() =>
    tidy(() => {
      const { logps, index } = ref.tokenLogps(packed, { temperature, select: packed.m });
      const v = logps.toFloat32();
      const out = new Float64Array(B * (T - 1));
      for (let i = 0; i < index.length; i++) out[index[i]!] = v[i]!;
      return out;
    }),
  );
}

function logCompletions(path: string, step: number, groups: Group[], adv: Float64Array, n: number): void {
  const lines: string[] = [];
  let k = 0;
  outer: for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi]!;
    for (let i = 0; i < g.completions.length; i++) {
      if (k >= n) break outer;
      const perFn: Record<string, number | null> = {};
      for (const [name, arr] of Object.entries(g.perFn)) perFn[name] = Number.isFinite(arr[i]!) ? arr[i]! : null;
      lines.push(JSON.stringify({ step, prompt: g.row.text, completion: g.texts[i], answer: g.row.answer, rewards: perFn, reward: g.rewards[i], advantage: adv[gi * g.completions.length + i], finished: g.finished[i] }));
      k++;
    }
  }
  if (lines.length) appendFileSync(path, lines.join('\n') + '\n');
}

/** Keeps only rows with step ≤ lastStep (resume). */
function truncateJsonl(path: string, lastStep: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      return (JSON.parse(l) as { step: number }).step <= lastStep;
    } catch {
      return false;
    }
  });
  writeFileAtomic(path, keep.length ? keep.join('\n') + '\n' : '');
}

