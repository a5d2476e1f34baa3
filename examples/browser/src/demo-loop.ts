/**
 * `gpg-rl demo` in a tab: the demo's model, warm-start recipe, GPG recipe and accuracy reward, on the
 * WebGPU backend (train-worker.ts has made it the default before this module loads src/tensor).
 *
 * The Node trainer (src/rl/trainer.ts) owns run folders, checkpoints, trackers, MPI and rollout
 * servers, all files and processes, so this loop is its step without those: the same library calls
 * in the same order (Run.collect → Run.optimize for a family without a companion or reference):
 *   prepareRun → algorithm.collect(rollout …) → algorithm.advantages → packBatch →
 *   model.tokenLogps → algorithm.loss → backward → optimizerStep (AdamW, clipping) → rewardStats.
 * Differences from the CLI demo: the warm start is trained here, from scratch, for the steps the
 * page asks (the CLI trains to 30% held-out accuracy, about 4 minutes on 2 CPU cores, and caches
 * it); the whole step batch is one micro-batch; the maths verifier runs in this worker (no pool,
 * no per-comparison timeout: the arithmetic answers are short integers).
 */
import { CausalLM } from '../../../src/model/decoder.ts';
import { initModel } from '../../../src/model/init.ts';
import {
  parameterNames,
  parseGenerationConfig,
  parseModelConfig,
  type GenerationDefaults,
} from '../../../src/model/config.ts';
import { parseSafetensors, toFloat32 } from '../../../src/model/safetensors.ts';
import { TextTokenizer } from '../../../src/model/tokenizer.ts';
import { specialTokens } from '../../../src/model/special.ts';
import { DEMO_LEVEL, DEMO_SHAPE, WARMSTART, arithSftPair } from '../../../src/builtin/warmstart.ts';
import { heldoutAccuracy } from '../../../src/builtin/heldout.ts';
import { arithRows, heldOutSet, trainStream } from '../../../src/data/arith.ts';
import { Rng } from '../../../src/data/rng.ts';
import { PromptSampler } from '../../../src/data/sampler.ts';
import { sftTrain } from '../../../src/sft/sft.ts';
import { demoTrainConfig } from '../../../src/demo/demo.ts';
import { validateConfig } from '../../../src/rl/recipe.ts';
import { prepareRun } from '../../../src/rl/setup.ts';
import { algorithmFor } from '../../../src/rl/algorithms/index.ts';
import { newStats, rollout, rolloutContext } from '../../../src/rl/rollout.ts';
import { rewardStats, stepRewards } from '../../../src/rl/advantages.ts';
import { accuracyReward } from '../../../src/rewards/accuracy.ts';
import { anchoredVerifier, type VerifierPool, type VerifyResult } from '../../../src/rewards/math-verify/pool.ts';
import { verify } from '../../../src/rewards/math-verify/verify.ts';
import { packBatch } from '../../../src/train/batch.ts';
import { makeOptimizer, optimizerStep } from '../../../src/train/optimizer.ts';
import { learningRateAt } from '../../../src/train/schedule.ts';
import { Tensor, tidy } from '../../../src/tensor/tensor.ts';
import { backward } from '../../../src/tensor/tape.ts';

export interface BrowserDemoOptions {
  seed: number;
  /** SFT warm-start steps (the CLI's recipe runs up to 4000, stopping at 30% accuracy). */
  sftSteps: number;
  sftBatch: number;
  /** Greedy accuracy on evalProblems held-out problems every evalEvery SFT steps (0: never); stops at WARMSTART.targetAccuracy. */
  evalEvery: number;
  evalProblems: number;
  /** GPG steps (the CLI demo: 400). */
  rlSteps: number;
  /** Prompts per GPG step (the CLI demo: 16) and completions per prompt (G, the demo: 8). */
  prompts: number;
  G: number;
  /** Held-out problems scored greedily before and after GPG (the CLI demo: 500; 0: skip). */
  heldout: number;
  /** max_completion_length (the demo: 40; the browser test: fewer, for time). */
  maxCompletion: number;
  /** max_resample_rounds of GPG's β_th resampling (undefined: the recipe's default). */
  maxResampleRounds?: number;
  /** A warm-start folder's files (the CLI's ~/.cache/gpg-rl/demo/warmstart-seed0-…): used instead of SFT in the tab. */
  warmStart?: WarmStartFiles;
}

/** The files of an HF model folder the page reads (fetched from a URL or picked from disk). */
export interface WarmStartFiles {
  source: string;
  config: unknown;
  generation?: unknown;
  tokenizer: object;
  tokenizerConfig: object;
  safetensors: Uint8Array;
}

/** A model folder's files → model, tokenizer, generation defaults (what CausalLM.load and TextTokenizer.fromDir read from disk). */
function loadFolder(f: WarmStartFiles): {
  model: CausalLM;
  tokenizer: TextTokenizer;
  generation: GenerationDefaults | null;
} {
  const cfg = parseModelConfig(f.config, `${f.source}/config.json`);
  const { tensors } = parseSafetensors(f.safetensors, `${f.source}/model.safetensors`);
  const host = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { name } of parameterNames(cfg)) {
    const t = tensors.get(name);
    if (t) host.set(name, { shape: t.shape.slice(), data: toFloat32(t) });
  }
  return {
    model: CausalLM.fromHost(cfg, host),
    tokenizer: TextTokenizer.fromJson(f.tokenizer, f.tokenizerConfig),
    generation: f.generation ? parseGenerationConfig(f.generation, cfg, `${f.source}/generation_config.json`) : null,
  };
}

export const DEFAULTS: BrowserDemoOptions = {
  seed: 0,
  sftSteps: 600,
  sftBatch: WARMSTART.batchSize,
  evalEvery: 100,
  evalProblems: 100,
  rlSteps: 100,
  prompts: 16,
  G: 8,
  heldout: 200,
  maxCompletion: 40,
};

export type DemoEvent =
  | { t: 'log'; line: string }
  | { t: 'sft'; step: number; loss: number }
  | { t: 'heldout'; phase: 'warm start' | 'before' | 'after'; step: number; accuracy: number; total: number }
  | {
      t: 'step';
      step: number;
      reward: number;
      rewardStd: number;
      fracZeroStd: number;
      loss: number;
      gradNorm: number;
      skipped: boolean;
      seconds: number;
      sample: { prompt: string; completion: string; reward: number };
    }
  | { t: 'done'; before: number; after: number; seconds: number };

/**
 * The maths verifier (src/rewards/math-verify/verify.ts) behind the pool's interface, run in this
 * worker: verify() as the pool's workers call it (unanchored unless asked, as VerifierPool).
 */
class InThreadVerifier {
  async verify(gold: string, pred: string, opts: { extractWithoutAnchor?: boolean } = {}): Promise<VerifyResult> {
    try {
      return { equal: verify(gold, pred, { extractWithoutAnchor: opts.extractWithoutAnchor ?? true }) };
    } catch (e) {
      return { equal: false, error: String((e as Error)?.message ?? e) };
    }
  }
  verifyMany(pairs: ReadonlyArray<{ gold: string; pred: string }>): Promise<VerifyResult[]> {
    return Promise.all(pairs.map((p) => this.verify(p.gold, p.pred)));
  }
  async close(): Promise<void> {}
}

const tick = () => new Promise((r) => setTimeout(r, 0));

export async function runBrowserDemo(opts: Partial<BrowserDemoOptions>, post: (e: DemoEvent) => void): Promise<void> {
  const o = { ...DEFAULTS, ...opts };
  const t0 = performance.now();
  const log = (line: string) => post({ t: 'log', line });
  const seed = o.seed;

  // the demo's model: a character-level Qwen2 (DEMO_SHAPE), random init in memory, or a warm start's folder
  const init = o.warmStart ? null : initModel(DEMO_SHAPE, { seed, charVocab: true, source: 'demo' });
  const { model, tokenizer, generation } = o.warmStart
    ? loadFolder(o.warmStart)
    : {
        model: CausalLM.fromHost(init!.cfg, init!.tensors),
        tokenizer: TextTokenizer.fromJson(init!.tokenizer!.tokenizerJson, init!.tokenizer!.tokenizerConfig),
        generation: init!.generation,
      };
  const { eosTokenId: eos, padTokenId } = specialTokens(model.cfg, tokenizer, generation, 'browser demo');
  log(
    `model: ${model.numParameters().toLocaleString('en')} parameters (${model.cfg.numLayers} layers), ${o.warmStart ? `warm start ${o.warmStart.source}` : 'random init'}, on ${model.lmHeadWeight().backend.name}`,
  );
  const verifier = new InThreadVerifier();
  const pool = verifier as unknown as VerifierPool;

  // 1) warm start: the demo's SFT recipe (src/builtin/warmstart.ts), for o.sftSteps steps
  if (o.sftSteps > 0 && !o.warmStart) {
    const stream = trainStream(seed + 1000, DEMO_LEVEL);
    const evalSet = heldOutSet(DEMO_LEVEL, o.evalProblems);
    log(`warm start: SFT from scratch, up to ${o.sftSteps} steps of ${o.sftBatch} worked problems`);
    const res = await sftTrain(model, () => arithSftPair(tokenizer, stream(), eos), {
      learningRate: WARMSTART.learningRate,
      batchSize: o.sftBatch,
      maxSteps: o.sftSteps,
      maxGradNorm: 1.0,
      seed,
      padTokenId,
      evalEvery: o.evalEvery > 0 ? o.evalEvery : undefined,
      onStep: (step, loss) => post({ t: 'sft', step, loss }),
      onEval: async (step) => {
        const r = await heldoutAccuracy(model, tokenizer, evalSet, { pool, batchSize: 64 });
        post({ t: 'heldout', phase: 'warm start', step, accuracy: r.accuracy, total: r.total });
        return r.accuracy >= WARMSTART.targetAccuracy;
      },
    });
    log(`warm start: ${res.steps} steps in ${res.seconds.toFixed(1)} s, final loss ${res.losses.at(-1)?.toFixed(4)}`);
  }

  const heldout = heldOutSet(DEMO_LEVEL, o.heldout);
  const accuracy = async (phase: 'before' | 'after', step: number) => {
    if (heldout.length === 0) return NaN;
    const r = await heldoutAccuracy(model, tokenizer, heldout, { pool, batchSize: 64 });
    post({ t: 'heldout', phase, step, accuracy: r.accuracy, total: r.total });
    return r.accuracy;
  };
  const before = await accuracy('before', 0);

  // 2) GPG: the demo's recipe (src/demo/demo.ts), validated as the CLI validates it
  const cfg = validateConfig(
    {
      ...demoTrainConfig('builtin:demo', 'browser', seed, o.rlSteps),
      num_generations: o.G,
      per_device_train_batch_size: o.prompts * o.G,
      max_completion_length: o.maxCompletion,
      ...(o.maxResampleRounds !== undefined ? { max_resample_rounds: o.maxResampleRounds } : {}),
    },
    'browser demo',
    { baseDir: '/', checkModel: false, checkPaths: false, warn: log },
  );
  const setup = await prepareRun(
    cfg,
    {
      model,
      tokenizer,
      rows: arithRows(Array.from({ length: 20000 }, trainStream(seed, DEMO_LEVEL))),
      rewardFns: [
        {
          name: 'accuracy',
          // anchored extraction, as the trainer's accuracy reward (setup.ts: anchoredVerifier)
          fn: accuracyReward({
            verifier: anchoredVerifier(pool, { extract_without_anchor: cfg.extract_without_anchor }),
          }),
          weight: 1,
          abortable: true,
        },
      ],
    },
    log,
  );
  const algo = algorithmFor(cfg.loss_type);
  if (algo.usesReference(cfg) || algo.companion || algo.update)
    throw new Error(`${cfg.loss_type}: this page runs the group families without a reference model (GPG, GRPO)`);
  const G = cfg.num_generations;
  const rng = new Rng(cfg.seed, 1); // sampling, as the trainer seeds it
  const sampler = new PromptSampler(setup.rows, cfg.seed);
  const optimizer = makeOptimizer(model.trainableParameters(), {
    learningRate: cfg.learning_rate,
    weightDecay: cfg.weight_decay,
    beta1: cfg.adam_beta1,
    beta2: cfg.adam_beta2,
    eps: cfg.adam_epsilon,
  });
  const iterations = algo.iterations(cfg);
  let optimizerSteps = 0;
  log(
    `GPG: ${setup.totalSteps} steps of ${setup.promptsPerStep} prompts × G ${G}, lr ${cfg.learning_rate}, reward accuracy (maths verifier)`,
  );
  for (let step = 0; step < setup.totalSteps; step++) {
    const ts = performance.now();
    await tick(); // let the page's messages in
    const stats = newStats();
    const ctx = rolloutContext(cfg, { ...setup, model, tokenizer }, rng);
    // 1–2) experience, collected the algorithm's way (GPG: β_th resampling), without gradients
    model.setRequiresGrad(false);
    const batch = await algo.collect(cfg, {
      groupsPerStep: setup.promptsPerStep,
      sample: (n) => rollout(ctx, sampler.next(n), stats),
      log,
      step: step + 1,
      rewardNames: setup.rewards.map((r) => r.name),
    });
    model.setRequiresGrad(true);
    for (const e of stats.errors) log(`step ${step + 1}: reward ${e.name} failed (${e.kind}): ${e.message}`);
    // 3–5) advantages, the loss over the step batch (one micro-batch), backward, AdamW
    const adv = algo.advantages(cfg, batch);
    let loss = NaN;
    let gradNorm = NaN;
    if (!batch.skip) {
      const prompts: number[][] = [];
      const comps: number[][] = [];
      const keep: boolean[] = [];
      for (const g of batch.groups)
        for (let i = 0; i < G; i++) {
          prompts.push(g.row.ids);
          comps.push(g.completions[i]!);
          keep.push(!(cfg.mask_truncated_completions && !g.finished[i]));
        }
      const packed = packBatch(prompts, comps, setup.padTokenId, keep);
      const { B, T } = packed;
      const denominators = { tokens: packed.m.reduce((a, x) => a + x, 0), sequences: B };
      for (let it = 0; it < iterations; it++) {
        const res = tidy(() => {
          const { logps, index } = model.tokenLogps(packed, {
            checkpoint: cfg.gradient_checkpointing,
            temperature: cfg.temperature,
            select: packed.m,
          });
          const values = logps.toFloat32();
          const lp = new Float64Array(B * (T - 1));
          for (let i = 0; i < index.length; i++) {
            if (!Number.isFinite(values[i]!)) throw new Error(`step ${step + 1}: non-finite token log-prob`);
            lp[index[i]!] = values[i]!;
          }
          const out = algo.loss(cfg, batch, {
            lp,
            oldLp: algo.needsOldLogps(cfg) ? lp.slice() : undefined,
            mask: packed.m,
            advantages: adv.slice(0, B),
            B,
            Tm1: T - 1,
            denominators,
            micro: 0,
          });
          if (index.length > 0) {
            const seed = new Float32Array(index.length);
            for (let i = 0; i < index.length; i++) seed[i] = out.dlp[index[i]!]!;
            backward(logps, Tensor.fromArray(seed, [index.length]));
          }
          return out;
        });
        loss = res.loss;
        const lr = learningRateAt(optimizerSteps, setup.totalSteps * iterations, {
          learningRate: cfg.learning_rate,
          warmupRatio: cfg.warmup_ratio,
          warmupSteps: cfg.warmup_steps,
          scheduler: cfg.lr_scheduler_type,
        });
        const s = optimizerStep(optimizer, model.parameters(), { lr, maxGradNorm: cfg.max_grad_norm });
        gradNorm = s.gradNorm;
        if (!s.stepped) log(`step ${step + 1}: non-finite gradient norm; update skipped`);
        optimizerSteps++;
      }
    }
    const rs = rewardStats(stepRewards(batch.groups, G), G);
    const g0 = batch.groups[0];
    post({
      t: 'step',
      step: step + 1,
      reward: rs.reward,
      rewardStd: rs.rewardStd,
      fracZeroStd: rs.fracRewardZeroStd,
      loss,
      gradNorm,
      skipped: batch.skip,
      seconds: (performance.now() - ts) / 1000,
      sample: g0
        ? { prompt: g0.row.text, completion: g0.texts[0] ?? '', reward: g0.rewards[0] ?? NaN }
        : { prompt: '', completion: '', reward: NaN },
    });
  }
  const after = await accuracy('after', setup.totalSteps);
  post({ t: 'done', before, after, seconds: (performance.now() - t0) / 1000 });
}
