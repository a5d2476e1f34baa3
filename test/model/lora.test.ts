/**
 * LoRA adapters on the decoder (src/model/lora.ts): the adapter written by the real PEFT library
 * (fixtures/peft-lora) reproduces PEFT's log-probs; our writer produces PEFT's files (same config
 * keys and value types, tensor names, dtypes, shapes); a fresh adapter leaves the model's outputs
 * unchanged and trains only its own tensors; the adapters-off switch gives the base; the merged
 * export equals the adapter forward; a bf16 base equals an fp32 base holding the rounded weights;
 * bad input (adapter for another base shape, unknown target module, r ≤ 0, unsupported PEFT
 * features) is one clear error.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, expandRows, type TokenBatch } from '../../src/model/decoder.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  LINEAR_MODULES,
  applyLora,
  loadAdapter,
  loadBaseModel,
  mergeLoraFolder,
  mergedWeights,
  saveAdapter,
  targetedModules,
} from '../../src/model/lora.ts';
import { readSafetensorsFile, toFloat32, toInt32 } from '../../src/model/safetensors.ts';
import { writeInitModel } from '../../src/model/init.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward, noGrad } from '../../src/tensor/tape.ts';
import { ModelLoadError } from '../../src/errors.ts';
import { checkTensor, relErr, roundBf16 } from '../helpers.ts';

const FIX = new URL('../../../shared/fixtures/peft-lora/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-lora-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fixtureBatch(): TokenBatch {
  const t = readSafetensorsFile(join(FIX, 'batch.safetensors')).tensors;
  const [B, T] = t.get('input_ids')!.shape as [number, number];
  return { ids: toInt32(t.get('input_ids')!), mask: toInt32(t.get('attention_mask')!), B, T };
}
const batch = fixtureBatch();
const refLogps = toFloat32(readSafetensorsFile(join(FIX, 'reference.safetensors')).tensors.get('token_logps')!);

function logps(model: CausalLM, b: TokenBatch = batch): Float32Array {
  return noGrad(() =>
    tidy(() => {
      const r = model.tokenLogps(b);
      return expandRows(r.logps.toFloat32(), r.index, b.B * (b.T - 1));
    }),
  );
}
function logits(model: CausalLM, b: TokenBatch = batch): Float32Array {
  return noGrad(() =>
    tidy(() =>
      model
        .logits(Tensor.fromArray(b.ids, [b.B, b.T], 'int32'), Tensor.fromArray(b.mask, [b.B, b.T], 'int32'))
        .toFloat32(),
    ),
  );
}
/** Logits at real positions only (DESIGN §4: padded rows are an artefact). */
function realRows(l: Float32Array, b: TokenBatch, V: number): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < b.B * b.T; i++) if (b.mask[i]) for (let v = 0; v < V; v++) out.push(l[i * V + v]!);
  return Float32Array.from(out);
}

test('the PEFT-written fixture adapter reproduces PEFT log-probs', () => {
  const model = CausalLM.load(join(FIX, 'base'));
  const base = logps(model);
  assert.ok(relErr(base, refLogps) > 1e-3, 'the adapter changes the outputs (else the test proves nothing)');
  const lora = loadAdapter(model, join(FIX, 'adapter'));
  assert.equal(lora.pairs.size, 3 * model.cfg.numLayers); // q_proj, v_proj, down_proj per layer
  assert.equal(lora.scale, 8 / 4);
  checkTensor('peft-lora', 'token_logps', logps(model), refLogps, 1e-5);
  // adapters off: exactly the base model again
  assert.deepEqual(
    lora.disabled(() => logps(model)),
    base,
  );
  model.dispose();
});

test('our writer produces PEFT files: config keys and value types, tensor names, dtypes, shapes, values', () => {
  const model = CausalLM.load(join(FIX, 'base'));
  loadAdapter(model, join(FIX, 'adapter'));
  const out = join(dir, 'written-adapter');
  saveAdapter(out, model, { baseModelNameOrPath: '../base' });
  const theirs = JSON.parse(readFileSync(join(FIX, 'adapter', ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
  const ours = JSON.parse(readFileSync(join(out, ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  for (const k of Object.keys(theirs)) {
    // auto_mapping: PEFT writes it only when task_type is null (the fixture); we write TRL's CAUSAL_LM
    if (k === 'auto_mapping' || k === 'task_type') continue;
    assert.equal(
      kind(ours[k]),
      kind(theirs[k]),
      `adapter_config.json "${k}": ${kind(ours[k])} vs PEFT ${kind(theirs[k])}`,
    );
    if (k !== 'peft_version') assert.deepEqual(ours[k], theirs[k], `adapter_config.json "${k}"`);
  }
  assert.equal(ours.task_type, 'CAUSAL_LM');
  assert.equal(ours.auto_mapping, null);
  const a = readSafetensorsFile(join(FIX, 'adapter', ADAPTER_WEIGHTS_FILE));
  const b = readSafetensorsFile(join(out, ADAPTER_WEIGHTS_FILE));
  assert.deepEqual(b.metadata, a.metadata);
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  assert.ok(b.tensors.has('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
  for (const [n, t] of a.tensors) {
    const u = b.tensors.get(n)!;
    assert.equal(u.dtype, t.dtype, n);
    assert.deepEqual(u.shape, t.shape, n);
    assert.deepEqual(toFloat32(u), toFloat32(t), n);
  }
  // and it reads back to the same outputs
  const again = CausalLM.load(join(FIX, 'base'));
  loadAdapter(again, out);
  assert.deepEqual(logps(again), logps(model));
  model.dispose();
  again.dispose();
});

test('a fresh adapter: PEFT init, outputs unchanged, default targets, only adapter tensors train', () => {
  const model = CausalLM.load(join(FIX, 'base'));
  const before = logits(model);
  const lora = applyLora(model, { r: 4, alpha: 8, seed: 3 });
  assert.equal(lora.pairs.size, LINEAR_MODULES.length * model.cfg.numLayers);
  assert.deepEqual(logits(model), before, 'B = 0: step 0 equals the base');
  // kaiming-uniform(a=√5): U(−1/√in, 1/√in); B zero
  for (const [module, { A, B }] of lora.pairs) {
    const bound = 1 / Math.sqrt(A.shape[1]!);
    const a = A.toFloat32();
    assert.ok(
      a.every((v) => Math.abs(v) <= bound),
      module,
    );
    assert.ok(Math.max(...a.map(Math.abs)) > 0.8 * bound, `${module}: A fills its range`);
    assert.ok(
      B.toFloat32().every((v) => v === 0),
      module,
    );
  }
  const names = model.trainableParameters().map(([n]) => n);
  assert.equal(names.length, 2 * lora.pairs.size);
  assert.ok(names.every((n) => /^base_model\.model\.model\.layers\.\d+\..+\.lora_[AB]\.weight$/.test(n)));
  // a backward pass reaches the adapters and nothing else
  model.setRequiresGrad(true);
  tidy(() => {
    const { logps: lp } = model.tokenLogps(batch);
    backward(lp);
  });
  for (const [n, t] of model.trainableParameters()) assert.ok(t.grad, `${n} got a gradient`);
  // B = 0 makes dA = 0; dB carries the signal
  const dB = lora.pairs.get('model.layers.0.self_attn.q_proj')!.B.grad!.toFloat32();
  assert.ok(dB.some((v) => v !== 0));
  for (const [n, p] of model.params) assert.equal(p.grad, null, `frozen ${n} has no gradient`);
  model.dispose();
});

test('merged export equals the adapter forward, and loads as a plain HF folder', () => {
  const out = join(dir, 'merged');
  const r = mergeLoraFolder(join(FIX, 'base'), join(FIX, 'adapter'), out);
  assert.equal(r.modules, 12);
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json'])
    assert.ok(existsSync(join(out, f)), f);
  const merged = CausalLM.load(out);
  assert.equal(merged.lora, null);
  const adapted = CausalLM.load(join(FIX, 'base'));
  loadAdapter(adapted, join(FIX, 'adapter'));
  const V = merged.cfg.vocabSize;
  checkTensor('merge-lora', 'logits', realRows(logits(merged), batch, V), realRows(logits(adapted), batch, V), 1e-5);
  checkTensor('merge-lora', 'token_logps', logps(merged), refLogps, 1e-5);
  // mergedWeights changes only the targeted weights
  const w = mergedWeights(adapted);
  const base = CausalLM.load(join(FIX, 'base')).toHost();
  for (const [n, t] of base) {
    const changed = relErr(w.get(n)!.data, t.data) > 0;
    assert.equal(changed, /(q_proj|v_proj|down_proj)\.weight$/.test(n), n);
  }
  merged.dispose();
  adapted.dispose();
});

test('a bfloat16 base equals a float32 base holding the rounded weights; adapters still train', () => {
  const fp = CausalLM.load(join(FIX, 'base'));
  // round the layer weights of the fp32 copy to bf16 values
  for (const [n, p] of fp.params)
    if (/^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/.test(n))
      p.write(Float32Array.from(roundBf16(p.toFloat32())));
  loadAdapter(fp, join(FIX, 'adapter'));
  const bf = loadBaseModel(join(FIX, 'base'), 'bfloat16');
  assert.equal(bf.params.get('model.layers.0.mlp.down_proj.weight')!.dtype, 'bfloat16');
  assert.equal(bf.params.get('model.embed_tokens.weight')!.dtype, 'float32');
  loadAdapter(bf, join(FIX, 'adapter'));
  checkTensor('bf16 base', 'token_logps', logps(bf), logps(fp), 1e-6);
  // applyLora with baseDtype casts an fp32-loaded model in place
  const cast = CausalLM.load(join(FIX, 'base'));
  applyLora(cast, { r: 2, alpha: 4, baseDtype: 'bfloat16', targetModules: ['q_proj'] });
  assert.equal(cast.params.get('model.layers.1.self_attn.o_proj.weight')!.dtype, 'bfloat16');
  cast.setRequiresGrad(true);
  tidy(() => backward(cast.tokenLogps(batch).logps));
  assert.ok(cast.lora!.pairs.get('model.layers.1.self_attn.q_proj')!.B.grad);
  for (const m of [fp, bf, cast]) m.dispose();
});

test('target_modules follow PEFT: suffix names, all-linear, a whole-path regular expression', () => {
  const model = CausalLM.load(join(FIX, 'base'));
  const cfg = model.cfg;
  assert.deepEqual(
    targetedModules(cfg, ['q_proj', 'down_proj']).map((t) => t.module),
    [0, 1, 2, 3].flatMap((i) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.mlp.down_proj`]),
  );
  assert.equal(targetedModules(cfg, 'all-linear').length, 7 * 4);
  assert.deepEqual(
    targetedModules(cfg, String.raw`model\.layers\.[01]\.self_attn\.(q|v)_proj`).map((t) => t.module),
    [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ],
  );
  assert.deepEqual(targetedModules(cfg, ['self_attn.k_proj']).length, 4);
  model.dispose();
});

test('bad input: another base shape, unknown target module, r ≤ 0, unsupported PEFT features', () => {
  const isErr = (re: RegExp) => (e: unknown) => e instanceof ModelLoadError && re.test((e as Error).message);
  // an adapter for another base: same architecture, other hidden size
  const other = join(dir, 'other-base');
  writeInitModel(
    other,
    {
      hidden_size: 64,
      intermediate_size: 256,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      tie_word_embeddings: true,
      max_position_embeddings: 64,
    },
    { seed: 1, charVocab: true },
  );
  const m = CausalLM.load(other);
  assert.throws(
    () => loadAdapter(m, join(FIX, 'adapter')),
    isErr(
      /adapter_model\.safetensors: tensor base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has shape \[4,96\] but Qwen2ForCausalLM with r=4 needs \[4,64\]; the adapter was made for another base model/,
    ),
  );
  assert.equal(m.lora, null);
  assert.throws(
    () => applyLora(m, { r: 4, alpha: 8, targetModules: ['q_proj', 'qkv_proj'] }),
    isErr(
      /^lora_target_modules: "qkv_proj" matches no linear layer of Qwen2ForCausalLM; adapters go on q_proj, k_proj/,
    ),
  );
  assert.throws(() => applyLora(m, { r: 0, alpha: 8 }), isErr(/^lora: r must be an integer ≥ 1 \(got 0\)/));
  assert.throws(() => applyLora(m, { r: 4, alpha: 8, dropout: 1 }), isErr(/lora_dropout must be in \[0, 1\)/));
  applyLora(m, { r: 2, alpha: 2 });
  assert.throws(() => applyLora(m, { r: 2, alpha: 2 }), isErr(/already carries a LoRA adapter/));
  m.dispose();
  // PEFT features we do not compute, and files that are not an adapter
  const model = CausalLM.load(join(FIX, 'base'));
  const edit = (name: string, patch: Record<string, unknown>) => {
    const d = join(dir, name);
    cpSync(join(FIX, 'adapter'), d, { recursive: true });
    const j = JSON.parse(readFileSync(join(d, ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(d, ADAPTER_CONFIG_FILE), JSON.stringify({ ...j, ...patch }));
    return d;
  };
  assert.throws(
    () => loadAdapter(model, edit('dora', { use_dora: true })),
    isErr(/use_dora: true is not supported \(DoRA\)/),
  );
  assert.throws(() => loadAdapter(model, edit('ia3', { peft_type: 'IA3' })), isErr(/peft_type: only LORA adapters/));
  assert.throws(
    () => loadAdapter(model, edit('rank0', { r: 0 })),
    isErr(/adapter_config\.json: r: must be an integer ≥ 1 \(got 0\)/),
  );
  assert.throws(
    () => loadAdapter(model, edit('fewer', { target_modules: ['q_proj'] })),
    isErr(/16 tensor\(s\) match no module that target_modules selects/),
  );
  assert.throws(
    () => loadAdapter(model, join(FIX, 'base')),
    isErr(/no adapter_config\.json; is this a PEFT adapter folder/),
  );
  assert.equal(model.lora, null);
  model.dispose();
});
