#!/usr/bin/env node
// The formatters of the tree: prettier for TypeScript / JavaScript (120 columns, .prettierrc.json)
// and clang-format for the C++ core (.clang-format), both pinned npm packages.
//   node scripts/format.mjs           rewrite files in place (npm run format)
//   node scripts/format.mjs --check   fail, listing the files, when any is not formatted (npm test)
import { readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const check = process.argv.includes('--check');
const require = createRequire(import.meta.url);

function walk(dir, pred, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, pred, out);
    else if (pred(name)) out.push(relative(root, p));
  }
  return out;
}

const ts = ['src', 'test', 'scripts', 'bin'].flatMap((d) => walk(join(root, d), (n) => /\.(ts|mjs)$/.test(n)));
const cc = walk(join(root, 'native'), (n) => /\.(cc|h)$/.test(n));

const prettier = join(require.resolve('prettier/package.json'), '..', 'bin', 'prettier.cjs');
const p = spawnSync(
  process.execPath,
  [prettier, check ? '--check' : '--write', '--log-level', check ? 'warn' : 'log', ...ts],
  { cwd: root, stdio: 'inherit' },
);

const clang = join(
  require.resolve('clang-format/package.json'),
  '..',
  'bin',
  `${process.platform}_${process.arch}`,
  'clang-format',
);
const c = spawnSync(clang, check ? ['--dry-run', '-Werror', '--style=file', ...cc] : ['-i', '--style=file', ...cc], {
  cwd: root,
  encoding: 'utf8',
});
if (c.error) {
  console.error(`format: cannot run clang-format (${c.error.message}); run npm ci`);
  process.exit(1);
}
if (c.status !== 0) {
  const bad = [...new Set(c.stderr.match(/^[^:\s]+\.(cc|h)(?=:\d+)/gm) ?? [])];
  console.error(c.stderr.split('\n').slice(0, 20).join('\n'));
  console.error(
    `format: ${bad.length || 'some'} C++ file(s) not formatted${bad.length ? `: ${bad.join(', ')}` : ''}; run \`npm run format\``,
  );
}
if (p.status !== 0)
  console.error('format: TypeScript/JavaScript files not formatted (listed above); run `npm run format`');
process.exit(p.status || c.status ? 1 : 0);
