#!/usr/bin/env node
// The npm package as a user gets it (CI runs this after `npm test`; `npm run check:package`):
//   1. `npm pack` (prepare builds dist/), and the tarball holds dist/ but not src/, test/, .ci/, docs/
//   2. install the tarball into a fresh folder without a compiler (g++, cc, make on PATH are stubs
//      that fail): the install script takes the prebuild (prebuilds/linux-x64, oneDNN bundled), and
//      the installed package loads it from there (the bundled libdnnl.so.2, not the system's)
//   3. a plain .mjs script imports { train } from 'gpg-rl' and runs 2 training steps with a custom
//      reward; the README's code example runs as written; `gpg-rl/verify` works; the CLI answers
//      --version and exits 2 on a usage error
//      and, when the tarball has prebuilds/linux-arm64, the same folder under qemu-aarch64 with an arm64
//      Node loads the arm64 prebuild (its bundled oneDNN) and runs the same 2 steps
//   4. a TypeScript consumer with a standard `nodenext` tsconfig type-checks against the .d.ts
// Dependencies come from the npm cache when it has them (--prefer-offline). Exit 1 with one line on failure.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExample } from './readme-example.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'gpg-rl-pack-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, cwd, what, env = {}) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', ...env },
  });
  console.error(`check-package: ${what} (${((Date.now() - t0) / 1000).toFixed(0)} s, exit ${r.status})`);
  if (r.status !== 0) {
    console.error(`${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-30).join('\n'));
    fail(`${what} failed (exit ${r.status})`);
  }
  return r;
}
function fail(msg) {
  console.error(`check-package: ${msg}; files kept in ${work}`);
  process.exit(1);
}

try {
  // 1. pack
  const packed = run(npm, ['pack', '--json', '--pack-destination', work], root, 'npm pack');
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
  const files = info.files.map((f) => f.path);
  for (const want of [
    'dist/index.js',
    'dist/index.d.ts',
    'dist/rewards/math-verify/worker-entry.mjs',
    'bin/gpg-rl.mjs',
    'binding.gyp',
  ])
    if (!files.includes(want)) fail(`the tarball lacks ${want}`);
  const stray = files.filter((f) => /^(src|test|\.ci|docs|bench|build)\//.test(f));
  if (stray.length) fail(`the tarball ships files outside the whitelist: ${stray.slice(0, 5).join(', ')}`);
  console.error(
    `check-package: ${info.filename}: ${files.length} files, ${(info.size / 1e6).toFixed(2)} MB (${(info.unpackedSize / 1e6).toFixed(0)} MB unpacked)`,
  );
  const plat = `${process.platform}-${process.arch}`;
  const prebuilt = process.platform === 'linux' && process.arch === 'x64';
  if (prebuilt)
    for (const want of ['gpg_native-x86-64-v3.node', 'gpg_native-x86-64-v4.node', 'libdnnl.so.2', 'libgomp.so.1'])
      if (!files.includes(`prebuilds/linux-x64/${want}`)) fail(`the tarball lacks prebuilds/linux-x64/${want}`);
  const arm = files.filter((f) => f.startsWith('prebuilds/linux-arm64/'));
  if (arm.length) {
    for (const want of ['gpg_native-armv8-a.node', 'libdnnl.so.2', 'libgomp.so.1'])
      if (!arm.includes(`prebuilds/linux-arm64/${want}`)) fail(`the tarball lacks prebuilds/linux-arm64/${want}`);
  } else console.error('check-package: no linux-arm64 prebuild in the tarball (no cross toolchain here, see above)');
  console.error(
    `check-package: prebuilds: ${[...new Set(files.filter((f) => f.startsWith('prebuilds/')).map((f) => f.split('/')[1]))].join(', ') || 'none'}`,
  );

  // 2. install into a fresh project
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 1));
  const ts = pkg.devDependencies.typescript;
  const types = pkg.devDependencies['@types/node'];
  // no compiler: stubs that fail shadow g++, cc, make, ... (node-gyp would need them)
  const stubs = join(work, 'no-compiler');
  mkdirSync(stubs);
  for (const c of ['g++', 'gcc', 'cc', 'c++', 'make', 'clang', 'clang++']) {
    writeFileSync(
      join(stubs, c),
      `#!/bin/sh\necho "check-package: ${c} was called: the install compiled" >&2\nexit 127\n`,
    );
    chmodSync(join(stubs, c), 0o755);
  }
  const noCc = prebuilt ? { PATH: `${stubs}:${process.env.PATH}`, CC: join(stubs, 'cc'), CXX: join(stubs, 'c++') } : {};
  const inst = run(
    npm,
    [
      'install',
      '--prefer-offline',
      '--foreground-scripts',
      join(work, info.filename),
      `typescript@${ts}`,
      `@types/node@${types}`,
    ],
    app,
    prebuilt ? 'npm install <tarball> (no compiler on PATH)' : 'npm install <tarball>',
    noCc,
  );
  const installed = join(app, 'node_modules', 'gpg-rl');
  // the installed package loads prebuilds/PLAT/gpg_native-*.node and its bundled libdnnl.so.2 (NODE: argv that runs node)
  const checkLoads = (node, plat) => {
    const probe = run(
      node[0],
      [
        ...node.slice(1),
        '-e',
        `import(${JSON.stringify(join(installed, 'dist', 'backend', 'cpu', 'addon.js'))}).then((m) => {
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  const dnnl = maps.split('\\n').map((l) => l.split(/\\s+/)[5]).find((p) => p && /libdnnl\\.so/.test(p));
  console.log(JSON.stringify({ file: m.nativeBuild.file, reason: m.nativeBuild.reason, dnnl }));
})`,
      ],
      app,
      `load the installed addon (${plat})`,
    );
    const got = JSON.parse(probe.stdout.trim().split('\n').at(-1));
    const dir = join(installed, 'prebuilds', plat);
    if (!got.file.startsWith(dir)) fail(`the installed package loaded ${got.file}, not a prebuild in ${dir}`);
    if (!got.dnnl?.startsWith(dir))
      fail(`the prebuild loaded oneDNN from ${got.dnnl}, not the bundled ${dir}/libdnnl.so.2`);
    console.error(
      `check-package: loads ${got.file.slice(installed.length + 1)} (${got.reason}), oneDNN from the package`,
    );
  };
  if (prebuilt) {
    if (!/using the prebuilt native addon/.test(`${inst.stdout}\n${inst.stderr}`))
      fail('the install script did not say it used the prebuilt addon');
    // build/mpi is the optional MPI binding, compiled when mpicxx is present (it has no prebuild);
    // anything else under build/ means the engine was compiled instead of loaded from prebuilds/
    const built = existsSync(join(installed, 'build'))
      ? readdirSync(join(installed, 'build')).filter((f) => f !== 'mpi')
      : [];
    if (built.length) fail(`the install compiled the addon (node_modules/gpg-rl/build holds ${built.join(', ')})`);
    checkLoads([process.execPath], plat);
  }

  // 3. plain JavaScript: 2 steps with a custom reward
  writeFileSync(
    join(app, 'two-steps.mjs'),
    `import assert from 'node:assert/strict';
import { train } from 'gpg-rl';
import { verify } from 'gpg-rl/verify';

assert.equal(verify('\\\\frac{1}{2}', 'so $\\\\boxed{0.5}$'), true);
const short = ({ completions }) => completions.map((c) => (c.length <= 4 ? 1 : 0));
const seen = [];
const res = await train(
  {
    model_name_or_path: 'builtin:tiny',
    dataset: { path: 'builtin:arithmetic', limit: 16 },
    output_dir: 'run',
    max_steps: 2,
    num_generations: 2,
    per_device_train_batch_size: 4,
    max_completion_length: 6,
    learning_rate: 1e-3,
    report_to: ['tensorboard', 'csv'],
    threads: 1,
  },
  { rewardFns: { short }, log: () => {}, onStep: (row) => void seen.push(row.step) },
);
assert.equal(res.steps, 2);
assert.deepEqual(seen, [1, 2]);
assert.ok('rewards/short/mean' in res.metrics[0]);
console.log(JSON.stringify({ steps: res.steps, reward: res.metrics.at(-1).reward }));
`,
  );
  const js = run(process.execPath, ['two-steps.mjs'], app, 'plain .mjs: import { train } from "gpg-rl", 2 steps');
  if (!/"steps":2/.test(js.stdout)) fail(`two-steps.mjs printed ${js.stdout.trim()}`);
  // linux-arm64: the same installed folder under qemu-user with an arm64 Node (scripts/cross-arm64.mjs):
  // the arm64 prebuild loads and trains the same 2 steps (the install script itself is not run on arm64)
  if (arm.length) {
    const { SYSROOT, arm64Runner } = await import('./cross-arm64.mjs');
    const emu = arm64Runner();
    if (emu.skip) console.error(`check-package: linux-arm64 prebuild not run: ${emu.skip}`);
    else {
      const node = [emu.qemu, '-L', SYSROOT, emu.node];
      checkLoads(node, 'linux-arm64');
      // its own folder (output_dir 'run' of the x64 run exists); 'gpg-rl' resolves from app/node_modules
      const armApp = join(app, 'arm64');
      mkdirSync(armApp);
      copyFileSync(join(app, 'two-steps.mjs'), join(armApp, 'two-steps.mjs'));
      const a = run(node[0], [...node.slice(1), 'two-steps.mjs'], armApp, `linux-arm64 under ${emu.qemu}: 2 steps`, {
        GPG_RL_NATIVE_DIR: '',
      });
      if (!/"steps":2/.test(a.stdout)) fail(`two-steps.mjs on arm64 printed ${a.stdout.trim()}`);
    }
  }
  const runFiles = readdirSync(join(app, 'run'));
  for (const want of ['metrics.jsonl', 'metrics.csv', 'report.html', 'model'])
    if (!runFiles.includes(want)) fail(`the run folder lacks ${want} (has ${runFiles.join(', ')})`);
  if (!runFiles.some((f) => f.startsWith('events.out.tfevents.')))
    fail('the run folder has no events.out.tfevents.* file');

  // the README's code example, exactly as written there
  writeFileSync(join(app, 'readme-example.mjs'), readmeExample(root));
  const ex = run(process.execPath, ['readme-example.mjs'], app, "the README's code example (plain .mjs)");
  if (ex.stdout.trim().split('\n').at(-1) !== join(app, 'runs', 'mine'))
    fail(`the README example printed ${JSON.stringify(ex.stdout.trim())}, expected its run folder`);
  if (!existsSync(join(app, 'runs', 'mine', 'metrics.csv'))) fail('the README example wrote no runs/mine/metrics.csv');

  const bin = join(app, 'node_modules', '.bin', 'gpg-rl');
  const v = run(bin, ['--version'], app, 'gpg-rl --version');
  if (v.stdout.trim() !== `gpg-rl ${pkg.version}`) fail(`gpg-rl --version printed ${JSON.stringify(v.stdout.trim())}`);
  const bad = spawnSync(bin, ['train', '--no-such-flag'], { cwd: app, encoding: 'utf8' });
  if (bad.status !== 2) fail(`gpg-rl train --no-such-flag exited ${bad.status}, expected 2 (usage error)`);

  // 4. TypeScript consumer, standard nodenext settings, our .d.ts checked too (skipLibCheck off)
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      include: ['consumer.ts'],
    }),
  );
  writeFileSync(
    join(app, 'consumer.ts'),
    `import { train, type TrainOptions, type TrainResult, LOSS_TYPES } from 'gpg-rl';
import { verify } from 'gpg-rl/verify';
const opts: TrainOptions = { onStep: (row, info) => (info.step >= 2 && row.loss > 0 ? 'stop' : undefined) };
const ok: boolean = verify('1', '\\\\boxed{1}');
const lossTypes: readonly string[] = LOSS_TYPES;
export async function go(): Promise<TrainResult> {
  return train({ model_name_or_path: 'builtin:tiny', dataset: { path: 'builtin:arithmetic' } }, opts);
}
export { ok, lossTypes };
`,
  );
  run(
    process.execPath,
    [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
    app,
    'tsc (nodenext consumer)',
  );
  console.error('check-package: ok');
  rmSync(work, { recursive: true, force: true });
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
