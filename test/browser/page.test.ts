/**
 * examples/browser in headless Chromium, the quick run (examples/browser/test.mjs --quick, ~25 s):
 * the page bundled by esbuild from src/, served cross-origin isolated on loopback, gets a WebGPU
 * adapter (SwiftShader on a GPU-less machine), builds the demo's model, runs an SFT step and a GPG
 * step (rollout, maths-verifier rewards) and redraws the reward plot. The full check (2 GPG steps
 * from the cached warm start, equal to the CPU trainer) is `cd examples/browser && npm test`.
 * Skipped, with one line saying why, without chromium or without examples/browser's packages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../examples/browser/', import.meta.url));
const chromium = process.env.CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const why = !chromium
  ? 'no chromium on this machine (Debian: apt-get install chromium); the browser page not tested'
  : !existsSync(`${dir}node_modules/playwright-core`) || !existsSync(`${dir}node_modules/esbuild`)
    ? "examples/browser's packages are not installed (cd examples/browser && npm ci); the browser page not tested"
    : false;

test(
  'examples/browser: the demo task trains in headless Chromium on WebGPU and the reward plot updates',
  { skip: why, timeout: 240_000 },
  () => {
    const r = spawnSync(process.execPath, ['test.mjs', '--quick', '--timeout', '180'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 230_000,
      env: { ...process.env, ...(chromium ? { CHROMIUM: chromium } : {}) },
    });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{'));
    assert.equal(r.status, 0, `examples/browser/test.mjs --quick failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(line!) as { checks: Record<string, boolean>; steps: unknown[]; adapter: unknown };
    for (const [k, v] of Object.entries(out.checks)) assert.ok(v, `check ${k} failed: ${line}`);
    assert.ok(out.adapter, 'a WebGPU adapter');
    assert.equal(out.steps.length, 1);
  },
);
