import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  builtinReward,
  buildRewardInput,
  resolveRewards,
  scoreCompletions,
  type NamedReward,
} from '../../src/rewards/index.ts';
import { ConfigError, RewardError } from '../../src/errors.ts';
import { input } from './helpers.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpg-rewards-'));
  writeFileSync(
    join(dir, 'mine.mjs'),
    'export const short = ({ completions }) => completions.map((c) => (c.length < 20 ? 1 : 0));\n',
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

const nr = (name: string, fn: NamedReward['fn'], weight = 1): NamedReward => ({ name, fn, weight });

test('scoreCompletions: weighted sum, null → NaN per function and 0 in the total', async () => {
  const rewards = [nr('a', () => [1, null, 0.5]), nr('b', async () => [2, 2, null], 0.5)];
  const r = await scoreCompletions(rewards, input(['x', 'y', 'z']), { timeoutMs: 1000 });
  assert.deepEqual([...r.total], [2, 1, 0.5]);
  assert.deepEqual([...r.perFn['a']!], [1, NaN, 0.5]);
  assert.deepEqual([...r.perFn['b']!], [2, 2, NaN]);
  assert.deepEqual(r.failures, { a: 0, b: 0 });
  assert.deepEqual(r.errors, []);
});

test('scoreCompletions: throws, bad shapes and a never-resolving reward score 0 and are counted', async () => {
  const rewards = [
    nr('ok', () => [1, 1]),
    nr('sync_throw', () => {
      throw new Error('boom');
    }),
    nr('async_throw', async () => {
      throw new TypeError('bad row');
    }),
    nr('short', () => [1]),
    nr('not_array', () => 5 as never),
    nr('string_score', () => [1, '1'] as never),
    nr('infinite', () => [1, Infinity]),
    nr('hang', () => new Promise<never>(() => {})),
  ];
  const r = await scoreCompletions(rewards, input(['x', 'y']), { timeoutMs: 50 });
  assert.deepEqual([...r.total], [1, 1]);
  for (const name of rewards.slice(1).map((x) => x.name)) {
    assert.deepEqual([...r.perFn[name]!], [0, 0], name);
    assert.equal(r.failures[name], 1, name);
  }
  assert.equal(r.failures['ok'], 0);
  const kinds = Object.fromEntries(r.errors.map((e) => [e.name, e.kind]));
  assert.deepEqual(kinds, {
    sync_throw: 'throw',
    async_throw: 'throw',
    short: 'shape',
    not_array: 'shape',
    string_score: 'shape',
    infinite: 'shape',
    hang: 'timeout',
  });
  const msg = Object.fromEntries(r.errors.map((e) => [e.name, e.message]));
  assert.equal(msg['sync_throw'], "reward 'sync_throw' threw: boom");
  assert.equal(msg['short'], "reward 'short' returned 1 scores for 2 completions");
  assert.equal(msg['hang'], "reward 'hang' timed out after 50 ms (reward_timeout_s)");
  assert.ok(r.errors.every((e) => !e.message.includes('\n')));
});

test("scoreCompletions: misaligned input is the caller's bug (RewardError)", async () => {
  await assert.rejects(
    scoreCompletions([], { prompts: ['p'], completions: ['a', 'b'], completionIds: [[], []] }, { timeoutMs: 10 }),
    RewardError,
  );
  await assert.rejects(
    scoreCompletions([], input(['a', 'b'], { answer: ['1'] }), { timeoutMs: 10 }),
    /row field 'answer' must be an array of 2/,
  );
});

test('a reward cannot replace a column seen by another reward', async () => {
  const r = await scoreCompletions(
    [
      nr('vandal', (inp) => {
        inp.completions = ['zzz', 'zzz'];
        return [0, 0];
      }),
      nr('reader', async (inp) => {
        await new Promise((res) => setTimeout(res, 5));
        return inp.completions.map((c) => (c === 'zzz' ? 0 : 1));
      }),
    ],
    input(['a', 'b']),
    { timeoutMs: 1000 },
  );
  assert.deepEqual([...r.perFn['reader']!], [1, 1]);
});

test('resolveRewards: built-ins + user module, weights, the 1.5B recipe (format + cosine 1:2)', async () => {
  const rewards = await resolveRewards(['format', 'cosine', { path: 'mine.mjs', export: 'short' }], [1, 2, 0.5], {
    baseDir: dir,
    cosineMaxLen: 1000,
  });
  assert.deepEqual(
    rewards.map((r) => [r.name, r.weight]),
    [
      ['format', 1],
      ['cosine', 2],
      ['short', 0.5],
    ],
  );
  const good = '<think>\nok\n</think>\n<answer>\n\\boxed{4}\n</answer>';
  const res = await scoreCompletions(rewards, input([good, 'x \\boxed{5}'], { answer: ['4', '4'] }), {
    timeoutMs: 1000,
  });
  const cosGood = 0.5 + 0.25 * (1 + Math.cos((good.length / 1000) * Math.PI));
  const cosBad = -0.5 + 0.25 * (1 + Math.cos((11 / 1000) * Math.PI));
  assert.ok(Math.abs(res.total[0]! - (1 + 2 * cosGood + 0)) < 1e-12, String(res.total[0]));
  assert.ok(Math.abs(res.total[1]! - (0 + 2 * cosBad + 0.5)) < 1e-12, String(res.total[1]));
  const plain = await resolveRewards(['accuracy', 'gsm8k'], undefined, { baseDir: dir });
  assert.deepEqual(
    plain.map((r) => r.weight),
    [1, 1],
  );
});

test('resolveRewards / builtinReward errors', async () => {
  await assert.rejects(
    resolveRewards(['accuracy', 'format'], [1], { baseDir: dir }),
    /reward_weights: has 1 entries but reward_funcs has 2/,
  );
  await assert.rejects(
    resolveRewards(['accuracy'], [NaN], { baseDir: dir }),
    /reward_weights\[0\]: must be a finite number/,
  );
  await assert.rejects(
    resolveRewards(['acuracy'], undefined, { baseDir: dir }),
    /unknown built-in reward 'acuracy'; use one of accuracy, format, cosine, gsm8k/,
  );
  await assert.rejects(
    resolveRewards(['format', 'format'], undefined, { baseDir: dir }),
    /two rewards are named 'format'/,
  );
  await assert.rejects(resolveRewards([], undefined, { baseDir: dir }), ConfigError);
  await assert.rejects(
    resolveRewards([{ nope: 1 } as never], undefined, { baseDir: dir }),
    /reward_funcs\[0\]: must be a built-in name/,
  );
  assert.throws(() => builtinReward('format', { formatPattern: '(' }), ConfigError);
});

test('buildRewardInput: row fields become columns, answer is the extracted gold', async () => {
  const rows = [
    { prompt: 'p', answer: '72', fields: { question: 'p', answer: 'long #### 72', level: 1 } },
    { prompt: 'q', answer: null, fields: { question: 'q', answer: 'x', extra: true } },
  ];
  const inp = buildRewardInput(rows, ['P', 'Q'], ['c1', 'c2'], [[1], [2]]);
  assert.deepEqual(inp['answer'], ['72', null]);
  assert.deepEqual(inp['level'], [1, undefined]);
  assert.deepEqual(inp['extra'], [undefined, true]);
  assert.deepEqual(inp['question'], ['p', 'q']);
  assert.throws(() => buildRewardInput(rows, ['P'], ['c1', 'c2'], [[1], [2]]), RewardError);
});
