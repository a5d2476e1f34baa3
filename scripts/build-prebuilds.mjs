#!/usr/bin/env node
// Fills prebuilds/ for the npm package (`prepack`; `postpack` deletes it again, so a working tree
// never loads a stale prebuild). node-gyp-build's folder names, our own loader
// (src/backend/cpu/addon.ts) and per-ISA files:
//   prebuilds/linux-x64/    gpg_native-<level>.node for every x64 level of native/isa.json (copied
//                           from build/isa, which `npm ci` built), libdnnl.so.2, libgomp.so.1
//   prebuilds/linux-arm64/  gpg_native-armv8-a.node cross-built (scripts/cross-arm64.mjs) with
//                           Debian's libdnnl2:arm64 and the cross libgomp.so.1 beside it
// Each addon's RUNPATH is $ORIGIN (binding.gyp), so it finds the bundled oneDNN and libgomp first.
// Built on Debian 12: the prebuilds need glibc >= 2.36 and libstdc++ (GCC 12); elsewhere the install
// script builds from source. GPG_RL_PREBUILDS=0 packs none; a platform that can't be built is
// left out with one line saying why.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'prebuilds');
const log = (msg) => console.error(`build-prebuilds: ${msg}`);
const mb = (f) => (statSync(f).size / 1e6).toFixed(1);

rmSync(out, { recursive: true, force: true });
if (process.argv.includes('--clean')) process.exit(0);
if (process.env.GPG_RL_PREBUILDS === '0') {
  log('GPG_RL_PREBUILDS=0: no prebuilds in this package (installs build from source)');
  process.exit(0);
}

/** The file a shared library NAME resolves to for ADDON (ldd), or null. */
function resolved(addon, name) {
  const r = spawnSync('ldd', [addon], { encoding: 'utf8' });
  const m = new RegExp(`^\\s*${name.replace(/\./g, '\\.')} => (\\S+)`, 'm').exec(r.stdout ?? '');
  return m ? m[1] : null;
}

const strip = (file, tool) => spawnSync(tool, ['--strip-unneeded', file], { stdio: 'inherit' });
const table = JSON.parse(readFileSync(join(root, 'native', 'isa.json'), 'utf8'));

// linux-x64, from the source build
if (process.platform === 'linux' && process.arch === 'x64') {
  const isa = join(root, 'build', 'isa');
  const levels = table.x64.map((l) => l.name);
  const missing = levels.filter((l) => !existsSync(join(isa, `gpg_native-${l}.node`)));
  if (missing.length) {
    console.error(
      `build-prebuilds: build/isa lacks ${missing.join(', ')}: run \`npm run build:native\` (all levels, no GPG_RL_NATIVE_ISA) before packing`,
    );
    process.exit(1);
  }
  const dir = join(out, 'linux-x64');
  mkdirSync(dir, { recursive: true });
  for (const l of levels) {
    const f = join(dir, `gpg_native-${l}.node`);
    copyFileSync(join(isa, `gpg_native-${l}.node`), f);
    strip(f, 'strip');
  }
  const first = join(isa, `gpg_native-${levels[0]}.node`);
  for (const lib of ['libdnnl.so.2', 'libgomp.so.1']) {
    const from = resolved(first, lib);
    if (!from) {
      console.error(`build-prebuilds: ldd does not resolve ${lib} for ${first}`);
      process.exit(1);
    }
    copyFileSync(from, join(dir, lib));
  }
  log(`linux-x64: ${levels.join(', ')} + libdnnl.so.2 (${mb(join(dir, 'libdnnl.so.2'))} MB) + libgomp.so.1`);
} else log(`no linux-x64 prebuild (this is ${process.platform}-${process.arch})`);

// linux-arm64, cross-built
if (process.platform === 'linux' && process.arch === 'x64') {
  const { crossBuild, firstErrors, outDir } = await import('./cross-arm64.mjs');
  const r = await crossBuild();
  if (r.failed) {
    console.error(firstErrors(r.failed));
    console.error('build-prebuilds: the arm64 cross build failed');
    process.exit(1);
  }
  if (r.skip) log(`no linux-arm64 prebuild: ${r.skip}`);
  else {
    const dir = join(out, 'linux-arm64');
    mkdirSync(dir, { recursive: true });
    const name = r.file.slice(outDir.length + 1);
    copyFileSync(r.file, join(dir, name));
    strip(join(dir, name), 'aarch64-linux-gnu-strip');
    for (const lib of ['libdnnl.so.2', 'libgomp.so.1']) copyFileSync(join(outDir, lib), join(dir, lib));
    log(`linux-arm64: ${name} + libdnnl.so.2 (${mb(join(dir, 'libdnnl.so.2'))} MB) + libgomp.so.1`);
  }
}
