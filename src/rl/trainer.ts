/**
 * @module rl/trainer
 * The RL trainer, read top to bottom (nanoGPT's train.py shape). `train()` is the public API;
 * `gpg-rl train` is a thin wrapper over it. What differs between methods lives in the algorithm
 * family (rl/algorithms/); the trainer owns what they share:
 *
 *   setup:  config → model, tokenizer, prompts, rewards (rl/setup.ts; all validated before the run
 *           folder exists) → optimizer, RNGs, data order, frozen reference (fresh or resumed)
 *   step:   1) sample prompts → G completions each → rewards         (rollout.ts)
 *           2) the algorithm's collection (β_th resampling, dynamic sampling, …)
 *           3) the algorithm's advantages over the whole step batch
 *           4) micro-batches: token log-probs → the algorithm's loss → backward
 *           5) clip the gradient norm, AdamW step with the lr schedule  (src/train)
 *           6) metrics.jsonl row, completions.jsonl sample, eval, checkpoint, progress line
 *   end:    final HF model folder in <output_dir>/model, report.html
 */
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Tensor, tidy } from '../tensor/tensor.ts';
import { backward, noGrad } from '../tensor/tape.ts';
import { setAutocast } from '../tensor/ops/matmul.ts';
import type { AdamW } from '../tensor/optim.ts';
import { backendLine, defaultBackend, setNumThreads } from '../backend/index.ts';
import { CausalLM } from '../model/decoder.ts';
import { loadAdapterWeights, writeAdapterFiles } from '../model/lora.ts';
import { streamed, type StreamedTensor } from '../model/folder.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { Rng } from '../data/rng.ts';
import { PromptSampler } from '../data/sampler.ts';
import { rowsFromCode, rowsSource, type PromptRow, type RowInput } from '../data/dataset.ts';
import { closeRewards, type NamedReward, type RewardFn } from '../rewards/index.ts';
import { writeFileAtomic, replaceDirAtomic } from '../io/atomic.ts';
import { packBatch, planMicroBatches, type PackedBatch } from '../train/batch.ts';
import { learningRateAt } from '../train/schedule.ts';
import { makeOptimizer, optimizerStep } from '../train/optimizer.ts';
import { CheckpointError, ConfigError, GpgRlError, RunStoppedError } from '../errors.ts';
import type { TrainConfig } from './config.ts';
import { validateConfig } from './recipe.ts';
import { nanMeanStd, rewardStats, stepRewards } from './advantages.ts';
import { algorithmFor, type Algorithm, type Companion, type StepBatch } from './algorithms/index.ts';
import {
  METRIC,
  MetricsWriter,
  ProgressBar,
  formatProgress,
  metricKeys,
  rewardMeanKey,
  rewardStdKey,
  truncateMetrics,
  type MetricsRow,
} from './metrics.ts';
import { writeReport } from './report.ts';
import {
  drawSeeds,
  generationDtype,
  newStats,
  remoteSampling,
  rollout,
  rolloutContext,
  type Group,
  type Pregenerated,
  type RolloutContext,
  type RolloutStats,
  type TrainRow,
} from './rollout.ts';
import { hashConfig, latestCheckpoint, pruneCheckpoints, saveCheckpoint, type PendingRollout } from './checkpoint.ts';
import { Tracking } from './tracking.ts';
import { Pace } from '../io/progress.ts';
import {
  CallbackError,
  ROWS_PREFIX,
  runCallback,
  type CompletionRecord,
  type StepInfo,
  type TrainCallbacks,
} from './callbacks.ts';
import { prepareRun, type RunSetup } from './setup.ts';
import { PolicyUpdate } from './update.ts';
import { changedSettings, openRunFolder, ROLLOUT_WEIGHTS_DIR, writeRunConfig, type RunFolder } from './run-folder.ts';
import { RolloutServers, RolloutServersError } from '../generate/remote.ts';
import { saveModelFolder } from '../model/folder.ts';
import { positionWarning } from '../generate/generate.ts';
import { openWorld, type Comm } from '../parallel/mpi.ts';

export type { CompletionRecord, StepInfo, TrainCallbacks } from './callbacks.ts';

/** The weights generation reads for this run (`generation_dtype`, `auto` resolved for the model). */
export interface TrainOptions extends TrainCallbacks {
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
  /**
   * Prompt rows given in code (`{ prompt, answer? }`): `dataset` may then be left out; its other
   * fields (prompt_template, system_prompt, …) still apply. The run records
   * `dataset.path: rows:<n>:<hash>` (data/dataset.ts `rowsSource`).
   */
  rows?: readonly RowInput[];
  /** Validate everything and stop before creating the run folder. */
  dryRun?: boolean;
  /**
   * Stop after the step in which this many completions have been generated in total (resampling
   * included): the ablation gives every arm the same generation budget.
   */
  maxGeneratedCompletions?: number;
  /**
   * Stop request (the CLI aborts it on Ctrl-C / SIGTERM): the current step is finished, then
   * checkpoint-<step> and report.html are saved and train() rejects with a RunStoppedError
   * (code GPG_INTERRUPTED) naming the checkpoint that `--resume` continues from.
   */
  signal?: AbortSignal;
  /**
   * The MPI world for data-parallel training (src/parallel/mpi.ts); default: the one `mpirun` / `srun`
   * launched this process into (null for one process). See `dataParallel` below.
   */
  world?: Comm | null;
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
  /**
   * Parameters the run held in memory, counted from its models: the policy, the frozen reference
   * copy (0 without one, and with LoRA, whose reference is the policy with adapters off) and what
   * the family trains beside the policy (PPO's critic; 0 without).
   */
  parameters: { policy: number; reference: number; companion: number };
}

/** Fields that may change between a run and its --resume. */
const RESUMABLE = new Set([
  'max_steps',
  'output_dir',
  'save_steps',
  'logging_steps',
  'eval_steps',
  'eval_benchmarks',
  'eval_limit',
  'log_completions',
  'num_completions_to_log',
  'threads',
  'report_to',
  'logging_dir',
  'run_name',
  'save_total_limit',
  // memory knobs: the same update (checkpointing bitwise, token-budget micro-batches up to rounding)
  'gradient_checkpointing',
  'max_tokens_per_microbatch',
  'max_consecutive_skipped_steps',
  // where rollouts run, not what they compute (a fleet may change between a run and its resume)
  'rollout_servers',
  'rollout_server_retries',
  'rollout_server_timeout_s',
  // 0 ↔ 1 on resume stays correct: a checkpoint's prefetched rollout (max_staleness 1) names its
  // prompts and seeds, and a max_staleness 0 resume generates them again with the current weights
  'max_staleness',
]);

export async function train(
  configIn: TrainConfig | Record<string, unknown>,
  optsIn: TrainOptions = {},
): Promise<TrainResult> {
  const world = optsIn.world !== undefined ? optsIn.world : openWorld();
  if (!world || world.size <= 1) return trainOne(configIn, optsIn, null);
  // a failure on any rank ends every rank with its message (never a rank waiting forever in a collective)
  try {
    return await trainOne(configIn, optsIn, world);
  } catch (e) {
    process.stderr.write(
      `gpg-rl: rank ${world.rank} of ${world.size}: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    return world.abort(1);
  }
}

async function trainOne(
  configIn: TrainConfig | Record<string, unknown>,
  optsIn: TrainOptions,
  world: Comm | null,
): Promise<TrainResult> {
  const opts = { ...optsIn, rows: optsIn.rows ? rowsFromCode(optsIn.rows) : undefined };
  const cfgIn = withRowsSource(
    isResolved(configIn)
      ? configIn
      : validateConfig(withRowsSource(configIn, opts), 'config', { baseDir: opts.baseDir }),
    opts,
  );
  // data-parallel: the run is the single-process run of the global batch (gradient accumulation × ranks)
  const cfg = world ? dataParallel(cfgIn, world) : cfgIn;
  if (world && world.rank > 0) opts.log = () => {}; // rank 0 reports
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const cores = availableParallelism();
  if (cfg.threads > cores)
    throw new ConfigError(
      `threads: must be at most the ${cores} CPU cores of this machine (got ${cfg.threads}); more threads than cores only slow every step down (0 = all cores)`,
    );
  if (cfg.threads > 0) setNumThreads(cfg.threads);
  const outDir = resolve(cfg.output_dir);
  const algo = algorithmFor(cfg.loss_type);
  if (opts.dryRun) {
    const setup = await prepareRun(cfg, opts, log);
    return dryRun(cfg, setup, outDir, log);
  }
  // ranks > 0 write into a scratch folder (removed at the end); rank 0 owns output_dir
  const scratch = world && world.rank > 0 ? mkdtempSync(join(tmpdir(), `gpg-rl-rank${world.rank}-`)) : null;
  const runDir = scratch ? join(scratch, 'run') : outDir;
  // the folder first (before the model, data and verifier workers): lock, refusals, leftovers
  const folder = openRunFolder(runDir, cfg.output_dir, !!opts.resume && !scratch);
  if (folder.cleaned.length)
    log(
      `${cfg.output_dir}: removed ${folder.cleaned.length} leftover(s) of a killed run: ${folder.cleaned.join(', ')}`,
    );
  let setup: RunSetup;
  let run: Run;
  try {
    setup = await prepareRun(cfg, opts, log);
  } catch (e) {
    folder.abandon();
    throw e;
  }
  try {
    const longest = setup.rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
    const warn = positionWarning(setup.model.cfg.maxPositionEmbeddings, longest, cfg.max_completion_length);
    if (warn) log(`warning: ${warn}`);
    // auto's choice is named when it is not the plain fp32 (tiny models never print it)
    if (
      cfg.generation_dtype === 'auto' &&
      !cfg.rollout_servers.length &&
      generationDtype(cfg, setup.model) !== 'float32'
    )
      log(
        `generation_dtype auto: bfloat16 weights for generation (${(setup.model.numParameters() / 1e6).toFixed(0)}M parameters)`,
      );
    run = await Run.open(cfg, algo, setup, runDir, !folder.fresh, opts, log, world, outDir);
  } catch (e) {
    await closeSetup(setup);
    folder.abandon();
    throw e;
  }
  const autocastBefore = setAutocast(cfg.bf16);
  let completed = 0; // steps completed by this process
  try {
    for (let step = run.startStep; step < run.totalSteps; step++) {
      if (opts.signal?.aborted) throw await run.interrupted(step, completed);
      const t0 = performance.now();
      const batch = await run.collect(step).catch(async (e: unknown) => {
        throw e instanceof RolloutServersError ? await run.serversFailed(step, e) : e;
      }); //                                                                     1–2
      // max_staleness 1: the next step's rollout is requested now, with the weights the servers
      // have, and generated during this step's update (unless the run stops after this step)
      const budgetHit =
        opts.maxGeneratedCompletions !== undefined && run.generatedCompletions >= opts.maxGeneratedCompletions;
      if (!budgetHit && !opts.signal?.aborted) await run.prefetch(step + 1);
      const update = run.optimize(batch, step); //                                 3–5
      // what the run computes on, named before its first step's line (a silent fallback to the CPU
      // shows there; a run that fails before that prints only its one-line error)
      if (completed === 0) run.bar.log(backendLine(defaultBackend().describe()));
      const row = run.record(step, batch, update, (performance.now() - t0) / 1000); // 6
      completed++;
      let stop = await run.callback('onStep', step + 1, () => opts.onStep?.(row, run.info(step + 1)));
      if (opts.onCompletions) {
        const recs = completionRecords(step + 1, batch.groups, update.advantages);
        stop =
          (await run.callback('onCompletions', step + 1, () => opts.onCompletions!(recs, run.info(step + 1)))) || stop;
      }
      run.checkSkipped(step, batch);
      if (cfg.eval_steps > 0 && (step + 1) % cfg.eval_steps === 0) stop = (await run.evaluate(step + 1)) || stop;
      const budget =
        opts.maxGeneratedCompletions !== undefined && run.generatedCompletions >= opts.maxGeneratedCompletions;
      if (stop || budget) {
        if (stop) log(`step ${step + 1}: a callback asked to stop; saving the model and the report`);
        run.lastStep = step + 1;
        break;
      }
      if (cfg.save_steps > 0 && (step + 1) % cfg.save_steps === 0 && step + 1 < run.totalSteps)
        stop = (await run.saveStep(step + 1)) || stop;
      if (stop) {
        log(`step ${step + 1}: a callback asked to stop; saving the model and the report`);
        run.lastStep = step + 1;
        break;
      }
      if (opts.signal?.aborted && step + 1 < run.totalSteps) throw await run.interrupted(step + 1, completed);
    }
    return await run.finish();
  } catch (e) {
    if (completed === 0) {
      // nothing completed in this process: a fresh run removes what it wrote (the folder too)
      await run.close();
      folder.abandon();
    }
    throw e;
  } finally {
    setAutocast(autocastBefore);
    await run.close();
    folder.release();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Data-parallel training (`mpirun -np N gpg-rl train`): per_device_train_batch_size and
 * gradient_accumulation_steps are per rank (TRL's meaning), so the run is the single-process run
 * with gradient_accumulation_steps × N, and that is the config every rank holds (its hash, its
 * trainer_config.json: `--resume` works with any N that keeps the global batch). Each rank rolls
 * out a contiguous share of every sample of prompts with the seeds one process would draw, the
 * groups are gathered, so α, valid groups, advantages, token counts and metrics are computed from
 * the whole batch on every rank; each rank runs the backward pass of a contiguous share of the
 * micro-batches, and the gradients are summed (all-reduce) before the optimizer step.
 */
function dataParallel(cfg: TrainConfig, world: Comm): TrainConfig {
  const algo = algorithmFor(cfg.loss_type);
  if (algo.update || algo.companion)
    throw new ConfigError(
      `loss_type: ${cfg.loss_type} is not data-parallel yet (it owns its update or trains a critic); under mpirun use gpg, grpo, dapo or dr_grpo, or run one process`,
    );
  if (cfg.rollout_servers.length > 0)
    throw new ConfigError(
      `rollout_servers: not under mpirun yet (every rank would sync weights to the servers); got ${cfg.rollout_servers.length} server(s): use local rollouts (rollout_servers: []) or run one process`,
    );
  if (cfg.use_peft && cfg.lora_dropout > 0)
    throw new ConfigError(
      `lora_dropout: must be 0 under mpirun (got ${cfg.lora_dropout}): dropout masks follow the order of a step's forward passes, which differs on each rank; set lora_dropout: 0 or run one process`,
    );
  return { ...cfg, gradient_accumulation_steps: cfg.gradient_accumulation_steps * world.size };
}

/** Releases what prepareRun started (verifier workers, user reward workers). */
async function closeSetup(s: RunSetup): Promise<void> {
  await s.verifier?.close();
  await closeRewards(s.rewards);
}

/** What one step's update produced (NaN loss / grad norm when the step was skipped). */
interface StepUpdate {
  loss: number;
  gradNorm: number;
  lr: number;
  advantages: Float64Array;
  entropy: number;
  sums: Record<string, number>;
  tokens: number;
  /** Optimizer updates made (the algorithm's iterations, or its updates() plan). */
  updates: number;
  trainTokens: number;
  trainSeconds: number;
  /** |training-precision log-prob − sampling log-prob| over completion tokens (TRL's sampling/sampling_logp_difference). */
  samplingDiff: { mean: number; max: number };
  stats: RolloutStats;
}

/** The sampling RNG's and the prompt sampler's state (undone when every rollout server failed). */
interface DrawState {
  rng: ReturnType<Rng['state']>;
  sampler: ReturnType<PromptSampler<TrainRow>['state']>;
}

/**
 * max_staleness 1: the rollout of loop step `step` (0-based), requested from the servers before the
 * previous step's update (with the weights of optimizer step `weightsAt`). `done` settles once the
 * answer is in (`gen`) or every server failed (`error`); `before` is the draw state before its
 * prompts and seeds were drawn. A pending restored from a checkpoint has `gen` already; without
 * `gen` and `error` (a max_staleness 0 resume) its prompts and seeds are generated again now.
 */
interface Pending {
  step: number;
  rows: TrainRow[];
  seeds: bigint[][];
  before: DrawState;
  weightsAt: number;
  done: Promise<void>;
  gen?: Pregenerated;
  error?: unknown;
}

/** The state of a run between steps: optimizer, RNGs, data order, counters, outputs. */
class Run {
  generatedCompletions = 0;
  generatedTokens = 0;
  lastStep: number;
  private readonly rows: MetricsRow[] = [];
  private readonly t0 = performance.now();
  private readonly pace: Pace;
  private readonly stats: RolloutStats = newStats();
  private tracking: Tracking | null = null;
  private callbacks: TrainCallbacks = {};
  private closed = false;
  /** Why the latest steps were skipped (reward failures), for the consecutive-skip error. */
  private skipReason = '';
  /** The MPI world of a data-parallel run (null for one process). */
  world: Comm | null = null;
  /** rollout_servers: the fleet, the optimizer step its weights are at, the RNG/sampler state before this step's collect. */
  private servers: RolloutServers | null = null;
  private serversAt = -1;
  private beforeCollect: DrawState | null = null;
  /** max_staleness 1: the next step's rollout, requested before this step's update. */
  private pending: Pending | null = null;
  /** Optimizer steps between the weights that generated this step's (first-round) completions and the policy. */
  private staleness = 0;

  private constructor(
    readonly cfg: TrainConfig,
    readonly algo: Algorithm,
    readonly setup: RunSetup,
    readonly runDir: string,
    readonly startStep: number,
    private optimizerStep_: number,
    private sampler: PromptSampler<TrainRow>,
    private readonly rng: Rng,
    private readonly optimizer: AdamW,
    private readonly counters: Record<string, number>,
    private readonly ref: CausalLM | null,
    private readonly companion: Companion | null,
    private readonly configHash: string,
    private readonly metrics: MetricsWriter,
    readonly bar: ProgressBar,
    private readonly log: (s: string) => void,
  ) {
    this.lastStep = setup.totalSteps;
    this.pace = new Pace(setup.totalSteps, startStep);
  }

  get totalSteps(): number {
    return this.setup.totalSteps;
  }

  /** Fresh state, or the newest checkpoint's with --resume; then the run folder and its writers. */
  static async open(
    cfg: TrainConfig,
    algo: Algorithm,
    setup: RunSetup,
    runDir: string,
    existing: boolean,
    opts: TrainOptions,
    log: (s: string) => void,
    world: Comm | null = null,
    checkpointDir = runDir,
  ): Promise<Run> {
    const { model } = setup;
    const configHash = hashConfig(Object.fromEntries(Object.entries(cfg).filter(([k]) => !RESUMABLE.has(k))));
    const rng = new Rng(cfg.seed, 1); // sampling
    let sampler = new PromptSampler(setup.rows, cfg.seed);
    const named = model.trainableParameters();
    const optimizer = makeOptimizer(named, {
      learningRate: cfg.learning_rate,
      weightDecay: cfg.weight_decay,
      beta1: cfg.adam_beta1,
      beta2: cfg.adam_beta2,
      eps: cfg.adam_epsilon,
    });
    let startStep = 0;
    let optimizerStep = 0;
    const counters: Record<string, number> = { skipped_steps: 0, reward_failures: 0 };
    let pendingRecord: PendingRollout | null = null;
    // The frozen reference (k3 KL) is the initial policy, copied before a resume overwrites the
    // weights with the checkpoint's (also right for built-in or in-memory models with no folder).
    // With LoRA it is no copy: the same model with its adapters switched off (refLogps).
    const ref = algo.usesReference(cfg) && !model.lora ? model.clone() : null;
    // what the family trains beside the policy (PPO's critic), also from the initial policy
    let companion: Companion | null = null;
    try {
      companion = algo.companion?.(cfg, { policy: model, seed: cfg.seed, log }) ?? null;
      if (opts.resume) {
        const ck = latestCheckpoint(checkpointDir); // ranks > 0 read rank 0's
        if (!ck && existing) {
          // killed before its first checkpoint: start over, dropping the rows of the lost steps
          truncateMetrics(join(runDir, 'metrics.jsonl'), 0);
          truncateJsonl(join(runDir, 'completions.jsonl'), 0);
        }
        if (ck) {
          if (ck.data.state.configHash !== configHash) {
            const changed = changedSettings(checkpointDir, cfg, RESUMABLE);
            throw new ConfigError(
              `--resume: ${ck.dir} was written with different settings${changed.length ? `: ${changed.join(', ')} changed` : ''} (only ${[...RESUMABLE].join(', ')} may change); use the original recipe or another output_dir`,
            );
          }
          if (model.lora) loadAdapterWeights(model, ck.dir);
          else {
            const weights = CausalLM.load(ck.dir);
            for (const [name, p] of model.params) p.copyFrom(weights.params.get(name)!);
            weights.dispose();
          }
          startStep = ck.data.state.step;
          optimizerStep = ck.data.state.optimizerStep;
          companion?.load(join(ck.dir, companion.dirName));
          sampler = PromptSampler.restore(setup.rows, ck.data.state.sampler);
          rng.setState(ck.data.state.rng);
          Object.assign(counters, ck.data.state.counters);
          optimizer.loadState({
            step: optimizerStep,
            m: named.map(([n]) => ck.data.m.get(n)!),
            v: named.map(([n]) => ck.data.v.get(n)!),
          });
          truncateMetrics(join(runDir, 'metrics.jsonl'), startStep);
          truncateJsonl(join(runDir, 'completions.jsonl'), startStep);
          if (ck.data.state.pending) pendingRecord = ck.data.state.pending;
          log(`resuming ${cfg.output_dir} from ${ck.dir} (step ${startStep})`);
        }
      }
    } catch (e) {
      // a damaged or foreign checkpoint: report it, and release what was built so the process can exit
      ref?.dispose();
      companion?.dispose();
      optimizer.dispose();
      throw e;
    }
    writeRunConfig(runDir, cfg, defaultBackend().describe());
    const keys = metricKeys({ rewardFns: setup.rewards.map((r) => r.name), algorithmKeys: algo.metricKeys(cfg) });
    const metrics = new MetricsWriter(join(runDir, 'metrics.jsonl'), keys);
    const bar = new ProgressBar(
      setup.totalSteps,
      opts.log ? { write: (s: string) => opts.log!(s.replace(/\n$/, '')) } : process.stderr,
    );
    model.setRequiresGrad(true);
    const run = new Run(
      cfg,
      algo,
      setup,
      runDir,
      startStep,
      optimizerStep,
      sampler,
      rng,
      optimizer,
      counters,
      ref,
      companion,
      configHash,
      metrics,
      bar,
      log,
    );
    run.callbacks = opts;
    run.world = world;
    if (cfg.rollout_servers.length > 0)
      run.servers = new RolloutServers(cfg.rollout_servers, {
        retries: cfg.rollout_server_retries,
        timeoutMs: cfg.rollout_server_timeout_s * 1000,
        log: (s) => run.bar.log(s),
      });
    if (pendingRecord) run.pending = run.restorePending(pendingRecord, startStep);
    run.tracking = new Tracking({
      reportTo: cfg.report_to,
      outputDir: runDir,
      loggingDir: cfg.logging_dir === null ? null : resolve(cfg.logging_dir),
      loggingSteps: cfg.logging_steps,
      totalSteps: setup.totalSteps,
      keys,
      resumeStep: opts.resume ? startStep : null,
    });
    return run;
  }

  /** Elapsed time and ETA at the end of `step` (the ETA from this session's pace). */
  info(step: number): StepInfo {
    const { elapsedS, etaS } = this.pace.at(step);
    return { step, totalSteps: this.totalSteps, elapsedS, etaS, runDir: this.runDir };
  }

  /**
   * Runs a user callback. `'stop'` (or a promise of it) asks for a clean stop after this step;
   * a throw saves a checkpoint of the completed step first, then surfaces as one CallbackError.
   */
  async callback(name: keyof TrainCallbacks, step: number, fn: () => unknown): Promise<boolean> {
    try {
      return await runCallback(fn);
    } catch (e) {
      let saved: string | null = null;
      try {
        await this.settlePending();
        saved = this.save(null, step);
      } catch {
        // the callback's error is the one to report
      }
      throw new CallbackError(name, step, e, saved);
    }
  }

  /** 1–2) Experience for one step, collected the algorithm's way (no gradient recording). */
  async collect(step: number): Promise<StepBatch> {
    const { cfg, setup } = this;
    Object.assign(this.stats, newStats());
    // max_staleness 1: this step's rollout was requested during the previous step; its answer first
    // (no weight sync while a request is in flight)
    let pre = this.pending;
    this.pending = null;
    if (pre) await pre.done;
    this.beforeCollect = pre ? pre.before : this.drawState();
    if (pre?.error) throw pre.error;
    this.staleness = pre?.gen ? this.optimizerStep_ - pre.weightsAt : 0;
    // Generation takes the whole step batch at once (TRL's generation_batch_size = per-device batch ×
    // gradient_accumulation_steps), so the samples of a step do not depend on how it is split into
    // micro-batches for the backward pass, and accumulating 2 × B equals one batch of 2B (DESIGN §5).
    const ctx = rolloutContext(cfg, setup, this.rng, this.servers ?? undefined);
    const world = this.world;
    const sample = async (n: number) => {
      this.generatedCompletions += n * cfg.num_generations;
      if (world) return this.sampleShared(ctx, n, world);
      const p = pre;
      pre = null; // the first round's prompts (every family asks groupsPerStep of them first)
      const rows = p ? p.rows : this.sampler.next(n);
      if (this.servers && !p?.gen && rows.length > 0) await this.syncServers();
      return rollout(ctx, rows, this.stats, p?.seeds, p?.gen);
    };
    setup.model.setRequiresGrad(false);
    const batch = await this.algo.collect(cfg, {
      groupsPerStep: setup.promptsPerStep,
      sample,
      log: (s) => this.bar.log(s),
      step: step + 1,
      rewardNames: setup.rewards.map((r) => r.name),
    });
    setup.model.setRequiresGrad(true);
    this.skipReason = this.logRewardProblems(step + 1);
    return batch;
  }

  /**
   * rollout_servers, before a rollout with new weights (the first, and after each optimizer step):
   * the policy into <output_dir>/rollout_weights (full HF folder, or the PEFT adapter), then every
   * server reloads it (max_staleness 0: no rollout ever uses older weights). Never while a request
   * is in flight: the callers settle the pending rollout first (vLLM does not promise what a
   * reload does to running requests; gpg-rl serve would finish them first).
   */
  private async syncServers(): Promise<void> {
    if (this.serversAt === this.optimizerStep_) return;
    const { setup } = this;
    const { model } = setup;
    const dir = join(this.runDir, ROLLOUT_WEIGHTS_DIR);
    const tokenizerDir =
      setup.modelSourceDir && existsSync(join(setup.modelSourceDir, 'tokenizer.json'))
        ? setup.modelSourceDir
        : undefined;
    if (model.lora) {
      replaceDirAtomic(dir, (stage) =>
        writeAdapterFiles(stage, model, { baseModelNameOrPath: setup.baseModelName ?? this.cfg.model_name_or_path }),
      );
      await this.servers!.syncAdapter('gpg-rl-policy', dir);
    } else {
      saveModelFolder(dir, model.cfg, model.toHost(), {
        generation: setup.generation ?? undefined,
        tokenizerFrom: tokenizerDir,
        extraFiles: tokenizerDir ? undefined : setup.tokenizerFiles,
      });
      await this.servers!.syncFull(dir);
    }
    this.serversAt = this.optimizerStep_;
  }

  private drawState(): DrawState {
    return { rng: this.rng.state(), sampler: this.sampler.state() };
  }

  /**
   * max_staleness 1, after step `next − 1`'s collection and before its update: draws step `next`'s
   * prompts and seeds (the draws a max_staleness 0 run makes at the start of that step, in the same
   * order), brings the servers to the current weights when they are behind (nothing is in flight
   * then), sends the request and returns once it has been handed to the OS. The answer is awaited
   * by collect(next), or before a checkpoint, an eval on the servers or the end.
   */
  async prefetch(next: number): Promise<void> {
    const { cfg, setup } = this;
    if (!this.servers || cfg.max_staleness < 1 || next >= this.totalSteps || this.pending) return;
    const before = this.drawState();
    const rows = this.sampler.next(setup.promptsPerStep);
    const seeds = drawSeeds(this.rng, rows.length, cfg.num_generations);
    const p: Pending = { step: next, rows, seeds, before, weightsAt: this.optimizerStep_, done: Promise.resolve() };
    this.pending = p;
    if (rows.length === 0) {
      p.gen = { tokens: [], logps: [], finished: [], seconds: 0 };
      return;
    }
    try {
      await this.syncServers();
    } catch (e) {
      p.error = e; // collect(next) fails the step, as a failed sync there would
      return;
    }
    const t0 = performance.now();
    const sampling = remoteSampling({
      maxNewTokens: cfg.max_completion_length,
      temperature: cfg.temperature,
      topP: cfg.top_p,
      topK: cfg.top_k,
      model: setup.model,
    } as RolloutContext);
    const { sent, result } = this.servers.start(
      rows.map((r) => r.ids),
      cfg.num_generations,
      sampling,
      seeds,
    );
    p.done = result.then(
      (r) => {
        p.gen = { ...r, seconds: (performance.now() - t0) / 1000 };
      },
      (e: unknown) => {
        p.error = e;
      },
    );
    await sent;
  }

  /** Waits for the pending rollout's answer (before a checkpoint, a weight sync, or the end). */
  async settlePending(): Promise<void> {
    if (this.pending) await this.pending.done;
  }

  /** A checkpoint's prefetched rollout as the pending rollout of loop step `step`. */
  restorePending(r: PendingRollout, step: number): Pending {
    const rows = r.rows.map((i, k) => {
      const row = this.setup.rows[i];
      if (!row || row.ids.length !== r.prompts[k]!.length || row.ids.some((id, j) => id !== r.prompts[k]![j]))
        throw new CheckpointError(
          `trainer_state.json: the prefetched rollout's prompt ${k} is not prompt row ${i} of the dataset; resume with the same dataset`,
        );
      return row;
    });
    const p: Pending = {
      step,
      rows,
      seeds: r.seeds.map((g) => g.map((x) => BigInt(x))),
      before: this.drawState(),
      weightsAt: r.weightsAt,
      done: Promise.resolve(),
    };
    // max_staleness 0 now: the same prompts and seeds, generated again with the current weights
    if (this.cfg.max_staleness >= 1 && this.servers)
      p.gen = {
        tokens: r.tokens,
        logps: r.logps.map((l) => l.map((x) => (x === null ? NaN : x))),
        finished: r.finished,
        seconds: r.seconds,
      };
    return p;
  }

  /** The pending rollout as a checkpoint holds it (settled), and the draw state to save with it. */
  private pendingForSave(): { draws: DrawState; record?: PendingRollout } {
    const p = this.pending;
    if (!p || p.error || !p.gen) return { draws: p ? p.before : this.drawState() };
    const index = new Map(this.setup.rows.map((r, i) => [r, i]));
    return {
      draws: this.drawState(),
      record: {
        rows: p.rows.map((r) => index.get(r)!),
        prompts: p.rows.map((r) => r.ids),
        seeds: p.seeds.map((g) => g.map(String)),
        weightsAt: p.weightsAt,
        tokens: p.gen.tokens,
        logps: p.gen.logps.map((l) => l.map((x) => (Number.isFinite(x) ? x : null))),
        finished: p.gen.finished,
        seconds: p.gen.seconds,
      },
    };
  }

  /**
   * Every rollout server failed during step + 1: undo the step's draws (prompts, seeds), save a
   * checkpoint of the completed steps for --resume, and return the error to throw.
   */
  async serversFailed(step: number, e: RolloutServersError): Promise<RolloutServersError> {
    await this.settlePending();
    if (this.beforeCollect) {
      this.rng.setState(this.beforeCollect.rng);
      this.sampler = PromptSampler.restore(this.setup.rows, this.beforeCollect.sampler);
    }
    if (step === 0) return new RolloutServersError(`step 1: ${e.message}; nothing was trained, so nothing was saved`);
    this.bar.done?.();
    const ck = existsSync(join(this.runDir, `checkpoint-${step}`))
      ? join(this.runDir, `checkpoint-${step}`)
      : this.save(null, step);
    return new RolloutServersError(`step ${step + 1}: ${e.message}; saved ${ck}, continue with --resume`);
  }

  /**
   * Data-parallel sampling: every rank draws the same n prompts and n × G seeds (the single
   * process's draws), rolls out its contiguous share, and gets every rank's groups back in order.
   */
  private async sampleShared(ctx: RolloutContext, n: number, world: Comm): Promise<Group[]> {
    const rows = this.sampler.next(n);
    const seeds = drawSeeds(ctx.rng, rows.length, ctx.G);
    const lo = Math.floor((rows.length * world.rank) / world.size);
    const hi = Math.floor((rows.length * (world.rank + 1)) / world.size);
    const local = newStats();
    const genBatch = Math.max(ctx.G, Math.ceil(ctx.genBatch / world.size));
    const mine = await rollout({ ...ctx, genBatch }, rows.slice(lo, hi), local, seeds.slice(lo, hi));
    const all = world.allgather({ groups: mine.map((g) => ({ ...g, row: null })), stats: local });
    const st = this.stats;
    st.generationSeconds += Math.max(...all.map((a) => a.stats.generationSeconds));
    st.rewardSeconds += Math.max(...all.map((a) => a.stats.rewardSeconds));
    for (const { stats: s } of all) {
      st.generatedTokens += s.generatedTokens;
      st.scoredCompletions += s.scoredCompletions;
      st.errors.push(...s.errors);
      for (const [k, v] of Object.entries(s.rewardFailures)) st.rewardFailures[k] = (st.rewardFailures[k] ?? 0) + v;
      for (const [k, v] of Object.entries(s.nanScores)) st.nanScores[k] = (st.nanScores[k] ?? 0) + v;
    }
    return all.flatMap((a) => a.groups).map((g, i) => ({ ...g, row: rows[i]! }));
  }

  /**
   * One log line per reward and kind of failure for the step (`failed 21× (throw): …`, the
   * resampling rounds included), and one for NaN scores; returns a summary for the skip error.
   */
  private logRewardProblems(step: number): string {
    const byKey = new Map<string, { name: string; kind: string; first: string; n: number }>();
    for (const e of this.stats.errors) {
      if (e.kind !== 'partial') this.counters.reward_failures = (this.counters.reward_failures ?? 0) + 1;
      const k = `${e.name}\u0000${e.kind}`;
      const g = byKey.get(k);
      if (g) g.n++;
      else byKey.set(k, { name: e.name, kind: e.kind, first: e.message, n: 1 });
    }
    const parts: string[] = [];
    for (const g of byKey.values()) {
      const calls = g.kind === 'partial' ? '' : ` ${g.n}× this step`;
      const more = g.n > 1 && g.kind === 'partial' ? ` (and ${g.n - 1} more call(s))` : '';
      this.bar.log(
        `step ${step}: reward ${g.name} ${g.kind === 'partial' ? 'partly failed' : `failed${calls}`} (${g.kind}): ${g.first}${more}`,
      );
      if (g.kind !== 'partial') parts.push(`reward ${g.name} failed${calls} (${g.first})`);
    }
    for (const [name, n] of Object.entries(this.stats.nanScores)) {
      if (n > 0)
        this.bar.log(
          `step ${step}: reward ${name} returned NaN for ${n} of ${this.stats.scoredCompletions} completions (scored as not applicable: 0 in the total)`,
        );
    }
    return parts.join('; ');
  }

  /**
   * Fails the run after max_consecutive_skipped_steps skipped steps in a row (no usable signal:
   * every group's rewards equal, often because a reward keeps failing), saying why.
   */
  checkSkipped(step: number, batch: StepBatch): void {
    const c = this.counters;
    c.consecutive_skipped_steps = batch.skip ? (c.consecutive_skipped_steps ?? 0) + 1 : 0;
    const limit = this.cfg.max_consecutive_skipped_steps;
    const n = c.consecutive_skipped_steps;
    if (limit > 0 && n >= limit) {
      const why =
        this.skipReason ||
        'every group of completions got equal rewards, so there was nothing to learn from (check the reward functions and the gold answers; a model that always fails, or always succeeds, gives no signal)';
      throw new RunStoppedError(
        `steps ${step + 2 - n}–${step + 1}: ${n} consecutive steps skipped (max_consecutive_skipped_steps ${limit}): ${why}`,
        'GPG_SKIPPED_STEPS',
      );
    }
  }

  /** Ctrl-C / SIGTERM: saves checkpoint-<step> and the report, and returns the error to throw. */
  async interrupted(step: number, completed: number): Promise<RunStoppedError> {
    // a prefetched rollout in flight (max_staleness 1) is awaited, so the checkpoint holds it
    await this.settlePending();
    if (completed === 0 && step === this.startStep && step === 0)
      return new RunStoppedError('interrupted before the first step; nothing was saved', 'GPG_INTERRUPTED');
    this.bar.done?.();
    const ck = existsSync(join(this.runDir, `checkpoint-${step}`))
      ? join(this.runDir, `checkpoint-${step}`)
      : this.save(null, step);
    writeReport(this.runDir, {
      config: this.cfg as unknown as Record<string, unknown>,
      title: `gpg-rl run: ${this.cfg.output_dir}`,
    });
    return new RunStoppedError(
      `interrupted after step ${step}: saved ${ck} and report.html; continue with --resume`,
      'GPG_INTERRUPTED',
    );
  }

  /**
   * 3–5) The step's micro-batches, the companion's preparation (PPO: values, GAE), advantages, then
   * the algorithm's updates: for each, the loss over its micro-batches and one optimizer step.
   */
  optimize(batch: StepBatch, step: number): StepUpdate {
    const { cfg, algo, companion } = this;
    const { model } = this.setup;
    const G = cfg.num_generations;
    const micro = microBatches(batch.groups, G, cfg, this.setup.padTokenId);
    const tokensOf = (mb: MicroBatch) => mb.packed.m.reduce((a, x) => a + x, 0);
    const tokens = micro.reduce((s, m) => s + tokensOf(m), 0);
    /** An update's loss normalisers: completion tokens and completions of its micro-batches. */
    const denominatorsOf = (update: readonly number[]) => ({
      tokens: update.reduce((s, k) => s + tokensOf(micro[k]!), 0),
      sequences: update.reduce((s, k) => s + micro[k]!.rows.length, 0),
    });
    const updates =
      algo.updates?.(cfg, micro.length, step) ??
      Array.from({ length: algo.iterations(cfg) }, () => micro.map((_, k) => k));
    const iterations = algo.iterations(cfg);
    const sums: Record<string, number> = {};
    const addSums = (o: Record<string, number>) => {
      for (const [key, v] of Object.entries(o)) sums[key] = (sums[key] ?? 0) + v;
    };
    let lossSum = 0;
    let gradNorm = NaN;
    let entropySum = 0;
    let entropyCount = 0;
    let trainTokens = 0;
    const samplingDiff = new LogpDifference();
    const tTrain = performance.now();
    const lrAt = (k: number) =>
      learningRateAt(k, this.totalSteps * iterations, {
        learningRate: cfg.learning_rate,
        warmupRatio: cfg.warmup_ratio,
        warmupSteps: cfg.warmup_steps,
        scheduler: cfg.lr_scheduler_type,
      });
    let lr = lrAt(this.optimizerStep_);
    const usesRef = algo.usesReference(cfg);
    const refLogps = (packed: PackedBatch) =>
      this.ref
        ? denseLogps(this.ref, packed, cfg.temperature)
        : model.lora!.disabled(() => denseLogps(model, packed, cfg.temperature));
    if (!batch.skip && companion) {
      // before any update: the sampling policy's and the reference's log-probs, then the companion's passes
      for (const mb of micro) {
        if (usesRef) mb.refLp = refLogps(mb.packed);
        mb.oldLp = denseLogps(model, mb.packed, cfg.temperature);
        samplingDiff.add(mb.oldLp, mb.packed, batch.groups, G, mb.rows);
      }
      companion.prepare(
        cfg,
        batch,
        micro.map((mb) => ({ rows: mb.rows, packed: mb.packed, oldLp: mb.oldLp!, refLp: mb.refLp })),
      );
    }
    const adv = algo.advantages(cfg, batch);
    const seen = new Set<number>();
    if (batch.skip) this.counters.skipped_steps = (this.counters.skipped_steps ?? 0) + 1;
    else if (algo.update) {
      // the algorithm owns the update (TRPO): it gets gradients, evaluations and Fisher products
      const ctx = new PolicyUpdate({
        model,
        micro,
        pack: (rows) => microBatches(batch.groups, G, cfg, this.setup.padTokenId, rows),
        advantages: adv,
        denominators: { tokens, sequences: batch.groups.length * G },
        temperature: cfg.temperature,
        checkpoint: cfg.gradient_checkpointing,
        step: step + 1,
        onFirstPass: (_k, lp, entropy, mb) => {
          samplingDiff.add(lp, mb.packed, batch.groups, G, mb.rows);
          for (const e of entropy ?? []) {
            entropySum += e;
            entropyCount++;
          }
          trainTokens += mb.packed.B * mb.packed.T;
        },
      });
      try {
        const out = algo.update(cfg, batch, ctx);
        lossSum = out.loss;
        gradNorm = out.gradNorm;
        Object.assign(sums, out.sums);
      } finally {
        ctx.dispose();
      }
      if (companion) {
        // the companion's fit on the step's experience (TRPO's critic: regression on the returns)
        lr = lrAt(this.optimizerStep_);
        for (const update of updates) {
          const den = denominatorsOf(update);
          for (const k of update) {
            const mb = micro[k]!;
            addSums(
              companion.backward(cfg, batch, { rows: mb.rows, packed: mb.packed, oldLp: mb.oldLp! }, k, den).sums,
            );
          }
          addSums(companion.step(cfg, lr));
        }
      }
      this.optimizerStep_++;
    } else {
      for (const update of updates) {
        model.lora?.reseed(this.optimizerStep_); // dropout masks: a function of the optimizer step
        const den = denominatorsOf(update);
        // data-parallel: this rank's share of the micro-batches; what each adds to the step's sums is
        // kept, gathered and added in micro-batch order below, as one process adds it
        const world = this.world;
        const shares: MicroShare[] = [];
        const lo = world ? Math.floor((update.length * world.rank) / world.size) : 0;
        const hi = world ? Math.floor((update.length * (world.rank + 1)) / world.size) : update.length;
        for (const [j, k] of update.entries()) {
          if (j < lo || j >= hi) continue;
          const mb = micro[k]!;
          const { packed } = mb;
          const { B, T } = packed;
          const first = !seen.has(k);
          seen.add(k);
          const share: MicroShare | null = world
            ? { k, loss: 0, sums: {}, entropy: null, lp: null, trainTokens: 0 }
            : null;
          if (usesRef && !mb.refLp) mb.refLp = refLogps(packed);
          const res = tidy(() => {
            const { logps, index, entropy } = model.tokenLogps(packed, {
              checkpoint: cfg.gradient_checkpointing,
              temperature: cfg.temperature,
              select: packed.m,
              entropy: first,
            });
            const lp = denseFinite(logps.toFloat32(), index, B * (T - 1), step + 1, k + 1);
            if (first && !mb.oldLp && algo.needsOldLogps(cfg)) mb.oldLp = lp.slice();
            if (first && !companion) {
              if (share) share.lp = lp.slice();
              else samplingDiff.add(lp, packed, batch.groups, G, mb.rows);
            }
            const out = algo.loss(cfg, batch, {
              lp,
              oldLp: algo.needsOldLogps(cfg) ? mb.oldLp : undefined,
              refLp: mb.refLp,
              mask: packed.m,
              advantages: Float64Array.from(mb.rows, (r) => adv[r]!),
              B,
              Tm1: T - 1,
              denominators: den,
              micro: k,
            });
            if (index.length > 0) {
              const seed = new Float32Array(index.length);
              for (let i = 0; i < index.length; i++) seed[i] = out.dlp[index[i]!]!;
              backward(logps, Tensor.fromArray(seed, [index.length]));
            }
            if (entropy && share) share.entropy = Float32Array.from(entropy);
            else if (entropy)
              for (const e of entropy) {
                entropySum += e;
                entropyCount++;
              }
            return out;
          });
          if (share) {
            Object.assign(share, { loss: res.loss, sums: res.sums, trainTokens: B * T });
            shares.push(share);
            continue;
          }
          lossSum += res.loss;
          addSums(res.sums);
          trainTokens += B * T;
          if (companion) {
            const c = companion.backward(
              cfg,
              batch,
              { rows: mb.rows, packed, oldLp: mb.oldLp!, refLp: mb.refLp },
              k,
              den,
            );
            lossSum += c.loss;
            addSums(c.sums);
          }
        }
        if (world) {
          for (const c of world.allgather(shares).flat()) {
            // the single process's additions, in its order
            if (c.lp) samplingDiff.add(c.lp, micro[c.k]!.packed, batch.groups, G, micro[c.k]!.rows);
            for (const e of c.entropy ?? []) {
              entropySum += e;
              entropyCount++;
            }
            lossSum += c.loss;
            addSums(c.sums);
            trainTokens += c.trainTokens;
          }
          allreduceGrads(world, model.parameters());
        }
        lr = lrAt(this.optimizerStep_);
        const o = optimizerStep(this.optimizer, model.parameters(), { lr, maxGradNorm: cfg.max_grad_norm });
        gradNorm = o.gradNorm;
        if (!o.stepped) this.bar.log(`step ${step + 1}: non-finite gradient norm; update skipped`);
        if (companion) addSums(companion.step(cfg, lr));
        this.optimizerStep_++;
      }
    }
    return {
      loss: batch.skip ? NaN : lossSum / Math.max(1, updates.length),
      gradNorm,
      lr,
      advantages: adv,
      entropy: entropyCount ? entropySum / entropyCount : NaN,
      sums,
      tokens,
      updates: updates.length,
      trainTokens,
      trainSeconds: (performance.now() - tTrain) / 1000,
      samplingDiff: samplingDiff.result(),
      stats: { ...this.stats },
    };
  }

  /** 6) The step's metrics row (common columns + the algorithm's), completions sample, progress line. */
  record(step: number, batch: StepBatch, u: StepUpdate, seconds: number): MetricsRow {
    const { cfg } = this;
    const G = cfg.num_generations;
    const { groups } = batch;
    const rs = rewardStats(stepRewards(groups, G), G);
    const lens = groups.flatMap((g) => g.completions.map((c) => c.length));
    const truncated = groups.flatMap((g) => g.finished.map((f) => (f ? 0 : 1)));
    const genSeconds = u.stats.generationSeconds;
    const row: MetricsRow = {
      [METRIC.step]: step + 1,
      [METRIC.loss]: u.loss,
      [METRIC.gradNorm]: u.gradNorm,
      [METRIC.learningRate]: u.lr,
      [METRIC.reward]: rs.reward,
      [METRIC.rewardStd]: rs.rewardStd,
      [METRIC.fracRewardZeroStd]: rs.fracRewardZeroStd,
      [METRIC.meanLength]: mean(lens),
      [METRIC.minLength]: lens.length ? Math.min(...lens) : NaN,
      [METRIC.maxLength]: lens.length ? Math.max(...lens) : NaN,
      [METRIC.clippedRatio]: mean(truncated),
      [METRIC.entropy]: u.entropy,
      [METRIC.samplingLogpDiffMean]: u.samplingDiff.mean,
      [METRIC.samplingLogpDiffMax]: u.samplingDiff.max,
      [METRIC.staleness]: this.staleness,
      ...this.algo.metrics(cfg, batch, u.sums, {
        tokens: u.tokens,
        iterations: u.updates,
        skippedSteps: this.counters.skipped_steps ?? 0,
      }),
      [METRIC.tokensPerSGeneration]: genSeconds > 0 ? u.stats.generatedTokens / genSeconds : NaN,
      [METRIC.tokensPerSTraining]: u.trainSeconds > 0 && u.trainTokens > 0 ? u.trainTokens / u.trainSeconds : NaN,
      [METRIC.timeS]: seconds,
    };
    for (const r of this.setup.rewards) {
      const all = new Float64Array(groups.length * G);
      groups.forEach((g, k) => all.set(g.perFn[r.name] ?? new Float64Array(G).fill(NaN), k * G));
      const s = nanMeanStd(all);
      row[rewardMeanKey(r.name)] = s.mean;
      row[rewardStdKey(r.name)] = s.std;
    }
    this.metrics.write(row);
    this.tracking?.step(row);
    this.rows.push(row);
    if (cfg.log_completions)
      logCompletions(
        join(this.runDir, 'completions.jsonl'),
        step + 1,
        groups,
        u.advantages,
        cfg.num_completions_to_log,
      );
    if ((step + 1) % cfg.logging_steps === 0 || step + 1 === this.totalSteps)
      this.bar.update(step + 1, formatProgress(row, this.totalSteps, this.info(step + 1)));
    this.generatedTokens += u.stats.generatedTokens;
    return row;
  }

  /**
   * Benchmark subsets during training (eval_steps): greedy pass@1 into eval.jsonl; true when onEval
   * asks to stop. With rollout_servers the completions are generated there, on the policy of this
   * step: the pending rollout (max_staleness 1) is awaited first, then the weights are synced.
   */
  async evaluate(step: number): Promise<boolean> {
    const { cfg, setup } = this;
    const { evaluate } = await import('../eval/evaluate.ts');
    let remote: { servers: RolloutServers; vocabSize: number } | undefined;
    if (this.servers) {
      try {
        await this.settlePending();
        await this.syncServers();
      } catch (e) {
        throw e instanceof RolloutServersError ? this.evalServersFailed(step, e) : e;
      }
      remote = { servers: this.servers, vocabSize: setup.model.cfg.vocabSize };
    }
    setup.model.setRequiresGrad(false);
    // the benchmarks are asked the way the training prompts are (dataset template, system prompt, chat template)
    const ds = cfg.dataset;
    const r = await evaluate(setup.model, setup.tokenizer, {
      systemPrompt: ds.system_prompt ?? '',
      promptTemplate: ds.prompt_template ?? undefined,
      useChatTemplate: ds.use_chat_template,
      rawTemplate: '{prompt}',
      benchmarks: cfg.eval_benchmarks,
      limit: cfg.eval_limit,
      maxNewTokens: cfg.max_completion_length,
      eosTokenIds: setup.eosTokenIds,
      pool: setup.verifier ?? undefined,
      remote,
    }).catch((e: unknown) => {
      throw e instanceof RolloutServersError ? this.evalServersFailed(step, e) : e;
    });
    setup.model.setRequiresGrad(true);
    appendFileSync(join(this.runDir, 'eval.jsonl'), JSON.stringify({ step, ...r.summary }) + '\n');
    this.log(
      `step ${step}: eval pass@1 ${cfg.eval_benchmarks.map((b) => `${b} ${(r.summary.benchmarks[b]?.pass1 ?? NaN).toFixed(3)}`).join(', ')}, average ${r.summary.average.pass1.toFixed(3)}`,
    );
    const scalars: Record<string, number> = { 'eval/average/pass1': r.summary.average.pass1 };
    for (const b of cfg.eval_benchmarks) scalars[`eval/${b}/pass1`] = r.summary.benchmarks[b]?.pass1 ?? NaN;
    this.tracking?.eval(step, scalars);
    const onEval = this.callbacks.onEval;
    return onEval ? this.callback('onEval', step, () => onEval(r.summary, this.info(step), r.records)) : false;
  }

  /** Every rollout server failed during the eval after `step`: checkpoint-<step> for --resume, and the error to throw. */
  private evalServersFailed(step: number, e: RolloutServersError): RolloutServersError {
    this.bar.done?.();
    const ck = existsSync(join(this.runDir, `checkpoint-${step}`))
      ? join(this.runDir, `checkpoint-${step}`)
      : this.save(null, step); // the pending rollout, if any, has settled (settlePending came first)
    return new RolloutServersError(`step ${step}: eval: ${e.message}; saved ${ck}, continue with --resume`);
  }

  /** A save_steps checkpoint: the checkpoint, pruning (save_total_limit), the report, then onSave. */
  async saveStep(step: number): Promise<boolean> {
    await this.settlePending();
    const dir = this.save(null, step);
    this.writeReport();
    const onSave = this.callbacks.onSave;
    return onSave ? this.callback('onSave', step, () => onSave({ dir, step }, this.info(step))) : false;
  }

  /** report.html from what the run folder holds now (refreshed at every save and at the end). */
  writeReport(): void {
    if (this.world && this.world.rank > 0) return; // rank 0 reports
    writeReport(this.runDir, {
      config: this.cfg as unknown as Record<string, unknown>,
      title: `gpg-rl run: ${this.cfg.run_name ?? this.cfg.output_dir}`,
    });
  }

  /** A checkpoint at `step`; with `dir`, also the model folder there (staged, then swapped in). */
  save(dir: string | null, step: number): string {
    // data-parallel: rank 0 writes checkpoints and the model (every rank holds the same state)
    if (this.world && this.world.rank > 0) return dir ?? join(this.runDir, `checkpoint-${step}`);
    const { setup } = this;
    const { model } = setup;
    const tokenizerDir =
      setup.modelSourceDir && existsSync(join(setup.modelSourceDir, 'tokenizer.json')) ? setup.modelSourceDir : null;
    const { draws, record } = this.pendingForSave();
    const data = {
      state: {
        step,
        optimizerStep: this.optimizerStep_,
        sampler: draws.sampler,
        rng: draws.rng,
        counters: { ...this.counters },
        configHash: this.configHash,
        ...(record ? { pending: record } : {}),
      },
      m: new Map<string, StreamedTensor>(),
      v: new Map<string, StreamedTensor>(),
    };
    // weights and moments go from the backend to disk a piece at a time (no host copy of either)
    const st = this.optimizer.moments();
    model.trainableParameters().forEach(([n], i) => {
      data.m.set(n, streamed(st.m[i]!));
      data.v.set(n, streamed(st.v[i]!));
    });
    // LoRA: the checkpoint's model files are the PEFT adapter (the base never changes)
    const weights = model.lora
      ? (stage: string) =>
          writeAdapterFiles(stage, model, {
            baseModelNameOrPath: setup.baseModelName ?? this.cfg.model_name_or_path,
            tokenizerFrom: tokenizerDir ?? undefined,
            extraFiles: tokenizerDir ? undefined : setup.tokenizerFiles,
          })
      : model.streamed();
    const companion = this.companion;
    const ck = saveCheckpoint(this.runDir, model.cfg, weights, data, {
      generation: setup.generation ?? undefined,
      tokenizerFrom: tokenizerDir ?? undefined,
      extraFiles: tokenizerDir ? undefined : setup.tokenizerFiles,
      extraDirs: companion
        ? {
            [companion.dirName]: (d) =>
              companion.save(d, { weightsOnly: false, tokenizerFrom: tokenizerDir ?? undefined }),
          }
        : undefined,
    });
    if (this.cfg.save_total_limit !== null) pruneCheckpoints(this.runDir, this.cfg.save_total_limit, ck);
    if (dir) {
      // a kill never leaves a half-written <output_dir>/model
      replaceDirAtomic(dir, (stage) => {
        for (const f of readdirSync(ck))
          if (f !== 'optimizer.safetensors' && f !== 'trainer_state.json' && !statSync(join(ck, f)).isDirectory())
            copyFileSync(join(ck, f), join(stage, f)); // (the stage is swapped in whole; files past 2 GiB copy too)
      });
      // the companion's model beside it (PPO: <output_dir>/value_model, an HF …ForTokenClassification folder)
      if (companion)
        replaceDirAtomic(join(dirname(dir), companion.dirName), (stage) =>
          companion.save(stage, { weightsOnly: true, tokenizerFrom: tokenizerDir ?? undefined }),
        );
    }
    return ck;
  }

  /** The final model folder and report, then onSave. */
  async finish(): Promise<TrainResult> {
    this.bar.done?.();
    await this.settlePending();
    const modelDir = join(this.runDir, 'model');
    const dir = this.save(modelDir, this.lastStep);
    this.tracking?.flush();
    this.writeReport();
    const onSave = this.callbacks.onSave;
    if (onSave)
      await this.callback('onSave', this.lastStep, () =>
        onSave({ dir, step: this.lastStep, modelDir }, this.info(this.lastStep)),
      );
    return {
      runDir: this.runDir,
      steps: this.lastStep,
      generatedCompletions: this.generatedCompletions,
      generatedTokens: this.generatedTokens,
      seconds: (performance.now() - this.t0) / 1000,
      modelDir,
      metrics: this.rows,
      model: this.setup.model,
      parameters: {
        policy: this.setup.model.numParameters(),
        reference: this.ref?.numParameters() ?? 0,
        companion: this.companion?.numParameters() ?? 0,
      },
    };
  }

  /** Releases everything the run holds (also after an error). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.metrics.close();
    this.tracking?.close();
    this.setup.model.setRequiresGrad(false);
    this.ref?.dispose();
    this.companion?.dispose();
    this.optimizer.dispose();
    await closeSetup(this.setup);
  }
}

async function dryRun(cfg: TrainConfig, s: RunSetup, runDir: string, log: (s: string) => void): Promise<TrainResult> {
  await closeSetup(s);
  const longest = s.rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
  const warn = positionWarning(s.model.cfg.maxPositionEmbeddings, longest, cfg.max_completion_length);
  if (warn) log(`warning: ${warn}`);
  log(
    `dry run: ${cfg.output_dir}: ${s.rows.length} prompts (${s.tooLong} over max_prompt_length, ${JSON.stringify(s.dropped)} dropped at load), ${s.rewards.length} reward function(s) [${s.rewards.map((r) => r.name).join(', ')}], ${s.totalSteps} steps of ${s.promptsPerStep} prompts × ${cfg.num_generations} completions, model ${s.model.cfg.architecture} ${(s.model.numParameters() / 1e6).toFixed(2)}M params`,
  );
  return {
    runDir,
    steps: 0,
    generatedCompletions: 0,
    generatedTokens: 0,
    seconds: 0,
    modelDir: null,
    metrics: [],
    model: s.model,
    // nothing is built beside the policy in a dry run
    parameters: { policy: s.model.numParameters(), reference: 0, companion: 0 },
  };
}

interface MicroBatch {
  /** The step-batch completions (batch order) it holds. */
  rows: number[];
  packed: PackedBatch;
  oldLp?: Float64Array;
  refLp?: Float64Array;
}

/**
 * The step batch packed into micro-batches: of per_device_train_batch_size completions in batch
 * order, or, with max_tokens_per_microbatch, by padded B·T within that budget (planMicroBatches).
 */
function microBatches(groups: Group[], G: number, cfg: TrainConfig, padId: number, only?: number[]): MicroBatch[] {
  const prompts: number[][] = [];
  const comps: number[][] = [];
  const keep: boolean[] = [];
  for (const g of groups)
    for (let i = 0; i < G; i++) {
      prompts.push(g.row.ids);
      comps.push(g.completions[i]!);
      keep.push(!(cfg.mask_truncated_completions && !g.finished[i]));
    }
  if (only) {
    // a subset of the completions (TRPO's Fisher subsample) in per_device_train_batch_size chunks
    const out: MicroBatch[] = [];
    for (let lo = 0; lo < only.length; lo += cfg.per_device_train_batch_size) {
      const rows = only.slice(lo, lo + cfg.per_device_train_batch_size);
      const pickRows = <T>(xs: T[]) => rows.map((r) => xs[r]!);
      out.push({ rows, packed: packBatch(pickRows(prompts), pickRows(comps), padId, pickRows(keep)) });
    }
    return out;
  }
  const plan: number[][] = [];
  if (cfg.max_tokens_per_microbatch > 0)
    plan.push(
      ...planMicroBatches(
        prompts.map((p, i) => ({ prompt: p.length, completion: comps[i]!.length })),
        cfg.max_tokens_per_microbatch,
      ),
    );
  else
    for (let lo = 0; lo < prompts.length; lo += cfg.per_device_train_batch_size)
      plan.push(
        Array.from({ length: Math.min(prompts.length - lo, cfg.per_device_train_batch_size) }, (_, j) => lo + j),
      );
  const pick = <T>(xs: T[], rows: number[]) => rows.map((r) => xs[r]!);
  return plan.map((rows) => ({
    rows,
    packed: packBatch(pick(prompts, rows), pick(comps, rows), padId, pick(keep, rows)),
  }));
}

/**
 * Running mean and max of |lp − sampling log-prob| over the completion tokens of the micro-batches
 * (lp: the first iteration's training-precision log-probs, dense [B·(T−1)]; `rows`: the micro-batch's
 * sequences, by index in the step).
 */
/** What one micro-batch adds to the step's sums on a data-parallel rank (gathered in micro-batch order). */
interface MicroShare {
  k: number;
  loss: number;
  sums: Record<string, number>;
  entropy: Float32Array | null;
  /** First-pass log-probs (the sampling log-prob difference), null after the first pass. */
  lp: Float64Array | null;
  trainTokens: number;
}

/**
 * Sums the parameters' gradients over the ranks, in place (one all-reduce of every gradient
 * flattened); a parameter no rank has a gradient for keeps none, as in one process.
 */
function allreduceGrads(world: Comm, params: Tensor[]): void {
  let n = params.length;
  for (const p of params) n += p.size;
  const flat = new Float32Array(n);
  let off = params.length;
  params.forEach((p, i) => {
    if (p.grad) {
      flat[i] = 1;
      flat.set(p.grad.toFloat32(), off);
    }
    off += p.size;
  });
  world.allreduceSum(flat);
  off = params.length;
  params.forEach((p, i) => {
    if (flat[i]! > 0) {
      const g = flat.subarray(off, off + p.size);
      if (p.grad) p.grad.write(g);
      else p.grad = Tensor.fromArray(g, p.shape).keep();
    }
    off += p.size;
  });
}

class LogpDifference {
  private sum = 0;
  private n = 0;
  private max = 0;
  add(
    lp: Float64Array,
    packed: { B: number; T: number; P: number; m: Float64Array },
    groups: Group[],
    G: number,
    rows: readonly number[],
  ): void {
    const { B, T, P } = packed;
    for (let b = 0; b < B; b++) {
      const seq = rows[b]!;
      const sampled = groups[Math.floor(seq / G)]!.logps[seq % G]!;
      for (let t = 0; t < sampled.length; t++) {
        const j = b * (T - 1) + P + t - 1;
        if (!packed.m[j]) continue;
        const d = Math.abs(lp[j]! - sampled[t]!);
        this.sum += d;
        this.n++;
        if (d > this.max) this.max = d;
      }
    }
  }
  result(): { mean: number; max: number } {
    return this.n ? { mean: this.sum / this.n, max: this.max } : { mean: NaN, max: NaN };
  }
}

/** Compact log-probs spread to a dense [B*(T-1)] array; a non-finite one is a clear error. */
function denseFinite(values: Float32Array, index: Int32Array, n: number, step: number, micro: number): Float64Array {
  const lp = new Float64Array(n);
  for (let i = 0; i < index.length; i++) {
    if (!Number.isFinite(values[i]!))
      throw new GpgRlError(
        `step ${step}: the policy produced a non-finite token log-prob (${values[i]}) in micro-batch ${micro}; the weights have diverged (lower learning_rate, keep max_grad_norm > 0, or check the model files)`,
        'GPG_NONFINITE',
      );
    lp[index[i]!] = values[i]!;
  }
  return lp;
}

function isResolved(c: unknown): c is TrainConfig {
  return (
    typeof c === 'object' &&
    c !== null &&
    'epsilon_high' in c &&
    typeof (c as { epsilon_high: unknown }).epsilon_high === 'number' &&
    'dynamic_sampling' in c
  );
}

function mean(xs: number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Reference-model token log-probs as a dense [B*(T-1)] array (no gradient). */
function denseLogps(ref: CausalLM, packed: PackedBatch, temperature: number): Float64Array {
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

/** Every completion of a step, for onCompletions (the same fields as completions.jsonl). */
function completionRecords(step: number, groups: Group[], adv: Float64Array): CompletionRecord[] {
  const out: CompletionRecord[] = [];
  groups.forEach((g, gi) => {
    for (let i = 0; i < g.completions.length; i++) {
      const rewards: Record<string, number | null> = {};
      for (const [name, arr] of Object.entries(g.perFn)) rewards[name] = Number.isFinite(arr[i]!) ? arr[i]! : null;
      out.push({
        step,
        prompt: g.row.text,
        completion: g.texts[i]!,
        answer: g.row.answer,
        rewards,
        reward: g.rewards[i]!,
        advantage: adv[gi * g.completions.length + i]!,
        finished: g.finished[i]!,
      });
    }
  });
  return out;
}

/**
 * Rows given in code are the run's data: `dataset` may be left out, and whatever it says, the run
 * records `dataset.path: rows:<n>:<hash>` (not a file it never read).
 */
function withRowsSource<T extends TrainConfig | Record<string, unknown>>(c: T, opts: { rows?: PromptRow[] }): T {
  if (!opts.rows) return c;
  const ds = (c as { dataset?: unknown }).dataset;
  const base = typeof ds === 'object' && ds !== null ? (ds as Record<string, unknown>) : {};
  return { ...c, dataset: { ...base, path: rowsSource(ROWS_PREFIX, opts.rows) } };
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
      lines.push(
        JSON.stringify({
          step,
          prompt: g.row.text,
          completion: g.texts[i],
          answer: g.row.answer,
          rewards: perFn,
          reward: g.rewards[i],
          advantage: adv[gi * g.completions.length + i],
          finished: g.finished[i],
        }),
      );
      k++;
    }
  }
  if (lines.length) appendFileSync(path, lines.join('\n') + '\n');
}

/** Keeps only rows with step ≤ lastStep (resume). */
function truncateJsonl(path: string, lastStep: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step: number }).step <= lastStep;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, keep.length ? keep.join('\n') + '\n' : '');
}
