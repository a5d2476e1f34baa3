#!/usr/bin/env node
// Compiles src/ to dist/ (ESM JavaScript + .d.ts) for the npm package: `npm pack` / `npm publish`
// run it through `prepare`, so consumers need neither tsx nor TypeScript. The sources import each
// other with .ts extensions; tsc's rewriteRelativeImportExtensions turns them into .js. Plain .mjs
// files under src/ (the verifier's worker entry) are copied as they are. The build goes to a
// staging folder that replaces dist/ only when complete.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const stage = join(root, '.dist-stage');
const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  if (existsSync(dist)) {
    // installed from a git checkout without dev dependencies: keep the dist/ that is there
    console.error('gpg-rl: typescript not installed; keeping the existing dist/');
    process.exit(0);
  }
  console.error('gpg-rl: building dist/ needs TypeScript: run `npm ci` (it is a dev dependency)');
  process.exit(1);
}
rmSync(stage, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', stage], {
  cwd: root,
  stdio: 'inherit',
});
if (r.status !== 0) {
  rmSync(stage, { recursive: true, force: true });
  console.error(`gpg-rl: tsc failed (exit ${r.status}); dist/ left unchanged`);
  process.exit(1);
}
// tsc keeps the sources' `.ts` specifiers in .d.ts files; consumers resolve the .js/.d.ts pair
function fixDeclarations(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) fixDeclarations(p);
    else if (name.endsWith('.d.ts')) {
      const text = readFileSync(p, 'utf8');
      const fixed = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1$2.js$3');
      if (fixed !== text) writeFileSync(p, fixed);
    }
  }
}
fixDeclarations(stage);

function copyMjs(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) copyMjs(p);
    else if (name.endsWith('.mjs')) {
      const to = join(stage, relative(join(root, 'src'), p));
      mkdirSync(dirname(to), { recursive: true });
      cpSync(p, to);
    }
  }
}
copyMjs(join(root, 'src'));
rmSync(dist, { recursive: true, force: true });
renameSync(stage, dist);
console.error('gpg-rl: dist/ built');
