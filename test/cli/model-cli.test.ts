/**
 * `gpg-rl logprobs` and `gpg-rl generate` against the transformers fixtures, from outside (files
 * in, files out), and their one-line errors with no partial output.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fromInt32,
  readSafetensorsFile,
  toFloat32,
  toInt32,
  writeSafetensorsFile,
} from '../../src/model/safetensors.ts';

const root = new URL('../../', import.meta.url).pathname;
const FIX = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-model-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/gpg-rl.mjs'), ...args], { encoding: 'utf8', cwd: root });

for (const kind of ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny']) {
  test(`${kind}: logprobs and greedy generate match transformers`, () => {
    const ref = readSafetensorsFile(join(FIX, kind, 'reference.safetensors')).tensors;
    const [B, T] = ref.get('input_ids')!.shape as [number, number];
    const mask = toInt32(ref.get('attention_mask')!);
    const input = join(dir, `${kind}-in.safetensors`);
    writeSafetensorsFile(input, { input_ids: ref.get('input_ids')!, attention_mask: ref.get('attention_mask')! });
    const out = join(dir, `${kind}-lp.safetensors`);
    const r = cli(['logprobs', '--model', join(FIX, kind), '--input', input, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const got = readSafetensorsFile(out).tensors.get('token_logps')!;
    assert.deepEqual(got.shape, [B, T - 1]);
    const ours = toFloat32(got);
    const want = toFloat32(ref.get('token_logps')!);
    for (let b = 0; b < B; b++)
      for (let t = 1; t < T; t++) {
        const i = b * (T - 1) + t - 1;
        if (mask[b * T + t] && mask[b * T + t - 1])
          assert.ok(Math.abs(ours[i]! - want[i]!) <= 1e-4, `${kind} [${b},${t}]`);
        else assert.equal(ours[i], 0);
      }
    const gin = join(dir, `${kind}-gin.safetensors`);
    writeSafetensorsFile(gin, {
      input_ids: ref.get('greedy_prompt_ids')!,
      attention_mask: ref.get('greedy_prompt_mask')!,
    });
    const gout = join(dir, `${kind}-gout.safetensors`);
    const N = ref.get('greedy_ids')!.shape[1]!;
    const g = cli([
      'generate',
      '--model',
      join(FIX, kind),
      '--input',
      gin,
      '--max-new-tokens',
      String(N),
      '--greedy',
      '--out',
      gout,
    ]);
    assert.equal(g.status, 0, g.stderr);
    assert.deepEqual(
      Array.from(toInt32(readSafetensorsFile(gout).tensors.get('output_ids')!)),
      Array.from(toInt32(ref.get('greedy_ids')!)),
    );
  });
}

test('bad input: one line on stderr, exit 1, no output file', () => {
  const bad = join(dir, 'bad.safetensors');
  writeSafetensorsFile(bad, { something_else: fromInt32(new Int32Array([1, 2]), [1, 2]) });
  const out = join(dir, 'never.safetensors');
  const r = cli(['logprobs', '--model', join(FIX, 'qwen2-tiny'), '--input', bad, '--out', out]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim(), /^gpg-rl logprobs: .*input_ids.* is missing/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.ok(!existsSync(out));
  const corrupt = join(dir, 'corrupt.safetensors');
  writeFileSync(corrupt, Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
  const c = cli([
    'generate',
    '--model',
    join(FIX, 'qwen2-tiny'),
    '--input',
    corrupt,
    '--max-new-tokens',
    '2',
    '--out',
    out,
  ]);
  assert.equal(c.status, 1);
  assert.equal(c.stderr.trim().split('\n').length, 1, c.stderr);
  assert.ok(!existsSync(out));
  const noModel = cli(['logprobs', '--model', join(dir, 'nope'), '--input', bad, '--out', out]);
  assert.equal(noModel.status, 1);
  assert.match(noModel.stderr, /config\.json/);
});
