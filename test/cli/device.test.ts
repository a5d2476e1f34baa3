/**
 * `--device` on any command: `gpg-rl logprobs` and greedy `gpg-rl generate` on the WebGPU backend
 * equal the transformers fixtures (as on CPU, test/cli/model-cli.test.ts), the adapter is named on
 * stderr; an unknown device, a missing value and a machine without an adapter are one line each.
 * The WebGPU runs skip with one line when no adapter loads here.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsFile, toFloat32, toInt32, writeSafetensorsFile } from '../../src/model/safetensors.ts';
import { loadBackend } from '../../src/backend/index.ts';

const root = new URL('../../', import.meta.url).pathname;
const FIX = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-device-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [join(root, 'bin/gpg-rl.mjs'), ...args], { encoding: 'utf8', cwd: root, env });

let noAdapter: string | false = false;
try {
  await loadBackend('webgpu');
} catch (e) {
  noAdapter = (e as Error).message;
}

for (const kind of ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny'])
  test(`${kind}: logprobs and greedy generate with --device webgpu match transformers`, { skip: noAdapter }, () => {
    const ref = readSafetensorsFile(join(FIX, kind, 'reference.safetensors')).tensors;
    const [B, T] = ref.get('input_ids')!.shape as [number, number];
    const mask = toInt32(ref.get('attention_mask')!);
    const input = join(dir, `${kind}-in.safetensors`);
    writeSafetensorsFile(input, { input_ids: ref.get('input_ids')!, attention_mask: ref.get('attention_mask')! });
    const out = join(dir, `${kind}-lp.safetensors`);
    const r = cli(['logprobs', '--device', 'webgpu', '--model', join(FIX, kind), '--input', input, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^gpg-rl: device webgpu: .* \(features: .*\)$/m);
    const ours = toFloat32(readSafetensorsFile(out).tensors.get('token_logps')!);
    const want = toFloat32(ref.get('token_logps')!);
    for (let b = 0; b < B; b++)
      for (let t = 1; t < T; t++) {
        const i = b * (T - 1) + t - 1;
        if (mask[b * T + t] && mask[b * T + t - 1])
          assert.ok(Math.abs(ours[i]! - want[i]!) <= 1e-4, `${kind} [${b},${t}]: ${ours[i]} vs ${want[i]}`);
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
      '--device=webgpu',
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

test('--device errors: unknown name, missing value, no adapter — one line each', () => {
  const model = join(FIX, 'qwen2-tiny');
  const unknown = cli(['logprobs', '--device', 'tpu', '--model', model]);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr.trim(), /^gpg-rl logprobs: unknown backend "tpu" \(available: cpu, webgpu\)$/);
  const missing = cli(['logprobs', '--model', model, '--device']);
  assert.equal(missing.status, 2);
  assert.equal(missing.stderr.trim(), 'gpg-rl: --device needs a value (cpu or webgpu)');
  const none = cli(['logprobs', '--device', 'webgpu', '--model', model], {
    ...process.env,
    VK_ICD_FILENAMES: '/nonexistent.json',
    VK_DRIVER_FILES: '/nonexistent.json',
  });
  assert.equal(none.status, 1);
  const ours = none.stderr.split('\n').filter((l) => l.startsWith('gpg-rl'));
  assert.equal(ours.length, 1, none.stderr);
  assert.match(
    ours[0]!,
    /^gpg-rl logprobs: webgpu backend: (no WebGPU adapter \(.*\); on Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers|the `webgpu` npm package)/,
  );
});
