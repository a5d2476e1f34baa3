#!/usr/bin/env node
// The portable C++ path on arm64 (CI runs this after check-package; `npm run check:arm64`):
// cross-compiles every native/**/*.cc of the addon for aarch64 (-march=armv8-a, native/isa.json's
// arm64 entry) with Debian's g++-aarch64-linux-gnu, against this machine's Node and oneDNN headers
// (architecture-independent), so no x86 intrinsic or AVX-only path leaks into the portable build.
// It compiles objects only: linking needs arm64 builds of oneDNN and Node, which a cross setup
// does not have, so the kernels are not run under qemu-user here.
// As root on Debian the cross compiler is installed with apt-get when missing; otherwise (or with
// no apt) the check is skipped with one line saying why. Exit 1 with the compiler's first errors.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CXX = 'aarch64-linux-gnu-g++';
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const skip = (why) => {
  console.error(`check-arm64: skipped: ${why}`);
  process.exit(0);
};

if (!has(CXX)) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get'))
    skip(`no ${CXX} (install g++-aarch64-linux-gnu; not root, so not installed here)`);
  console.error('check-arm64: installing g++-aarch64-linux-gnu with apt-get ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', 'g++-aarch64-linux-gnu'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', 'g++-aarch64-linux-gnu'], { stdio: 'inherit', env });
  }
  if (r.status !== 0 || !has(CXX)) skip('apt-get could not install g++-aarch64-linux-gnu');
}

// Headers: Node's N-API, node-addon-api, oneDNN — linked one by one into a private folder (adding
// /usr/include itself would put the host's x86 C library headers in front of the cross ones).
const nodeInc = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
if (!nodeInc) skip('no Node headers (node_api.h) on this machine');
const dnnlDirs = ['/usr/include', '/usr/local/include'].filter((d) =>
  existsSync(join(d, 'oneapi', 'dnnl', 'dnnl.hpp')),
);
if (!dnnlDirs.length) skip('no oneDNN headers (libdnnl-dev)');
const napi = createRequire(import.meta.url)('node-addon-api').include_dir.replace(/^"|"$/g, '');
const work = mkdtempSync(join(tmpdir(), 'gpg-rl-arm64-'));
const inc = join(work, 'include');
mkdirSync(inc);
symlinkSync(join(dnnlDirs[0], 'oneapi'), join(inc, 'oneapi'));
for (const f of readdirSync(dnnlDirs[0]).filter((f) => /^dnnl.*\.h(pp)?$/.test(f)))
  symlinkSync(join(dnnlDirs[0], f), join(inc, f));

const isa = JSON.parse(readFileSync(join(root, 'native', 'isa.json'), 'utf8')).arm64[0];
const sources = ['native', 'native/cpu', 'native/bench'].flatMap((d) =>
  readdirSync(join(root, d))
    .filter((f) => f.endsWith('.cc'))
    .sort()
    .map((f) => join(d, f)),
);
const flags = [
  '-std=c++17',
  '-O2',
  ...isa.flags.split(' '),
  '-fopenmp',
  '-fexceptions',
  '-fvisibility=hidden',
  '-Wall',
  '-Wno-unused-parameter',
  '-Wno-unknown-pragmas',
  '-Werror=implicit-function-declaration',
  '-DNAPI_DISABLE_CPP_EXCEPTIONS',
  '-DNAPI_VERSION=8',
  `-I${nodeInc}`,
  `-I${napi}`,
  `-I${inc}`,
];
const t0 = Date.now();
const jobs = Math.max(1, cpus().length);
const failed = [];
// a few compilers at a time (one per core)
for (let i = 0; i < sources.length; i += jobs) {
  const batch = sources.slice(i, i + jobs).map((src) => {
    const obj = join(work, src.replace(/\//g, '_') + '.o');
    return new Promise((res) => {
      import('node:child_process').then(({ spawn }) => {
        const p = spawn(CXX, [...flags, '-c', join(root, src), '-o', obj], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => res({ src, code, err }));
      });
    });
  });
  for (const r of await Promise.all(batch)) if (r.code !== 0) failed.push(r);
}
if (failed.length) {
  for (const f of failed)
    console.error(
      f.err
        .split('\n')
        .filter((l) => /error/.test(l))
        .slice(0, 5)
        .join('\n'),
    );
  console.error(
    `check-arm64: ${failed.length} of ${sources.length} files do not compile for aarch64: ${failed.map((f) => f.src).join(', ')}; files kept in ${work}`,
  );
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });
console.error(
  `check-arm64: ok: all ${sources.length} native sources compile for aarch64 (${isa.flags}) in ${((Date.now() - t0) / 1000).toFixed(0)} s (objects only; not linked or run)`,
);
