/**
 * The README's code example runs as written: the block is taken from README.md, saved as a plain
 * .mjs inside the package (so `import 'gpg-rl'` resolves to this package, sources through tsx) and
 * run from a fresh working folder; it trains 2 steps and writes the files the README names.
 * (scripts/check-package.mjs runs the same block against the installed tarball.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
// @ts-expect-error: a plain .mjs helper without types
import { readmeExample } from '../scripts/readme-example.mjs';

const root = new URL('..', import.meta.url).pathname;

test("README's code example works as written (plain .mjs, import { train } from 'gpg-rl')", () => {
  const code = (readmeExample as (r: string) => string)(root);
  assert.match(code, /import \{ train \} from 'gpg-rl';/);
  const cwd = mkdtempSync(join(tmpdir(), 'gpg-readme-'));
  mkdirSync(join(root, 'build'), { recursive: true });
  const script = join(root, 'build', `readme-example-${process.pid}.mjs`);
  writeFileSync(script, code);
  try {
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const r = spawnSync(process.execPath, ['--conditions=gpg-rl-source', '--import', tsx, script], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, GPG_RL_TEST: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    const runDir = r.stdout.trim().split('\n').at(-1)!;
    assert.equal(runDir, join(cwd, 'runs', 'mine'));
    const files = readdirSync(runDir);
    for (const f of ['metrics.jsonl', 'metrics.csv', 'report.html', 'trainer_config.json', 'model'])
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    assert.ok(files.some((f) => f.startsWith('events.out.tfevents.')));
    assert.match(r.stderr, /^step 2\/2: .*elapsed \d+s, eta 0s$/m);
    assert.ok(existsSync(join(runDir, 'model', 'config.json')));
  } finally {
    rmSync(script, { force: true });
    rmSync(cwd, { recursive: true, force: true });
  }
});
