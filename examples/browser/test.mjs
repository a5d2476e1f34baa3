#!/usr/bin/env node
// The page in headless Chromium: builds dist/, serves it on loopback (cross-origin isolated), opens
// it with WebGPU enabled (Chromium's SwiftShader adapter where there is no GPU) and checks that the
// SFT warm start and a few GPG steps run and that the reward plot is redrawn with each step.
//   node test.mjs [--steps 2] [--sft 2] [--timeout 420]   (CHROMIUM=/path/to/chromium; default /usr/bin/chromium)
// Prints one JSON line with what the page reported; exit 0 when the checks pass, 1 when they fail,
// 2 when it cannot run here (no chromium), saying why.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { buildPage } from './build.mjs';
import { serve } from './serve.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const steps = arg('steps', 2);
const sft = arg('sft', 2);
const timeoutS = arg('timeout', 420);
const exe = process.env.CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!exe) {
  console.log('skip: no chromium (Debian: apt-get install chromium; or set CHROMIUM)');
  process.exit(2);
}

const t0 = Date.now();
await buildPage();
const server = await serve();
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
    sftSteps: String(sft),
    evalEvery: '0',
    rlSteps: String(steps),
    sftBatch: '4',
    prompts: '1',
    G: '4',
    heldout: '0',
    maxCompletion: '8',
    maxResampleRounds: '1',
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
  const checks = {
    in_time: !timedOut,
    no_error: !r.error,
    adapter: !!r.adapter,
    sft_ran: r.sftSteps === sft && r.sftLoss.every(Number.isFinite),
    gpg_steps: r.steps.length >= steps,
    losses_finite: r.steps.every((s) => s.skipped || (Number.isFinite(s.loss) && Number.isFinite(s.gradNorm))),
    plot_redrawn: r.rewardDraws >= steps,
    plot_changed: r.plot !== blank,
  };
  ok = Object.values(checks).every(Boolean);
  const { plot, log, ...rest } = r;
  console.log(JSON.stringify({ ok, seconds: (Date.now() - t0) / 1000, checks, ...rest }));
  if (!ok) console.log(`page log:\n${log}\nconsole:\n${consoleLines.join('\n')}`);
} catch (e) {
  console.log(`browser test failed: ${e.message}`);
} finally {
  await browser.close();
  await server.close();
}
process.exit(ok ? 0 : 1);
