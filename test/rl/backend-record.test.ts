/**
 * The run names its backend: one `backend <name>: …` line at start and `backend` in
 * trainer_config.json — on cpu the addon build (instruction-set level, why, kernels, threads), on
 * webgpu the adapter (vendor, architecture, description, enabled features, the device's limits) —
 * so a silent fallback to the CPU is visible. The record is no setting: a resume does not count it
 * as a changed one. One short train step per backend (webgpu skips with one line without an adapter).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBackend, setDefaultBackend, type Backend } from '../../src/backend/index.ts';
import { webgpuOrWhy } from '../helpers.ts';
import { writeInitModel } from '../../src/model/init.ts';
import { train } from '../../src/rl/trainer.ts';
import { changedSettings, RECORD_ONLY } from '../../src/rl/run-folder.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpg-backend-record-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeInitModel(
  join(dir, 'model'),
  {
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    tie_word_embeddings: true,
    max_position_embeddings: 32,
  },
  { seed: 1, charVocab: true },
);
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 4 }, (_, i) => JSON.stringify({ prompt: `${i}+1`, answer: String(i + 1) })).join('\n') + '\n',
);

const { gpu, why } = await webgpuOrWhy();
const cpu = await loadBackend('cpu');

const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 2 === 0 ? 1 : 0));

/** One train step on `be`; returns the log lines and the saved trainer_config.json. */
async function oneStep(be: Backend, name: string) {
  const prev = setDefaultBackend(be);
  try {
    const lines: string[] = [];
    const res = await train(
      {
        model_name_or_path: join(dir, 'model'),
        dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
        output_dir: join(dir, name),
        num_generations: 2,
        per_device_train_batch_size: 2,
        max_prompt_length: 8,
        max_completion_length: 3,
        max_steps: 1,
        save_steps: 0,
        seed: 3,
      },
      { rewardFns: { len }, log: (l) => lines.push(l) },
    );
    assert.equal(res.steps, 1);
    const saved = JSON.parse(readFileSync(join(res.runDir, 'trainer_config.json'), 'utf8'));
    return { lines, saved, runDir: res.runDir };
  } finally {
    if (prev) setDefaultBackend(prev);
  }
}

test('cpu: the start line and trainer_config.json name the backend and the addon build loaded', async () => {
  const { lines, saved, runDir } = await oneStep(cpu, 'cpu');
  const ours = lines.filter((l) => l.startsWith('backend '));
  assert.equal(ours.length, 1, lines.join('\n'));
  assert.match(ours[0]!, /^backend cpu: native build \S+ \(.+\), kernels .+, \d+ threads?$/);
  assert.ok(lines.indexOf(ours[0]!) < lines.findIndex((l) => /^step 1\/1: /.test(l)), 'before the first step');
  const b = saved.backend;
  assert.equal(b.name, 'cpu');
  assert.equal(typeof b.native.isa, 'string');
  assert.ok(b.native.isa.length > 0);
  assert.equal(typeof b.native.reason, 'string');
  assert.ok(Number.isInteger(b.native.threads) && b.native.threads >= 1);
  assert.equal(b.summary, undefined, 'the log line is not part of the record');
  assert.equal(b.adapter, undefined);
  assert.equal(saved.model_name_or_path, join(dir, 'model'), 'the settings are still there');
  // the record is no setting: comparing against the same config names nothing
  assert.ok(RECORD_ONLY.has('backend'));
  const { backend: _b, ...cfg } = saved;
  assert.deepEqual(changedSettings(runDir, cfg, new Set()), []);
  assert.deepEqual(changedSettings(runDir, { ...cfg, seed: 4 }, new Set()), ['seed (was 3, now 4)']);
});

test('webgpu: the start line and trainer_config.json name the adapter', { skip: gpu ? false : why }, async () => {
  const { lines, saved } = await oneStep(gpu!, 'webgpu');
  const ours = lines.filter((l) => l.startsWith('backend '));
  assert.equal(ours.length, 1, lines.join('\n'));
  assert.match(
    ours[0]!,
    /^backend webgpu: .+ \(vendor .*, architecture .*; features: .*; maxStorageBufferBindingSize \d+ MiB, maxBufferSize \d+ MiB\)$/,
  );
  const a = saved.backend.adapter;
  assert.equal(saved.backend.name, 'webgpu');
  assert.equal(saved.backend.native, undefined);
  for (const k of ['vendor', 'architecture', 'device', 'description']) assert.equal(typeof a[k], 'string', k);
  assert.ok(Array.isArray(a.features));
  assert.ok(a.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20, JSON.stringify(a.limits));
  assert.ok(a.limits.maxBufferSize >= a.limits.maxStorageBufferBindingSize || a.limits.maxBufferSize > 0);
  console.log(`webgpu run record: ${JSON.stringify(saved.backend)}`);
});
