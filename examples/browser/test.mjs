#!/usr/bin/env node
// The page in headless Chromium: builds dist/, serves it on loopback (cross-origin isolated), opens
// it with WebGPU enabled (Chromium's SwiftShader adapter where there is no GPU) and checks that the
// SFT warm start and a few GPG steps run and that the reward plot is redrawn with each step.
//   node test.mjs [--quick] [--no-warmstart] [--no-cpu-reference] [--steps 2] [--sft 2] [--timeout 420]   (CHROMIUM=/path/to/chromium; default /usr/bin/chromium)
// Prints one JSON line with what the page reported; exit 0 when the checks pass, 1 when they fail,
// 2 when it cannot run here (no chromium), saying why.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { buildPage } from './build.mjs';
import { serve } from './serve.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
// --quick: random init, 1 SFT step, 1 GPG step of 1 prompt × G 2 and 4 tokens (the root suite's smoke run)
const quick = process.argv.includes('--quick');
const steps = arg('steps', quick ? 1 : 2);
const sft = arg('sft', quick ? 1 : 2);
const timeoutS = arg('timeout', 420);
const exe = process.env.CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!exe) {
  console.log('skip: no chromium (Debian: apt-get install chromium; or set CHROMIUM)');
  process.exit(2);
}

// the CLI demo's cached warm start (`gpg-rl demo` builds it: ~30% accuracy, so GPG groups have
// distinct rewards and steps update); without one, two SFT steps in the tab and GPG steps that
// find nothing to learn (all rewards 0: skipped, as the trainer skips them)
const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gpg-rl', 'demo');
const warmDir =
  quick || process.argv.includes('--no-warmstart')
    ? null
    : existsSync(cache)
      ? (readdirSync(cache)
          .filter((d) => d.startsWith('warmstart-seed0-') && existsSync(join(cache, d, 'warmstart.json')))
          .map((d) => join(cache, d))[0] ?? null)
      : null;

const t0 = Date.now();
await buildPage();
const server = await serve(undefined, 0, warmDir ? { '/warmstart/': warmDir } : {});
const browser = await chromium.launch({
  executablePath: exe,
  headless: true,
  // WebGPU is behind a flag on Linux; without a GPU Chromium's adapter is SwiftShader (CPU Vulkan)
  args: ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--no-sandbox'],
});
let ok = false;
try {
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const q = new URLSearchParams({
    autostart: '1',
    rlSteps: String(steps),
    maxResampleRounds: '1',
    heldout: '0',
    ...(warmDir
      ? { warmstart: '/warmstart/', prompts: '2', G: '8', maxCompletion: '40' }
      : {
          sftSteps: String(sft),
          sftBatch: '4',
          evalEvery: '0',
          prompts: '1',
          G: quick ? '2' : '4',
          maxCompletion: quick ? '4' : '8',
        }),
  });
  await page.goto(`${server.url}?${q}`);
  const blank = await page.evaluate(() => document.getElementById('reward').toDataURL());
  const timedOut = await page
    .waitForFunction(
      (n) => {
        const s = window.gpgRl;
        return s && (s.error || s.done || s.steps.length >= n);
      },
      steps,
      { timeout: timeoutS * 1000, polling: 500 },
    )
    .then(
      () => false,
      () => true,
    );
  const r = await page.evaluate(() => {
    const s = window.gpgRl;
    return {
      error: s.error,
      adapter: s.adapter,
      sftSteps: s.sft.length,
      sftLoss: s.sft.map((x) => x.loss),
      steps: s.steps.map((x) => ({
        step: x.step,
        reward: x.reward,
        loss: x.loss,
        gradNorm: x.gradNorm,
        skipped: x.skipped,
        seconds: x.seconds,
      })),
      heldout: s.heldout,
      rewardDraws: s.rewardDraws,
      done: s.done,
      plot: document.getElementById('reward').toDataURL(),
      log: document.getElementById('log').textContent,
    };
  });
  // the same run through the CLI trainer on the native CPU backend (when the repository's addon is built)
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  let reference = null;
  if (warmDir && !process.argv.includes('--no-cpu-reference') && existsSync(join(root, 'build'))) {
    const p = spawnSync(
      process.execPath,
      [
        '--conditions=gpg-rl-source',
        '--import',
        'tsx',
        'examples/browser/cpu-reference.ts',
        warmDir,
        String(steps),
        '2',
        '8',
        '40',
        '1',
      ],
      { cwd: root, encoding: 'utf8', timeout: 300_000 },
    );
    reference =
      p.status === 0
        ? p.stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
        : { failed: (p.stderr || p.error?.message || '').slice(-400) };
  }
  const close = (a, b, rel) => Math.abs(a - b) <= Math.max(rel * Math.abs(b), 1e-5);
  const checks = {
    in_time: !timedOut,
    // every step as the CPU trainer's: rewards equal, loss within max(1e-3·|loss|, 1e-5), grad norm 1e-3 relative
    ...(reference
      ? {
          cpu_reference:
            Array.isArray(reference) &&
            reference.length === r.steps.length &&
            reference.every((c, i) => {
              const b = r.steps[i];
              return c.reward === b.reward && close(b.loss, c.loss, 1e-3) && close(b.gradNorm, c.gradNorm, 1e-3);
            }),
        }
      : {}),
    no_error: !r.error,
    adapter: !!r.adapter,
    sft_ran: warmDir ? r.sftSteps === 0 : r.sftSteps === sft && r.sftLoss.every(Number.isFinite),
    // with the warm start, at least one GPG step updates the weights (loss, backward, AdamW)
    gpg_updated: !warmDir || r.steps.some((s) => !s.skipped),
    gpg_steps: r.steps.length >= steps,
    losses_finite: r.steps.every((s) => s.skipped || (Number.isFinite(s.loss) && Number.isFinite(s.gradNorm))),
    plot_redrawn: r.rewardDraws >= steps,
    plot_changed: r.plot !== blank,
  };
  ok = Object.values(checks).every(Boolean);
  const { plot, log, ...rest } = r;
  console.log(
    JSON.stringify({
      ok,
      seconds: (Date.now() - t0) / 1000,
      warmstart: warmDir,
      checks,
      ...rest,
      cpu_reference: reference,
    }),
  );
  if (!ok) console.log(`page log:\n${log}\nconsole:\n${consoleLines.join('\n')}`);
} catch (e) {
  console.log(`browser test failed: ${e.message}`);
} finally {
  await browser.close();
  await server.close();
}
process.exit(ok ? 0 : 1);
