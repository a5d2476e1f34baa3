/**
 * Every shipped recipe passes `gpg-rl train RECIPE --dry-run` (config, dataset, tokenizer and
 * rewards validated; nothing written). Recipes that name a real Hugging Face checkpoint are
 * pointed at a tiny model made with init-model (no weights can be downloaded here).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-recipes-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'model');
writeInitModel(
  model,
  {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 4096,
  },
  { seed: 0, charVocab: true },
);

for (const f of readdirSync(join(root, 'recipes')).filter((x) => x.endsWith('.yaml'))) {
  test(`gpg-rl train recipes/${f} --dry-run`, () => {
    const out = join(dir, `out-${f}`);
    const sets = ['--set', `output_dir=${out}`];
    // The fixture's tokenizer is character-level, so a prompt's token count is its character count (several
    // times a real BPE count): the recipes' max_prompt_length would drop every prompt of distill-1.5b.yaml,
    // whose system prompt alone is 500 characters (about a hundred BPE tokens). Lift it for the fixture only.
    if (f !== 'demo.yaml') sets.push('--set', `model_name_or_path=${model}`, '--set', 'max_prompt_length=4096');
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin/gpg-rl.mjs'), 'train', join('recipes', f), '--dry-run', ...sets],
      { cwd: root, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dry run: .*prompts.*reward function/);
    assert.ok(!existsSync(out), 'a dry run must not create the run folder');
  });
}
