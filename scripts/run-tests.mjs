#!/usr/bin/env node
// Runs the test suite with Node's built-in runner (TypeScript through tsx).
//   npm test                      all of test/**/*.test.ts
//   npm test -- test/native       only files under a path (or several paths / files)
import { readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const args = process.argv.slice(2);
const roots = args.length ? args.map((a) => join(root, a)) : [join(root, 'test')];
const files = [];
for (const r of roots) {
  if (statSync(r).isDirectory()) walk(r, files);
  else files.push(r);
}
if (files.length === 0) {
  console.error('no test files found under', roots.map((r) => relative(root, r)).join(', '));
  process.exit(1);
}
const conc = process.env.GPG_TEST_CONCURRENCY ?? '2';
const r = spawnSync(
  process.execPath,
  [
    '--expose-gc',
    '--conditions=gpg-rl-source',
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${conc}`,
    '--test-reporter=spec',
    ...files.map((f) => relative(root, f)),
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, GPG_RL_TEST: '1' },
  },
);
process.exit(r.status ?? 1);
