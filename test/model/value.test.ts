/**
 * The value model (model/value.ts): the folders it reads — …ForTokenClassification (written by
 * transformers, test/fixtures/ppo/), …ForSequenceClassification (a reward model: no score bias),
 * …ForCausalLM (a new, seeded head; an untied lm_head is ignored) — and the one it writes, which
 * reads back identically; a head with more than one label is one clear error.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValueModel, SCORE_BIAS, SCORE_WEIGHT } from '../../src/model/value.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { readSafetensorsFile, writeSafetensorsFile } from '../../src/model/safetensors.ts';
import { ModelLoadError } from '../../src/errors.ts';
import { toInt32 } from '../../src/model/safetensors.ts';

const HF = new URL('../../../shared/fixtures/hf-reference/', import.meta.url).pathname;
const PPO = new URL('../fixtures/ppo/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'gpg-value-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const same = (a: ValueModel, b: ValueModel) => {
  const bp = new Map(b.trainableParameters());
  for (const [name, p] of a.trainableParameters()) {
    const x = p.toFloat32(),
      y = bp.get(name)!.toFloat32();
    assert.ok(x.length === y.length && x.every((v, i) => v === y[i]), `${name} differs`);
  }
};

function batch() {
  const ref = readSafetensorsFile(join(HF, 'qwen2-tiny', 'reference.safetensors')).tensors;
  const [B, T] = ref.get('input_ids')!.shape as [number, number];
  return { ids: toInt32(ref.get('input_ids')!), mask: toInt32(ref.get('attention_mask')!), B, T };
}

describe('ValueModel folders', () => {
  test('save → load round-trips bit-exactly in the …ForTokenClassification layout', () => {
    const vm = ValueModel.load(join(PPO, 'qwen2-tiny-value'));
    vm.save(join(tmp, 'saved'));
    const cfg = JSON.parse(readFileSync(join(tmp, 'saved', 'config.json'), 'utf8'));
    assert.deepEqual(cfg.architectures, ['Qwen2ForTokenClassification']);
    assert.equal(cfg.num_labels, 1);
    const names = [...readSafetensorsFile(join(tmp, 'saved', 'model.safetensors')).tensors.keys()];
    assert.ok(names.includes(SCORE_WEIGHT) && names.includes(SCORE_BIAS) && !names.includes('lm_head.weight'));
    const back = ValueModel.load(join(tmp, 'saved'));
    same(vm, back);
    vm.dispose();
    back.dispose();
  });

  test('a …ForSequenceClassification folder (no score bias) reads with bias 0', () => {
    const d = join(tmp, 'seqcls');
    mkdirSync(d);
    const cfg = JSON.parse(readFileSync(join(PPO, 'qwen2-tiny-value', 'config.json'), 'utf8'));
    cfg.architectures = ['Qwen2ForSequenceClassification'];
    writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    const t = readSafetensorsFile(join(PPO, 'qwen2-tiny-value', 'model.safetensors')).tensors;
    t.delete(SCORE_BIAS);
    writeSafetensorsFile(join(d, 'model.safetensors'), t);
    const tok = ValueModel.load(join(PPO, 'qwen2-tiny-value'));
    const seq = ValueModel.load(d);
    assert.deepEqual([...seq.scoreBias.toFloat32()], [0]);
    const b = batch();
    const sel = new Float64Array(b.B * (b.T - 1)).fill(1);
    const v1 = tok.values(b, { select: sel }).values.toFloat32();
    const v2 = seq.values(b, { select: sel }).values.toFloat32();
    const bias = tok.scoreBias.toFloat32()[0]!;
    for (let i = 0; i < v1.length; i++) assert.ok(Math.abs(v1[i]! - bias - v2[i]!) < 1e-5, `value ${i}`);
    tok.dispose();
    seq.dispose();
  });

  test('a …ForCausalLM folder: the backbone is the decoder (an untied lm_head is ignored), the head is new and seeded', () => {
    const policy = CausalLM.load(join(HF, 'llama-tiny'));
    assert.equal(policy.cfg.tieWordEmbeddings, false);
    const a = ValueModel.load(join(HF, 'llama-tiny'), 3);
    const b = ValueModel.fromPolicy(policy, 3);
    same(a, b);
    assert.equal(a.architecture, 'LlamaForTokenClassification');
    assert.ok(!a.trainableParameters().some(([n]) => n === 'lm_head.weight'));
    const w = a.score.toFloat32();
    assert.ok(
      w.some((x) => x !== 0),
      'head initialised',
    );
    const c = ValueModel.load(join(HF, 'llama-tiny'), 4);
    assert.ok(
      c.score.toFloat32().some((x, i) => x !== w[i]),
      'another seed, another head',
    );
    assert.equal(JSON.parse(JSON.stringify(a.configJson())).tie_word_embeddings, false);
    for (const m of [a, b, c]) m.dispose();
    policy.dispose();
  });

  test('more than one label is one clear error naming config.json', () => {
    const d = join(tmp, 'two');
    mkdirSync(d);
    const cfg = JSON.parse(readFileSync(join(PPO, 'qwen2-tiny-value', 'config.json'), 'utf8'));
    cfg.id2label = { '0': 'A', '1': 'B' };
    writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    copyFileSync(join(PPO, 'qwen2-tiny-value', 'model.safetensors'), join(d, 'model.safetensors'));
    assert.throws(
      () => ValueModel.load(d),
      (e: unknown) =>
        e instanceof ModelLoadError && /config\.json: a value model has one output \(num_labels 1\)/.test(e.message),
    );
  });
});
