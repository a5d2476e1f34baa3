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
 *   ppo          PPO with a critic (GAE, clipped surrogate and value loss, KL in the reward)
 *   trpo         TRPO (natural-gradient step in a KL trust region), present once loss_type trpo exists
 *   sft_more     control: more SFT on gold solutions for the same wall time as the RL arms
 *
 * Writes ablation.md (mean ± std per arm, wall time, generated tokens), ablation.json and
 * reward_curves.svg (mean reward per step, one line per arm). Every arm/seed is deterministic.
 *
 * Beside it, components.md (and `components` in each ablation.json row): the paper's components
 * table per seed, measured. Which components an arm has is read from its resolved config and
 * its run (value model: the trainer held a companion model; reference model: the family's
 * usesReference(); surrogate: a ratio exp(lp − lp_old) in the loss, i.e. every loss but gpg's;
 * constraint: KL penalty / KL in the reward when the reference is used, the clip ε of a clipped
 * surrogate, TRPO's trust region max_kl). Costs per step of the training run (the held-out
 * evaluation excluded): wall time, peak RSS (VmHWM, reset through /proc/self/clear_refs and the
 * allocator's cache released before the arm, so it is the arm's own peak of the whole process,
 * not a growth), parameters held (policy + reference + critic, counted from the run's models) and
 * full-sequence forward / backward passes (src/tensor/passes.ts counters).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { heldOutSet, trainStream, arithRows } from '../data/arith.ts';
import { CausalLM } from '../model/decoder.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';
import { validateConfig } from '../rl/recipe.ts';
import { train, type TrainOptions } from '../rl/trainer.ts';
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
import { algorithmFor } from '../rl/algorithms/index.ts';
import type { TrainConfig } from '../rl/config.ts';
import { defaultBackend } from '../backend/index.ts';
import { passCounts, passDelta } from '../tensor/passes.ts';

export const ARMS: Record<string, Record<string, unknown>> = {
  grpo: { loss_type: 'grpo' },
  dr_grpo: { loss_type: 'dr_grpo' },
  dapo: { loss_type: 'dapo' },
  gpg_std: { loss_type: 'gpg', scale_rewards: true, adjust_gd: false, min_inverse_alpha: null },
  gpg_no_age: { loss_type: 'gpg', scale_rewards: false, adjust_gd: false, min_inverse_alpha: null },
  gpg: { loss_type: 'gpg', adjust_gd: true, min_inverse_alpha: null },
  gpg_beta_th: { loss_type: 'gpg', adjust_gd: true, min_inverse_alpha: 0.6 },
  ppo: { loss_type: 'ppo' },
  trpo: { loss_type: 'trpo' },
  sft_more: {},
};
export const ARM_ORDER = [
  'grpo',
  'dr_grpo',
  'dapo',
  'gpg_std',
  'gpg_no_age',
  'gpg',
  'gpg_beta_th',
  'ppo',
  'trpo',
  'sft_more',
];

/** One arm/seed's row of the components table: what the arm holds and what a step of it cost. */
export interface Components {
  /** A value model (critic) trained beside the policy. */
  valueModel: boolean;
  /** A frozen reference model (KL). */
  referenceModel: boolean;
  /** The surrogate of the loss (ratio / clipping), null for a plain policy gradient. */
  surrogate: string | null;
  /** The policy constraints in effect (KL penalty, clip, trust region); empty = none. */
  constraint: string[];
  steps: number;
  secondsPerStep: number;
  /** Peak resident set of the process during the arm (MB), null where VmHWM cannot be reset. */
  peakRssMB: number | null;
  /** Resident set when the arm started (MB; the process baseline the peak includes). */
  startRssMB: number | null;
  parameters: { policy: number; reference: number; critic: number; total: number };
  /** Per step: full-sequence forward passes (all models), those with gradient, backward passes, sequences forwarded. */
  passesPerStep: { forward: number; forwardWithGrad: number; backward: number; forwardSequences: number };
}

/** The components an RL arm has, from its resolved config (costs are filled in by the run). */
export function armComponents(
  cfg: TrainConfig,
  heldCritic: boolean,
): Pick<Components, 'valueModel' | 'referenceModel' | 'surrogate' | 'constraint'> {
  const algo = algorithmFor(cfg.loss_type);
  const ref = algo.usesReference(cfg);
  const lt = cfg.loss_type as string;
  const c = cfg as TrainConfig & Record<string, unknown>;
  const constraint: string[] = [];
  if (ref) constraint.push(lt === 'ppo' ? `KL in reward (kl_coef ${c['kl_coef']})` : `KL penalty (β ${cfg.beta})`);
  let surrogate: string | null = null;
  if (lt === 'trpo') {
    surrogate = 'ratio';
    constraint.push(`trust region (max_kl ${c['max_kl']})`);
  } else if (lt !== 'gpg') {
    const clip = cfg.epsilon_high === cfg.epsilon ? `${cfg.epsilon}` : `${cfg.epsilon}/${cfg.epsilon_high}`;
    surrogate = `clipped ratio`;
    constraint.push(`clip (ε ${clip})`);
  }
  return { valueModel: heldCritic, referenceModel: ref, surrogate, constraint };
}

/** VmHWM := VmRSS (Linux 4.0+); false where it cannot be reset. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** VmHWM and VmRSS of this process in MB (null off Linux). */
function rssMB(): { peak: number; now: number } | null {
  try {
    const st = readFileSync('/proc/self/status', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1]);
    const peak = kb('VmHWM'),
      now = kb('VmRSS');
    return Number.isFinite(peak) && Number.isFinite(now) ? { peak: peak / 1024, now: now / 1024 } : null;
  } catch {
    return null;
  }
}

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
  /**
   * Training rewards replacing `accuracy` (toy-size tests, where a barely trained warm start earns
   * no reward, every group is invalid and every step skipped); held-out accuracy is scored as always.
   */
  rewardFns?: TrainOptions['rewardFns'];
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
  /** Absent in rows written before the components table existed. */
  components?: Components;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: number[]) =>
  xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));

export async function runAblation(
  o: AblateOptions = {},
): Promise<{ table: string; componentsTable: string; outDir: string; rows: RowResult[] }> {
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
        // the arm's own peak: the allocator's cached regions of earlier arms returned, then VmHWM reset
        defaultBackend().releaseCache?.();
        const rssReset = resetPeakRss();
        const rss0 = rssMB();
        const passes0 = passCounts();
        const model = CausalLM.load(ws.dir);
        const tokenizer = TextTokenizer.fromDir(ws.dir);
        const t0 = performance.now();
        const measured = (nSteps: number, seconds: number, parameters: Components['parameters']) => {
          const rss = rssMB();
          const d = passDelta(passes0);
          const per = (x: number) => x / Math.max(1, nSteps);
          return {
            steps: nSteps,
            secondsPerStep: seconds / Math.max(1, nSteps),
            peakRssMB: rssReset && rss ? rss.peak : null,
            startRssMB: rss0 ? rss0.now : null,
            parameters,
            passesPerStep: {
              forward: per(d.forward),
              forwardWithGrad: per(d.forwardWithGrad),
              backward: per(d.backward),
              forwardSequences: per(d.forwardSequences),
            },
          };
        };
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
          const n = model.numParameters();
          const cost = measured(res.steps, res.seconds, { policy: n, reference: 0, critic: 0, total: n });
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
            components: { valueModel: false, referenceModel: false, surrogate: null, constraint: [], ...cost },
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
            rewardFns: o.rewardFns,
            log: () => {},
          });
          const p = res.parameters;
          const cost = measured(res.steps, res.seconds, {
            policy: p.policy,
            reference: p.reference,
            critic: p.companion,
            total: p.policy + p.reference + p.companion,
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
            components: { ...armComponents(cfg, p.companion > 0), ...cost },
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
    const componentsTable = renderComponents(rows, arms, seeds, budget);
    writeFileAtomic(join(outDir, 'components.md'), componentsTable);
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
    return { table, componentsTable, outDir, rows };
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

const mark = (b: boolean) => (b ? '✓' : '✗');
const fmt = (x: number, d: number) => (Number.isInteger(x) ? String(x) : x.toFixed(d));

/** components.md: per seed, one row per arm (what it holds, what a training step cost). */
export function renderComponents(rows: RowResult[], arms: string[], seeds: number[], budget: number): string {
  const lines = [
    `Components per arm, measured over each RL arm's training run (${budget} generated completions; held-out`,
    'evaluation excluded). Value / reference model, surrogate and constraint are read from the resolved config',
    'and the models the run held; peak RSS is the process VmHWM during the arm (reset before it, allocator cache',
    'released), whole process, so it includes what earlier arms of the same process left resident; in brackets its',
    "rise over the process's resident set at the arm's start; passes are full-sequence decoder forwards (policy,",
    'reference and critic; generation decode steps',
    'not counted) and tape backward walks, per step. sft_more is the SFT control (its steps are SFT batches).',
  ];
  for (const seed of seeds) {
    lines.push(
      '',
      `### seed ${seed}`,
      '',
      '| arm | value model | reference model | surrogate | constraint | s/step | peak RSS (MB) [+ over start] | parameters held (policy + ref + critic) | forward / step (with grad) | backward / step | sequences forwarded / step |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const arm of arms) {
      const r = rows.find((x) => x.arm === arm && x.seed === seed);
      if (!r) continue;
      const c = r.components;
      if (!c) {
        lines.push(`| ${arm} | not measured (row from an earlier run; delete it from ablation.json to rerun) |`);
        continue;
      }
      const p = c.parameters;
      const q = c.passesPerStep;
      lines.push(
        `| ${arm} | ${mark(c.valueModel)} | ${mark(c.referenceModel)} | ${c.surrogate ? `✓ ${c.surrogate}` : '✗'} | ${c.constraint.length ? `✓ ${c.constraint.join(' + ')}` : '✗'} | ${c.secondsPerStep.toFixed(2)} | ${c.peakRssMB === null ? 'n/a' : c.peakRssMB.toFixed(0)}${c.peakRssMB !== null && c.startRssMB !== null ? ` [+${Math.max(0, c.peakRssMB - c.startRssMB).toFixed(0)}]` : ''} | ${p.total} (${p.policy} + ${p.reference} + ${p.critic}) | ${fmt(q.forward, 1)} (${fmt(q.forwardWithGrad, 1)}) | ${fmt(q.backward, 1)} | ${fmt(q.forwardSequences, 1)} |`,
      );
    }
  }
  return lines.join('\n') + '\n';
}
