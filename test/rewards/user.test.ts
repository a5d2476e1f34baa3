import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUserReward } from '../../src/rewards/user.ts';
import { ConfigError } from '../../src/errors.ts';
import { input } from './helpers.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpg-user-reward-'));
  mkdirSync(join(dir, 'rewards'));
  writeFileSync(
    join(dir, 'rewards', 'len.mjs'),
    'export default ({ completions }) => completions.map((c) => c.length);\nexport const half = async ({ completions, level }) => completions.map((_, i) => (level[i] === 1 ? 0.5 : null));\nexport const notFn = 3;\n',
  );
  writeFileSync(
    join(dir, 'typed.ts'),
    "import type { RewardInput } from '" +
      new URL('../../src/rewards/index.ts', import.meta.url).pathname +
      "';\nexport function hasThink(input: RewardInput): number[] { return input.completions.map((c: string) => (c.includes('<think>') ? 1 : 0)); }\n",
  );
  writeFileSync(join(dir, 'broken.mjs'), 'export default (\n');
  writeFileSync(join(dir, 'data.txt'), 'x');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('.mjs default export, resolved against the recipe dir; name = file base name', async () => {
  const r = await loadUserReward({ path: 'rewards/len.mjs' }, dir);
  assert.equal(r.name, 'len');
  assert.deepEqual(await r.fn(input(['ab', 'abcd'])), [2, 4]);
});

test('.mjs named async export with row fields; explicit name', async () => {
  const r = await loadUserReward({ path: './rewards/len.mjs', export: 'half', name: 'level_bonus' }, dir);
  assert.equal(r.name, 'level_bonus');
  assert.deepEqual(await r.fn(input(['a', 'b'], { level: [1, 2] })), [0.5, null]);
});

test('.ts module (the process runs under tsx); name = export name', async () => {
  const r = await loadUserReward({ path: join(dir, 'typed.ts'), export: 'hasThink' }, '/');
  assert.equal(r.name, 'hasThink');
  assert.deepEqual(await r.fn(input(['<think>x', 'y'])), [1, 0]);
});

test('errors: missing file, missing export, not a function, bad module, bad extension — one line each', async () => {
  const check = (re: RegExp) => (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.ok(!e.message.includes('\n'), e.message);
    assert.match(e.message, re);
    return true;
  };
  await assert.rejects(
    loadUserReward({ path: 'nope.mjs' }, dir),
    check(/reward_funcs: nope\.mjs: file not found \(resolved to .*nope\.mjs\)/),
  );
  await assert.rejects(
    loadUserReward({ path: 'rewards/len.mjs', export: 'missing' }, dir),
    check(/has no export 'missing' \(exports: default, half, notFn\)/),
  );
  await assert.rejects(loadUserReward({ path: 'typed.ts' }, dir), check(/has no default export \(exports: hasThink\)/));
  await assert.rejects(
    loadUserReward({ path: 'rewards/len.mjs', export: 'notFn' }, dir),
    check(/export 'notFn' is a number, not a function/),
  );
  await assert.rejects(loadUserReward({ path: 'broken.mjs' }, dir), check(/broken\.mjs: cannot import the module: /));
  await assert.rejects(
    loadUserReward({ path: 'data.txt' }, dir),
    check(/'\.txt' is not a JavaScript\/TypeScript module/),
  );
});
