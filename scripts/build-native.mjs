#!/usr/bin/env node
// Builds the native addon (node-gyp) during `npm ci` / `npm install`.
// First, an installed package (not --force, no GPG_RL_NATIVE_ISA, no GPG_RL_BUILD_FROM_SOURCE=1)
// uses its prebuild when one loads here: prebuilds/<platform>-<arch>/ (scripts/build-prebuilds.mjs;
// linux-x64 and linux-arm64, oneDNN and libgomp bundled), and nothing is compiled or installed.
// Otherwise oneDNN (Debian: libdnnl-dev; macOS: `brew install onednn libomp`) must be present; when
// it is missing and we run as root on a Debian-like system, it is installed with apt-get; otherwise
// the build stops with one clear line.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function fail(msg) {
  console.error(`gpg-rl: ${msg}`);
  process.exit(1);
}

// --mpi-only: just the MPI binding (after installing libopenmpi-dev on a built checkout)
if (process.argv.includes('--mpi-only')) {
  buildMpi();
  process.exit(0);
}

// the prebuild: loaded in a child process (a library this machine lacks, e.g. an older glibc,
// fails the load there, and we build from source instead)
const pre = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (
  !process.argv.includes('--force') &&
  !process.env.GPG_RL_NATIVE_ISA &&
  process.env.GPG_RL_BUILD_FROM_SOURCE !== '1' &&
  existsSync(pre)
) {
  const files = readdirSync(pre).filter((f) => /^gpg_native-.+\.node$/.test(f));
  const ok = files.filter(
    (f) =>
      spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(pre, f))})`], { stdio: 'ignore' }).status === 0,
  );
  if (ok.length) {
    console.error(
      `gpg-rl: using the prebuilt native addon (prebuilds/${process.platform}-${process.arch}: ${ok.join(', ')})`,
    );
    buildMpi();
    process.exit(0);
  }
  console.error(
    `gpg-rl: the prebuilt addon in prebuilds/${process.platform}-${process.arch} does not load here; building from source`,
  );
}

const header = [
  '/opt/homebrew/include/oneapi/dnnl/dnnl.hpp',
  '/opt/homebrew/include/dnnl.hpp',
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
      process.platform === 'darwin'
        ? 'oneDNN is missing: install it with `brew install onednn libomp`, then rerun `npm ci`.'
        : 'oneDNN is missing: install it with `sudo apt-get install -y libdnnl-dev` (Debian/Ubuntu), then rerun `npm ci`.',
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
const nodedir =
  process.env.npm_config_nodedir ||
  (existsSync(join(dirname(process.execPath), '..', 'include', 'node', 'node_api.h'))
    ? join(dirname(process.execPath), '..')
    : '');

// One build per instruction-set level of native/isa.json (a binary made on one CPU runs on any
// other: the loader picks the best level the machine has); GPG_RL_NATIVE_ISA=native builds for
// this CPU only, GPG_RL_NATIVE_ISA=NAME[,NAME] the named levels.
const table = JSON.parse(readFileSync(join(root, 'native', 'isa.json'), 'utf8'));
const levels = table[process.arch];
const want = process.env.GPG_RL_NATIVE_ISA?.trim();
let variants;
if (want === 'native') variants = [{ name: 'native', flags: '-march=native' }];
else if (!levels) {
  console.error(
    `gpg-rl: no instruction-set table for ${process.arch} in native/isa.json; building for this CPU (-march=native)`,
  );
  variants = [{ name: 'native', flags: '-march=native' }];
} else if (want) {
  const names = want.split(',').map((x) => x.trim());
  const bad = names.filter((n) => !levels.some((l) => l.name === n));
  if (bad.length)
    fail(
      `GPG_RL_NATIVE_ISA: unknown level ${bad.join(', ')} for ${process.arch} (native/isa.json has ${levels.map((l) => l.name).join(', ')}, or native)`,
    );
  variants = levels.filter((l) => names.includes(l.name));
} else variants = levels;

const out = join(root, 'build', 'isa');
const stage = mkdtempSync(join(tmpdir(), 'gpg-rl-native-'));
try {
  buildEngine();
} finally {
  rmSync(stage, { recursive: true, force: true });
}

function buildEngine() {
  for (const v of variants) {
    const t0 = Date.now();
    // rebuild: a clean build per level (the flags differ for every object file)
    const gypArgs = [gyp, 'rebuild', '-j', jobs];
    if (nodedir) gypArgs.push(`--nodedir=${nodedir}`);
    const r = spawnSync(process.execPath, gypArgs, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, GPG_RL_ISA_FLAGS: v.flags },
    });
    if (r.status !== 0) {
      const log = `${r.stdout}\n${r.stderr}`;
      const errs = log
        .split('\n')
        .filter((l) => /error/i.test(l))
        .slice(0, 8);
      console.error(errs.join('\n'));
      fail(
        `native build for ${v.name} (${v.flags}) failed (node-gyp exit ${r.status}); the first errors are above. Needs g++ (C++17), make, python3 and libdnnl-dev.`,
      );
    }
    copyFileSync(join(root, 'build', 'Release', 'gpg_native.node'), join(stage, `gpg_native-${v.name}.node`));
    console.error(`gpg-rl: native addon built for ${v.name} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  rmSync(join(root, 'build', 'Release', 'gpg_native.node'), { force: true });
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const v of variants)
    copyFileSync(join(stage, `gpg_native-${v.name}.node`), join(out, `gpg_native-${v.name}.node`));
  writeFileSync(
    join(out, 'variants.json'),
    JSON.stringify(
      variants.map((v) => ({ name: v.name, flags: v.flags })),
      null,
      1,
    ) + '\n',
  );
}

// The MPI binding (data-parallel training, `mpirun -np N gpg-rl train`): a separate optional addon,
// built when Open MPI's compiler wrapper is found (Debian: libopenmpi-dev); without it everything
// else works and `mpirun` launching gpg-rl says how to get it (src/parallel/mpi.ts). Built from
// source also where the engine comes from a prebuild (it links the machine's own libmpi).
function nodeHeaders() {
  const dirs = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ].filter(Boolean);
  return dirs.find((d) => existsSync(join(d, 'node_api.h'))) ?? dirs[0];
}

function buildMpi() {
  const mpiOut = join(root, 'build', 'mpi');
  rmSync(mpiOut, { recursive: true, force: true });
  const wrap = (flag) => spawnSync('mpicxx', [flag], { encoding: 'utf8' });
  const mpiCompile = wrap('--showme:compile');
  const mpiLink = wrap('--showme:link');
  if (mpiCompile.status !== 0 || mpiLink.status !== 0) {
    console.error(
      'gpg-rl: MPI binding skipped (no mpicxx; `apt-get install -y libopenmpi-dev openmpi-bin` enables `mpirun -np N gpg-rl train`)',
    );
  } else {
    const t0 = Date.now();
    mkdirSync(mpiOut, { recursive: true });
    const split = (s) => s.trim().split(/\s+/).filter(Boolean);
    const include = [
      `-I${nodeHeaders()}`,
      `-I${dirname(createRequire(import.meta.url).resolve('node-addon-api/napi.h'))}`,
    ];
    // libmpi only (the C API); Debian's wrapper also names the deprecated C++ bindings
    const link = split(mpiLink.stdout).filter((f) => f !== '-lmpi_cxx');
    const args = [
      '-std=c++17',
      '-O2',
      '-shared',
      '-fPIC',
      '-fvisibility=hidden',
      '-fexceptions',
      '-DNAPI_DISABLE_CPP_EXCEPTIONS',
      '-DNAPI_VERSION=8',
      '-DOMPI_SKIP_MPICXX', // the C API only
      ...include,
      ...split(mpiCompile.stdout),
      join(root, 'native', 'mpi', 'mpi.cc'),
      '-o',
      join(mpiOut, 'gpg_mpi.node'),
      ...link,
      '-lpthread',
    ];
    const r = spawnSync(process.env.CXX || 'g++', args, { encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(
        String(r.stderr ?? r.error ?? '')
          .split('\n')
          .slice(0, 8)
          .join('\n'),
      );
      // optional: the engine is built; only `mpirun` runs need this addon (and they say so)
      console.error(`gpg-rl: MPI binding not built (g++ exit ${r.status}; the first errors are above)`);
      return;
    }
    console.error(`gpg-rl: MPI binding built (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

buildMpi();
