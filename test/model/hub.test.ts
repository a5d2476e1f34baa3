/**
 * Models by Hugging Face repo id from a hub cache folder, never downloaded: a fake cache built in a
 * temp folder from the transformers fixtures, in huggingface_hub's layout (refs/main, snapshots/<rev>/
 * whose files link into blobs/). The cache folder rule ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/...),
 * refs/main against several snapshots, the one-line error naming the repo id and the folders
 * searched; `gpg-rl logprobs --model Org/Name` against the fixture's reference; a train recipe and
 * an sft recipe with `model_name_or_path: Org/Name` (the run records the repo id).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelLoadError } from '../../src/errors.ts';
import { findInHubCache, hubCacheDirs, isRepoId, resolveModelPath } from '../../src/model/hub.ts';
import { charLevelTokenizerFiles } from '../../src/model/tokenizer.ts';
import { tokenizerFiles } from '../../src/model/init.ts';
import {
  fromInt32,
  readSafetensorsFile,
  toFloat32,
  toInt32,
  writeSafetensorsFile,
} from '../../src/model/safetensors.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { train } from '../../src/rl/trainer.ts';
import { loadSftRecipe } from '../../src/sft/config.ts';
import { relErr } from '../helpers.ts';

const root = new URL('../../', import.meta.url).pathname;
const FIX = new URL('../../../shared/fixtures/hf-reference/qwen2-tiny/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-hub-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One repo in huggingface_hub's cache layout: blobs/, snapshots/<rev>/ links, refs/main. */
function cacheRepo(cache: string, repoId: string, revs: string[], main: string | null): string {
  const repo = join(cache, `models--${repoId.replace('/', '--')}`);
  const tok = charLevelTokenizerFiles();
  for (const rev of revs) {
    const snap = join(repo, 'snapshots', rev);
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    const files: Record<string, string | null> = {
      ...tokenizerFiles(tok),
      'config.json': null,
      'model.safetensors': null,
    };
    for (const [name, text] of Object.entries(files)) {
      const blob = join(repo, 'blobs', `${rev}-${name}`);
      if (text === null) copyFileSync(join(FIX, name), blob);
      else writeFileSync(blob, text);
      symlinkSync(join('..', '..', 'blobs', `${rev}-${name}`), join(snap, name));
    }
  }
  if (main !== null) {
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), main);
  }
  return repo;
}

const hub = join(dir, 'hub');
const repo = cacheRepo(hub, 'Org/Qwen2-Tiny', ['1111aaaa', '2222bbbb'], '2222bbbb');
const env = { HF_HUB_CACHE: hub };

describe('hub cache lookup', () => {
  test('repo ids as huggingface_hub spells them', () => {
    for (const ok of ['Qwen/Qwen2.5-0.5B-Instruct', 'gpt2', 'org_1/name.v2']) assert.ok(isRepoId(ok), ok);
    for (const bad of ['./model', '/abs/path', 'a/b/c', 'a--b/c', 'a/..', '-a/b', 'a/b.', ''])
      assert.ok(!isRepoId(bad), bad);
  });

  test('cache folders: $HF_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub', () => {
    assert.deepEqual(hubCacheDirs({}, '/home/u'), ['/home/u/.cache/huggingface/hub']);
    assert.deepEqual(hubCacheDirs({ HF_HUB_CACHE: '/c', HF_HOME: '/h', XDG_CACHE_HOME: '/x' }, '/home/u'), [
      '/c',
      '/h/hub',
      '/x/huggingface/hub',
      '/home/u/.cache/huggingface/hub',
    ]);
    assert.deepEqual(hubCacheDirs({ HF_HOME: '~/hf' }, '/home/u'), [
      '/home/u/hf/hub',
      '/home/u/.cache/huggingface/hub',
    ]);
  });

  test('refs/main picks the snapshot; HF_HOME and the home default find it too', () => {
    assert.equal(resolveModelPath('Org/Qwen2-Tiny', { env }), join(repo, 'snapshots', '2222bbbb'));
    const home = join(dir, 'home');
    cacheRepo(join(home, '.cache', 'huggingface', 'hub'), 'Org/Only', ['cafe'], null);
    // no refs/main: the only snapshot
    assert.equal(
      findInHubCache('Org/Only', {}, home),
      join(home, '.cache/huggingface/hub/models--Org--Only/snapshots/cafe'),
    );
    const hfHome = join(dir, 'hfhome');
    cacheRepo(join(hfHome, 'hub'), 'Org/Other', ['beef'], 'beef');
    assert.equal(
      findInHubCache('Org/Other', { HF_HOME: hfHome }, home),
      join(hfHome, 'hub/models--Org--Other/snapshots/beef'),
    );
    // an existing folder wins over a repo id of the same spelling
    assert.equal(resolveModelPath(FIX, { env }), FIX);
  });

  test('absent or ambiguous: one ModelLoadError naming the repo id and the folders searched', () => {
    const home = join(dir, 'nohome');
    assert.throws(
      () => resolveModelPath('Org/Missing', { env, home, what: '--model' }),
      (e: unknown) =>
        e instanceof ModelLoadError &&
        !e.message.includes('\n') &&
        e.message.startsWith(
          '--model: model Org/Missing: no folder Org/Missing and not in the Hugging Face hub cache',
        ) &&
        e.message.includes(
          `searched ${join(hub, 'models--Org--Missing')}, ${join(home, '.cache/huggingface/hub/models--Org--Missing')}`,
        ) &&
        e.message.includes('never downloaded'),
    );
    cacheRepo(hub, 'Org/Two', ['aaaa', 'bbbb'], 'cccc');
    assert.throws(
      () => resolveModelPath('Org/Two', { env }),
      /model Org\/Two: .*holds 2 snapshots \(aaaa, bbbb\) and refs\/main names none of them/,
    );
    assert.throws(() => resolveModelPath('./not/here', { env }), /model folder not found: \.\/not\/here/);
  });
});

describe('commands and recipes take a repo id', () => {
  test('gpg-rl logprobs --model Org/Name reads the cached snapshot (matches transformers)', () => {
    const ref = readSafetensorsFile(join(FIX, 'reference.safetensors')).tensors;
    const input = join(dir, 'in.safetensors');
    writeSafetensorsFile(input, {
      input_ids: fromInt32(toInt32(ref.get('input_ids')!), ref.get('input_ids')!.shape),
      attention_mask: fromInt32(toInt32(ref.get('attention_mask')!), ref.get('attention_mask')!.shape),
    });
    const out = join(dir, 'lp.safetensors');
    const run = (model: string) =>
      spawnSync(
        process.execPath,
        [join(root, 'bin/gpg-rl.mjs'), 'logprobs', '--model', model, '--input', input, '--out', out],
        { encoding: 'utf8', cwd: dir, env: { ...process.env, HF_HUB_CACHE: hub } },
      );
    const r = run('Org/Qwen2-Tiny');
    assert.equal(r.status, 0, r.stderr);
    const ours = toFloat32(readSafetensorsFile(out).tensors.get('token_logps')!);
    const want = toFloat32(ref.get('token_logps')!);
    const mask = toInt32(ref.get('attention_mask')!);
    const [B, T] = ref.get('attention_mask')!.shape as [number, number];
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < B; i++)
      for (let t = 1; t < T; t++)
        if (mask[i * T + t] && mask[i * T + t - 1]) {
          a.push(ours[i * (T - 1) + t - 1]!);
          b.push(want[i * (T - 1) + t - 1]!);
        }
    assert.ok(relErr(a, b) < 1e-4, `token_logps rel err ${relErr(a, b)}`);
    const bad = run('Org/Nope');
    assert.equal(bad.status, 1);
    assert.match(
      bad.stderr.trim(),
      /^gpg-rl logprobs: --model: model Org\/Nope: no folder .*searched .*models--Org--Nope/,
    );
  });

  test('train and sft recipes: model_name_or_path: Org/Name (the run records the repo id)', async () => {
    const before = process.env['HF_HUB_CACHE'];
    process.env['HF_HUB_CACHE'] = hub;
    try {
      const cfg = validateConfig(
        {
          model_name_or_path: 'Org/Qwen2-Tiny',
          dataset: { path: 'builtin:arithmetic', limit: 8 },
          output_dir: join(dir, 'run'),
          max_steps: 1,
          num_generations: 2,
          per_device_train_batch_size: 4,
          max_completion_length: 4,
          threads: 1,
        },
        'recipe.yaml',
        { baseDir: dir },
      );
      assert.equal(cfg.model_name_or_path, 'Org/Qwen2-Tiny');
      const res = await train(cfg, {
        rewardFns: { one: ({ completions }) => completions.map(() => 1) },
        log: () => {},
      });
      assert.equal(res.steps, 1);
      const saved = JSON.parse(readFileSync(join(res.runDir, 'trainer_config.json'), 'utf8'));
      assert.equal(saved.model_name_or_path, 'Org/Qwen2-Tiny');
      assert.throws(
        () => validateConfig({ ...cfg, model_name_or_path: 'Org/Gone', output_dir: join(dir, 'r2') }, 'recipe.yaml'),
        /recipe\.yaml: model_name_or_path: model Org\/Gone: no folder .*not in the Hugging Face hub cache/,
      );
      const sft = join(dir, 'sft.yaml');
      writeFileSync(
        sft,
        'model_name_or_path: Org/Qwen2-Tiny\ndataset: { path: builtin:arithmetic }\noutput_dir: runs/sft\nmax_steps: 1\n',
      );
      assert.equal(loadSftRecipe(sft).model_name_or_path, 'Org/Qwen2-Tiny');
    } finally {
      if (before === undefined) delete process.env['HF_HUB_CACHE'];
      else process.env['HF_HUB_CACHE'] = before;
    }
  });
});
