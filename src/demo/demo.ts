/**
 * @module demo/demo
 * `gpg-rl demo`: the embedded end-to-end demonstration, offline on a laptop CPU.
 *   1) warm start: a tiny character-level Qwen2 (≈0.4M parameters) trained from scratch with SFT
 *      on worked arithmetic solutions until greedy held-out accuracy reaches ~30% (cached in
 *      ~/.cache/gpg-rl, outside node_modules, so later runs and `npm ci` keep it)
 *   2) held-out accuracy before (greedy, 500 fixed problems never seen in training)
 *   3) GPG (the paper's defaults: F_norm = 1, AGE, β_th resampling) with the accuracy reward
 *   4) held-out accuracy after; run folder with metrics.jsonl, completions.jsonl, report.html
 * The SFT stopping point and the RL settings follow the feasibility run in issue 6 (G = 8,
 * 16 prompts per step, lr 1e-4, grad clip 1.0; higher learning rates collapsed).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CausalLM } from '../model/decoder.ts';
import { initModel } from '../model/init.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { saveModelFolder } from '../model/folder.ts';
import { heldOutSet, trainStream, arithRows, type ArithProblem } from '../data/arith.ts';
import { sftTrain } from '../sft/sft.ts';
import { heldoutAccuracy } from './heldout.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';
import { validateConfig } from '../rl/recipe.ts';
import { train } from '../rl/loop.ts';

/** Bump when the warm-start recipe changes, so stale caches are not reused. */
const WARMSTART_VERSION = 1;

export const DEMO_SHAPE = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 96,
  intermediate_size: 256,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  max_position_embeddings: 128,
};

export const DEMO_LEVEL = 2;
export const HELDOUT_N = 500;

export const WARMSTART = {
  learningRate: 2e-3,
  batchSize: 64,
  maxSteps: 4000,
  maxSeconds: 300,
  evalEvery: 50,
  evalProblems: 200,
  /** Stop SFT once greedy accuracy on the eval subset reaches this (issue 6: ≥ 30% leaves room and enough valid groups). */
  targetAccuracy: 0.3,
};

export interface DemoOptions {
  seed?: number;
  /** Where run folders go (default runs/). */
  runsDir?: string;
  /** Warm-start cache (default $XDG_CACHE_HOME/gpg-rl or ~/.cache/gpg-rl). */
  cacheDir?: string;
  /** GPG steps (default DEMO_RL_STEPS). */
  rlSteps?: number;
  /** Overrides for the toy-size CI test. */
  warmstart?: Partial<typeof WARMSTART>;
  heldoutN?: number;
  log?: (s: string) => void;
}

export const DEMO_RL_STEPS = 400;

export interface DemoResult {
  heldout_accuracy_before: number;
  heldout_accuracy_after: number;
  run_dir: string;
  warmstart_dir: string;
  seed: number;
  rl_steps: number;
  seconds: number;
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gpg-rl');
}

/** Builds (or loads from the cache) the SFT warm-start model for a seed. */
export async function warmStart(seed: number, o: { cacheDir: string; warm: typeof WARMSTART; log: (s: string) => void; pool: VerifierPool }): Promise<{ dir: string; model: CausalLM; tokenizer: TextTokenizer; accuracy: number; cached: boolean }> {
  const key = createHash('sha256').update(JSON.stringify({ v: WARMSTART_VERSION, shape: DEMO_SHAPE, warm: o.warm, seed, level: DEMO_LEVEL })).digest('hex').slice(0, 12);
  const dir = join(o.cacheDir, 'demo', `warmstart-seed${seed}-${key}`);
  const meta = join(dir, 'warmstart.json');
  if (existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { accuracy: number };
    o.log(`warm start: cached ${dir} (SFT eval accuracy ${(m.accuracy * 100).toFixed(1)}%)`);
    return { dir, model: CausalLM.load(dir), tokenizer: TextTokenizer.fromDir(dir), accuracy: m.accuracy, cached: true };
  }
  o.log(`warm start: training a ${DEMO_SHAPE.num_hidden_layers}-layer character-level Qwen2 from scratch with SFT (cached afterwards in ${dir})`);
  const init = initModel(DEMO_SHAPE, { seed, charVocab: true, source: 'demo' });
  const tok = init.tokenizer!;
  const tokenizer = TextTokenizer.fromJson(tok.tokenizerJson, tok.tokenizerConfig);
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  const eos = tokenizer.eosTokenId!;
  const stream = trainStream(seed + 1000, DEMO_LEVEL);
  const evalSet = heldOutSet(DEMO_LEVEL, o.warm.evalProblems);
  let acc = 0;
  const t0 = performance.now();
  const res = await sftTrain(
    model,
    () => {
      const p = stream();
      return { prompt: tokenizer.encode(p.prompt, { addSpecialTokens: false }), completion: [...tokenizer.encode(p.solution, { addSpecialTokens: false }), eos] };
    },
    {
      learningRate: o.warm.learningRate,
      batchSize: o.warm.batchSize,
      maxSteps: o.warm.maxSteps,
      maxSeconds: o.warm.maxSeconds,
      maxGradNorm: 1.0,
      seed,
      padTokenId: tokenizer.padTokenId ?? eos,
      evalEvery: o.warm.evalEvery,
      onStep: (s, loss) => {
        if (s % 25 === 0) o.log(`warm start: step ${s}, loss ${loss.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      },
      onEval: async (s) => {
        acc = (await heldoutAccuracy(model, tokenizer, evalSet, { pool: o.pool })).accuracy;
        o.log(`warm start: step ${s}, greedy accuracy ${(acc * 100).toFixed(1)}% on ${evalSet.length} problems`);
        return acc >= o.warm.targetAccuracy;
      },
    },
  );
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  saveModelFolder(tmp, model.cfg, model.toHost(), {
    generation: init.generation,
    extraFiles: { 'tokenizer.json': JSON.stringify(tok.tokenizerJson, null, 2) + '\n', 'tokenizer_config.json': JSON.stringify(tok.tokenizerConfig, null, 2) + '\n' },
  });
  writeFileSync(join(tmp, 'warmstart.json'), JSON.stringify({ accuracy: acc, steps: res.steps, seconds: res.seconds, final_loss: res.losses.at(-1), seed, shape: DEMO_SHAPE, warm: o.warm }, null, 1) + '\n');
  mkdirSync(join(o.cacheDir, 'demo'), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  o.log(`warm start: done in ${res.seconds.toFixed(0)} s, ${res.steps} steps`);
  return { dir, model, tokenizer, accuracy: acc, cached: false };
}

/** The GPG recipe of the demo (TRL field names; everything else at the gpg defaults of DESIGN §5). */
export function demoTrainConfig(warmDir: string, outputDir: string, seed: number, steps: number): Record<string, unknown> {
  return {
    model_name_or_path: warmDir,
    dataset: { path: 'builtin:arithmetic', use_chat_template: false },
    output_dir: outputDir,
    seed,
    loss_type: 'gpg',
    reward_funcs: ['accuracy'],
    num_generations: 8,
    per_device_train_batch_size: 128, // 16 prompts × G 8
    max_prompt_length: 32,
    max_completion_length: 40,
    temperature: 1.0,
    learning_rate: 1e-4,
    lr_scheduler_type: 'constant',
    max_grad_norm: 1.0,
    max_steps: steps,
    save_steps: 0,
    logging_steps: 1,
    num_completions_to_log: 4,
  };
}

export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const seed = o.seed ?? 0;
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const t0 = performance.now();
  const warm = { ...WARMSTART, ...o.warmstart };
  const pool = new VerifierPool({ timeoutMs: 2000 });
  try {
    const ws = await warmStart(seed, { cacheDir: o.cacheDir ?? defaultCacheDir(), warm, log, pool });
    const heldout: ArithProblem[] = heldOutSet(DEMO_LEVEL, o.heldoutN ?? HELDOUT_N);
    const before = await heldoutAccuracy(ws.model, ws.tokenizer, heldout, { pool });
    log(`held-out accuracy before GPG: ${(before.accuracy * 100).toFixed(1)}% (${before.correct}/${before.total}, greedy)`);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    const runDir = resolve(o.runsDir ?? 'runs', `demo-seed${seed}-${stamp}`);
    const steps = o.rlSteps ?? DEMO_RL_STEPS;
    const cfg = validateConfig(demoTrainConfig(ws.dir, runDir, seed, steps), 'demo', { checkModel: false });
    const res = await train(cfg, { model: ws.model, tokenizer: ws.tokenizer, modelDir: ws.dir, rows: arithRows(Array.from({ length: 20000 }, trainStream(seed, DEMO_LEVEL))) });
    const after = await heldoutAccuracy(res.model, ws.tokenizer, heldout, { pool });
    log(`held-out accuracy after GPG:  ${(after.accuracy * 100).toFixed(1)}% (${after.correct}/${after.total}, greedy); run folder ${runDir} (report.html)`);
    const out: DemoResult = {
      heldout_accuracy_before: before.accuracy,
      heldout_accuracy_after: after.accuracy,
      run_dir: runDir,
      warmstart_dir: ws.dir,
      seed,
      rl_steps: steps,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
    writeFileSync(join(runDir, 'demo.json'), JSON.stringify({ ...out, before_samples: before.samples, after_samples: after.samples }, null, 1) + '\n');
    ws.model.dispose();
    return out;
  } finally {
    await pool.close();
  }
}
