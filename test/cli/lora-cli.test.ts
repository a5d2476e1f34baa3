/**
 * `gpg-rl logprobs --adapter` and `gpg-rl merge-lora` end to end on the PEFT fixture (files in,
 * files out): the adapter applied by logprobs reproduces PEFT's log-probs, the merged folder
 * gives the same log-probs without the adapter, and bad input is one line with exit code 1 and
 * nothing half-written.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsFile, toFloat32 } from '../../src/model/safetensors.ts';
import { writeInitModel } from '../../src/model/init.ts';
import { checkTensor } from '../helpers.ts';

const root = new URL('../../', import.meta.url).pathname;
const FIX = new URL('../../../shared/fixtures/peft-lora/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-lora-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/gpg-rl.mjs'), ...args], { encoding: 'utf8', cwd: root });
const lp = (f: string) => toFloat32(readSafetensorsFile(f).tensors.get('token_logps')!);
const want = lp(join(FIX, 'reference.safetensors'));
const input = join(FIX, 'batch.safetensors');

test('logprobs --adapter reproduces PEFT; merge-lora writes a folder with the same log-probs', () => {
  const a = join(dir, 'adapter-lp.safetensors');
  let r = cli([
    'logprobs',
    '--model',
    join(FIX, 'base'),
    '--adapter',
    join(FIX, 'adapter'),
    '--input',
    input,
    '--out',
    a,
  ]);
  assert.equal(r.status, 0, r.stderr);
  checkTensor('logprobs --adapter', 'token_logps', lp(a), want, 1e-5);

  const merged = join(dir, 'merged');
  r = cli(['merge-lora', '--base', join(FIX, 'base'), '--adapter', join(FIX, 'adapter'), '--out', merged]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^merged 12 adapted layers of .* into .*merged\n$/);
  assert.deepEqual(
    readdirSync(merged).sort(),
    ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
  );
  const m = join(dir, 'merged-lp.safetensors');
  r = cli(['logprobs', '--model', merged, '--input', input, '--out', m]);
  assert.equal(r.status, 0, r.stderr);
  checkTensor('merge-lora', 'token_logps', lp(m), lp(a), 1e-5);
});

test('bad input: one line, exit code 1, nothing written', () => {
  const other = join(dir, 'other-base');
  writeInitModel(
    other,
    {
      hidden_size: 48,
      intermediate_size: 256,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      tie_word_embeddings: true,
      max_position_embeddings: 64,
    },
    { seed: 1, charVocab: true },
  );
  const out = join(dir, 'never');
  let r = cli(['merge-lora', '--base', other, '--adapter', join(FIX, 'adapter'), '--out', out]);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^gpg-rl merge-lora: .*lora_A\.weight has shape \[4,96\] but Qwen2ForCausalLM with r=4 needs \[4,48\]; the adapter was made for another base model\n$/,
  );
  assert.equal(existsSync(out), false);
  r = cli(['merge-lora', '--base', join(FIX, 'base'), '--out', out]);
  assert.equal(r.status, 2, 'a missing flag is a usage error (exit 2)');
  assert.match(r.stderr, /^gpg-rl merge-lora: .*--adapter/);
  r = cli([
    'logprobs',
    '--model',
    join(FIX, 'base'),
    '--adapter',
    join(FIX, 'base'),
    '--input',
    input,
    '--out',
    join(dir, 'x.safetensors'),
  ]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^gpg-rl logprobs: .*no adapter_config\.json; is this a PEFT adapter folder/);
  assert.equal(existsSync(join(dir, 'x.safetensors')), false);
});
