/**
 * @module demo/demo
 * `gpg-rl demo`: the embedded end-to-end demonstration, offline on a laptop CPU.
 *   1) warm start (src/builtin/warmstart.ts): a tiny character-level Qwen2 (≈0.4M parameters)
 *      trained from scratch with SFT until greedy held-out accuracy reaches ~30%, cached
 *   2) held-out accuracy before (greedy, 500 fixed problems never seen in training)
 *   3) GPG (the paper's defaults: F_norm = 1, AGE, β_th resampling) with the accuracy reward
 *   4) held-out accuracy after; run folder with metrics.jsonl, completions.jsonl, report.html
 * The SFT stopping point and the RL settings follow the feasibility run in issue 6 (G = 8,
 * 16 prompts per step, lr 1e-4, grad clip 1.0; higher learning rates collapsed).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { heldOutSet, trainStream, arithRows, type ArithProblem } from '../data/arith.ts';
import { heldoutAccuracy } from '../builtin/heldout.ts';
import { DEMO_LEVEL, HELDOUT_N, WARMSTART, defaultCacheDir, warmStart } from '../builtin/warmstart.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';
import { validateConfig } from '../rl/recipe.ts';
import { train } from '../rl/trainer.ts';

export { DEMO_LEVEL, DEMO_SHAPE, HELDOUT_N, WARMSTART, defaultCacheDir, warmStart } from '../builtin/warmstart.ts';

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

/** The GPG recipe of the demo (TRL field names; everything else at the gpg defaults of DESIGN §5). */
export function demoTrainConfig(
  warmDir: string,
  outputDir: string,
  seed: number,
  steps: number,
): Record<string, unknown> {
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
    log(
      `held-out accuracy before GPG: ${(before.accuracy * 100).toFixed(1)}% (${before.correct}/${before.total}, greedy)`,
    );
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    const runDir = resolve(o.runsDir ?? 'runs', `demo-seed${seed}-${stamp}`);
    const steps = o.rlSteps ?? DEMO_RL_STEPS;
    const cfg = validateConfig(demoTrainConfig(ws.dir, runDir, seed, steps), 'demo', { checkModel: false });
    const res = await train(cfg, {
      model: ws.model,
      tokenizer: ws.tokenizer,
      modelDir: ws.dir,
      rows: arithRows(Array.from({ length: 20000 }, trainStream(seed, DEMO_LEVEL))),
    });
    const after = await heldoutAccuracy(res.model, ws.tokenizer, heldout, { pool });
    log(
      `held-out accuracy after GPG:  ${(after.accuracy * 100).toFixed(1)}% (${after.correct}/${after.total}, greedy); run folder ${runDir} (report.html)`,
    );
    const out: DemoResult = {
      heldout_accuracy_before: before.accuracy,
      heldout_accuracy_after: after.accuracy,
      run_dir: runDir,
      warmstart_dir: ws.dir,
      seed,
      rl_steps: steps,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
    writeFileSync(
      join(runDir, 'demo.json'),
      JSON.stringify({ ...out, before_samples: before.samples, after_samples: after.samples }, null, 1) + '\n',
    );
    ws.model.dispose();
    return out;
  } finally {
    await pool.close();
  }
}
