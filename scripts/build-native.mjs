#!/usr/bin/env node
// Builds the native addon (node-gyp) during `npm ci` / `npm install`.
// oneDNN (Debian: libdnnl-dev) must be present; when it is missing and we run as root on a
// Debian-like system, it is installed with apt-get; otherwise the build stops with one clear line.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function fail(msg) {
  console.error(`gpg-rl: ${msg}`);
  process.exit(1);
}

const header = [
  '/usr/include/oneapi/dnnl/dnnl.hpp',
  '/usr/include/dnnl.hpp',
  '/usr/local/include/dnnl.hpp',
  '/usr/local/include/oneapi/dnnl/dnnl.hpp',
];
if (!header.some((h) => existsSync(h))) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    console.error('gpg-rl: oneDNN not found; installing libdnnl-dev with apt-get ...');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', '-qq', 'libdnnl-dev'], { stdio: 'inherit', env });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      r = spawnSync('apt-get', ['install', '-y', '-qq', 'libdnnl-dev'], { stdio: 'inherit', env });
    }
    if (r.status !== 0) fail('could not install oneDNN; run `apt-get install -y libdnnl-dev` and retry `npm ci`.');
  } else {
    fail(
      'oneDNN is missing: install it with `sudo apt-get install -y libdnnl-dev` (Debian/Ubuntu), then rerun `npm ci`.',
    );
  }
}

const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = process.env.npm_config_node_gyp;
}
if (!gyp || !existsSync(gyp))
  fail('node-gyp not found; run `npm ci` (it is a dev dependency) or `npm install -g node-gyp`.');
const jobs = String(Math.max(1, (await import('node:os')).cpus().length));
// Build against the local Node headers (no header download): npm's nodedir, else the system's.
const gypArgs = [gyp, 'rebuild', '-j', jobs];
const nodedir =
  process.env.npm_config_nodedir ||
  (existsSync(join(dirname(process.execPath), '..', 'include', 'node', 'node_api.h'))
    ? join(dirname(process.execPath), '..')
    : '');
if (nodedir) gypArgs.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, gypArgs, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  const out = `${r.stdout}\n${r.stderr}`;
  const errs = out
    .split('\n')
    .filter((l) => /error/i.test(l))
    .slice(0, 8);
  console.error(errs.join('\n'));
  fail(
    `native build failed (node-gyp exit ${r.status}); the first errors are above. Needs g++ (C++17), make, python3 and libdnnl-dev.`,
  );
}
console.error('gpg-rl: native addon built');
