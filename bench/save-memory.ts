/**
 * @module bench/save-memory
 * Host memory of one checkpoint save, as the trainer writes it (Trainer.save: the model folder,
 * optimizer.safetensors with the AdamW moments, trainer_state.json with every file's sha256): a
 * model of the given HF shape with random weights and AdamW moments with every page written.
 * Prints one JSON line: resident memory before the save, the peak during it (VmHWM, reset just
 * before the save through /proc/self/clear_refs), their difference, and the seconds.
 *
 *   node --expose-gc --import tsx bench/save-memory.ts --shape bench/qwen2.5-0.5b.json --out /tmp/ck [--host]
 *
 * --host hands saveCheckpoint host copies of the weights and moments instead (model.toHost(),
 * AdamW.state()), as Trainer.save did before saves streamed.
 *
 * Qwen2.5-0.5B's shape (2-vCPU Zen 4): 5.60 GiB before the save, +0.08 GiB during it; the host-copy
 * save of before (model.toHost(), AdamW.state(), then fromFloat32 copies of both) added 9.24 GiB.
 *
 * Measure one configuration per process (the peak is the process's). Needs RAM for the weights
 * and the moments (0.5B: ~2 GB + ~4 GB native) plus what the save holds on the host.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultBackend } from '../src/backend/index.ts';
import type { Tensor } from '../src/tensor/tensor.ts';
import { CausalLM } from '../src/model/decoder.ts';
import { initModel } from '../src/model/init.ts';
import { makeOptimizer } from '../src/train/optimizer.ts';
import { saveCheckpoint } from '../src/rl/checkpoint.ts';
import { streamed } from '../src/model/folder.ts';

const { values: a } = parseArgs({
  options: {
    shape: { type: 'string' },
    out: { type: 'string', default: '/tmp/gpg-rl-save-memory' },
    host: { type: 'boolean', default: false },
  },
});
if (!a.shape) throw new Error('--shape <HF config.json> is required');
const status = (k: string) =>
  Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const init = initModel(JSON.parse(readFileSync(a.shape, 'utf8')) as Record<string, unknown>, { seed: 0 });
const model = CausalLM.fromHost(init.cfg, init.tensors);
init.tensors.clear();
const named = model.trainableParameters();
const opt = makeOptimizer(named, { learningRate: 1e-6, weightDecay: 0.1 });
// moments as after a step: every page resident (zero-filled pages may not be)
const be = defaultBackend();
for (const { m, v } of (opt as unknown as { slots: Array<{ m: Tensor; v: Tensor }> }).slots) {
  be.fill(m.deviceBuffer, 1e-3, m.size);
  be.fill(v.deviceBuffer, 1e-6, v.size);
}
gc();
be.releaseCache?.();

rmSync(a.out, { recursive: true, force: true });
writeFileSync('/proc/self/clear_refs', '5'); // VmHWM := VmRSS
const rssBefore = status('VmRSS');
const t0 = performance.now();
// what Trainer.save hands to saveCheckpoint: the weights and moments streamed from the backend;
// --host: host copies of both (model.toHost(), AdamW.state(): what it handed before)
const st = a.host ? opt.state() : opt.moments();
const moment = (t: Tensor | Float32Array) => (t instanceof Float32Array ? t : streamed(t));
const data = {
  state: {
    step: 1,
    optimizerStep: 1,
    sampler: { epoch: 0, position: 0, seed: 0 } as never,
    rng: { s: [1, 2, 3, 4] } as never,
    counters: {},
    configHash: 'bench',
  },
  m: new Map(named.map(([n], i) => [n, moment(st.m[i]!)])),
  v: new Map(named.map(([n], i) => [n, moment(st.v[i]!)])),
};
saveCheckpoint(a.out, model.cfg, a.host ? model.toHost() : model.streamed(), data);
const seconds = (performance.now() - t0) / 1000;
const peak = status('VmHWM');
const GB = (x: number) => Math.round((x / 2 ** 30) * 1000) / 1000;
console.log(
  JSON.stringify({
    shape: a.shape,
    host: !!a.host,
    params: model.numParameters(),
    rss_before_save_gib: GB(rssBefore),
    peak_rss_during_save_gib: GB(peak),
    save_extra_gib: GB(peak - rssBefore),
    save_seconds: Math.round(seconds * 10) / 10,
  }),
);
rmSync(a.out, { recursive: true, force: true });
