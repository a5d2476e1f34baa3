/**
 * @module demo/ablate
 * `gpg-rl ablate`: the GPG paper's Table 1 ablation, reproduced at small scale on the built-in
 * arithmetic task. From ONE warm-start model and the SAME budget of generated completions, every
 * arm is trained over several seeds and scored by greedy held-out accuracy:
 *
 *   grpo         GRPO (std-normalised advantages, clipped ratio, β = 0.04 KL, per-sequence mean)
 *   dr_grpo      Dr. GRPO (unscaled advantages, ÷ B·max_completion_length)
 *   dapo         DAPO (clip-higher 0.2/0.28, token mean, dynamic sampling)
 *   gpg_std      GPG with F_norm = std, α = 1
 *   gpg_no_age   GPG with F_norm = 1, α = 1
 *   gpg          GPG + AGE (α = groups / valid groups)
 *   gpg_beta_th  GPG + AGE + β_th resampling (min_inverse_alpha 0.6, as in the paper)
 *   sft_more     control: more SFT on gold solutions for the same wall time as the RL arms
 *
 * Writes ablation.md (mean ± std per arm, wall time, generated tokens), ablation.json and
 * reward_curves.svg (mean reward per step, one line per arm). Every arm/seed is deterministic.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { heldOutSet, trainStream, arithRows } from '../data/arith.ts';
import { CausalLM } from '../model/decoder.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';
import { validateConfig } from '../rl/recipe.ts';
import { train } from '../rl/trainer.ts';
import { svgLinePlot } from '../rl/report.ts';
import { sftTrain } from '../sft/sft.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { getNumThreads } from '../backend/index.ts';
import { DEMO_LEVEL, demoTrainConfig, defaultCacheDir, warmStart, WARMSTART, HELDOUT_N } from './demo.ts';
import { heldoutAccuracy } from '../builtin/heldout.ts';
import { arithSftPair } from '../builtin/warmstart.ts';
import { specialTokens } from '../model/special.ts';
import { UsageError } from '../errors.ts';
import { ensureDir } from '../io/fs.ts';

export const ARMS: Record<string, Record<string, unknown>> = {
  grpo: { loss_type: 'grpo' },
  dr_grpo: { loss_type: 'dr_grpo' },
  dapo: { loss_type: 'dapo' },
  gpg_std: { loss_type: 'gpg', scale_rewards: true, adjust_gd: false, min_inverse_alpha: null },
  gpg_no_age: { loss_type: 'gpg', scale_rewards: false, adjust_gd: false, min_inverse_alpha: null },
  gpg: { loss_type: 'gpg', adjust_gd: true, min_inverse_alpha: null },
  gpg_beta_th: { loss_type: 'gpg', adjust_gd: true, min_inverse_alpha: 0.6 },
  sft_more: {},
};
export const ARM_ORDER = ['grpo', 'dr_grpo', 'dapo', 'gpg_std', 'gpg_no_age', 'gpg', 'gpg_beta_th', 'sft_more'];

export interface AblateOptions {
  arms?: string[];
  seeds?: number[];
  /** RL steps of 16 prompts × 8 completions that define the completion budget. */
  steps?: number;
  outDir?: string;
  cacheDir?: string;
  /** Seed of the shared warm start. */
  warmSeed?: number;
  heldoutN?: number;
  /** Overrides of the warm-start settings (toy-size tests). */
  warmstart?: Partial<typeof WARMSTART>;
  log?: (s: string) => void;
}

interface RowResult {
  arm: string;
  seed: number;
  accuracy: number;
  seconds: number;
  generatedTokens: number;
  generatedCompletions: number;
  steps: number;
  rewardCurve: number[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: number[]) =>
  xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));

export async function runAblation(
  o: AblateOptions = {},
): Promise<{ table: string; outDir: string; rows: RowResult[] }> {
  const arms = o.arms ?? ARM_ORDER;
  for (const a of arms)
    if (!(a in ARMS)) throw new UsageError(`--arms: unknown arm "${a}" (known: ${ARM_ORDER.join(', ')})`);
  const seeds = o.seeds ?? [0, 1, 2];
  const steps = o.steps ?? 150;
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const outDir = resolve(o.outDir ?? 'runs/ablation');
  ensureDir(outDir, `--out ${outDir}`);
  const pool = new VerifierPool({ timeoutMs: 2000 });
  const heldout = heldOutSet(DEMO_LEVEL, o.heldoutN ?? HELDOUT_N);
  const rows: RowResult[] = [];
  const resultsPath = join(outDir, 'ablation.json');
  // earlier rows (the same arm/seed/steps reproduce exactly, so they are reused)
  const previous: RowResult[] = existsSync(resultsPath)
    ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as { rows: RowResult[] }).rows
    : [];
  try {
    const warm = { ...WARMSTART, ...o.warmstart };
    const ws = await warmStart(o.warmSeed ?? 0, { cacheDir: o.cacheDir ?? defaultCacheDir(), warm, log, pool });
    const base = await heldoutAccuracy(ws.model, ws.tokenizer, heldout, { pool });
    log(`ablation: warm start held-out accuracy ${(base.accuracy * 100).toFixed(1)}%`);
    ws.model.dispose();
    const budget = steps * 16 * 8;
    const rlSeconds: number[] = [];
    for (const arm of arms.filter((a) => a !== 'sft_more').concat(arms.includes('sft_more') ? ['sft_more'] : [])) {
      for (const seed of seeds) {
        const prev = previous.find(
          (r) =>
            r.arm === arm &&
            r.seed === seed &&
            r.steps >= 0 &&
            (r as RowResult & { budget?: number }).budget === budget,
        );
        if (prev) {
          log(`ablation: ${arm} seed ${seed}: reusing ${(prev.accuracy * 100).toFixed(1)}% from ${resultsPath}`);
          rows.push(prev);
          if (arm !== 'sft_more') rlSeconds.push(prev.seconds);
          continue;
        }
        const model = CausalLM.load(ws.dir);
        const tokenizer = TextTokenizer.fromDir(ws.dir);
        const t0 = performance.now();
        let row: RowResult;
        if (arm === 'sft_more') {
          const seconds = mean(rlSeconds.length ? rlSeconds : [60]);
          const stream = trainStream(seed + 5000, DEMO_LEVEL);
          const { eosTokenId: eos, padTokenId } = specialTokens(model.cfg, tokenizer, null, 'ablation warm start');
          const res = await sftTrain(model, () => arithSftPair(tokenizer, stream(), eos), {
            learningRate: warm.learningRate / 4,
            batchSize: warm.batchSize,
            maxSteps: 1_000_000,
            maxSeconds: seconds,
            maxGradNorm: 1,
            seed,
            padTokenId,
          });
          const acc = await heldoutAccuracy(model, tokenizer, heldout, { pool });
          row = {
            arm,
            seed,
            accuracy: acc.accuracy,
            seconds: res.seconds,
            generatedTokens: 0,
            generatedCompletions: 0,
            steps: res.steps,
            rewardCurve: [],
          };
        } else {
          const cfgRaw = {
            ...demoTrainConfig(ws.dir, join(outDir, 'runs', `${arm}-seed${seed}`), seed, 100000),
            ...ARMS[arm],
          };
          const cfg = validateConfig(cfgRaw, `ablation arm ${arm}`, { checkModel: false });
          const res = await train(cfg, {
            model,
            tokenizer,
            modelDir: ws.dir,
            rows: arithRows(Array.from({ length: 20000 }, trainStream(seed, DEMO_LEVEL))),
            maxGeneratedCompletions: budget,
            log: () => {},
          });
          const acc = await heldoutAccuracy(res.model, tokenizer, heldout, { pool });
          row = {
            arm,
            seed,
            accuracy: acc.accuracy,
            seconds: (performance.now() - t0) / 1000,
            generatedTokens: res.generatedTokens,
            generatedCompletions: res.generatedCompletions,
            steps: res.steps,
            rewardCurve: res.metrics.map((m) => m['reward']!),
          };
          rlSeconds.push(row.seconds);
        }
        (row as RowResult & { budget: number }).budget = budget;
        model.dispose();
        rows.push(row);
        log(
          `ablation: ${arm} seed ${seed}: held-out ${(row.accuracy * 100).toFixed(1)}% in ${row.seconds.toFixed(0)} s (${row.steps} steps, ${row.generatedTokens} generated tokens)`,
        );
        writeFileAtomic(
          resultsPath,
          JSON.stringify(
            {
              warmstart_accuracy: base.accuracy,
              budget_completions: budget,
              rows: [...rows, ...previous.filter((p) => !rows.some((r) => r.arm === p.arm && r.seed === p.seed))],
            },
            null,
            1,
          ) + '\n',
        );
      }
    }
    const table = renderTable(rows, arms, seeds, base.accuracy, budget, heldout.length);
    writeFileAtomic(join(outDir, 'ablation.md'), table);
    const series = arms
      .filter((a) => a !== 'sft_more')
      .map((arm) => {
        const curves = rows.filter((r) => r.arm === arm).map((r) => r.rewardCurve);
        const n = Math.min(...curves.map((c) => c.length));
        return {
          name: arm,
          points: Array.from({ length: n }, (_, i) => [i + 1, mean(curves.map((c) => c[i]!))] as [number, number]),
        };
      });
    writeFileAtomic(
      join(outDir, 'reward_curves.svg'),
      svgLinePlot(series, {
        title: 'mean training reward per step (mean over seeds)',
        xLabel: 'step',
        yLabel: 'reward',
        width: 720,
        height: 360,
      }),
    );
    return { table, outDir, rows };
  } finally {
    await pool.close();
  }
}

function renderTable(
  rows: RowResult[],
  arms: string[],
  seeds: number[],
  base: number,
  budget: number,
  nHeldout: number,
): string {
  const lines = [
    `Held-out greedy accuracy on ${nHeldout} fixed problems (level ${DEMO_LEVEL} arithmetic), warm start ${(base * 100).toFixed(1)}%;`,
    `each RL arm generates ${budget} completions (G = 8); seeds ${seeds.join(', ')}; ${getNumThreads()} threads.`,
    '',
    '| arm | held-out accuracy (mean ± std) | Δ vs warm start | wall time (s, mean) | generated tokens (mean) | steps (mean) |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const arm of arms) {
    const r = rows.filter((x) => x.arm === arm);
    if (!r.length) continue;
    const acc = r.map((x) => x.accuracy * 100);
    lines.push(
      `| ${arm} | ${mean(acc).toFixed(1)} ± ${std(acc).toFixed(1)} | ${mean(acc) - base * 100 >= 0 ? '+' : ''}${(mean(acc) - base * 100).toFixed(1)} | ${mean(r.map((x) => x.seconds)).toFixed(0)} | ${Math.round(mean(r.map((x) => x.generatedTokens)))} | ${Math.round(mean(r.map((x) => x.steps)))} |`,
    );
  }
  return lines.join('\n') + '\n';
}
