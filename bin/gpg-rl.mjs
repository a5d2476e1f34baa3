#!/usr/bin/env node
// gpg-rl command-line entry. In a checkout (src/ present) it runs the TypeScript sources through
// tsx, with no build step; in the installed npm package (src/ is not shipped) it runs the compiled
// dist/. tsx is registered in both cases when it is installed, so reward modules written in
// TypeScript (`reward_funcs: [{ path: my_reward.ts }]`) load either way.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
let tsx = false;
try {
  const { register } = await import('tsx/esm/api');
  register();
  tsx = true;
} catch {
  // no tsx: the compiled package still runs; only .ts reward modules need it
}
await import(tsx && existsSync(fileURLToPath(source)) ? source.href : '../dist/cli/main.js');
