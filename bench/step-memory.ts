/**
 * @module bench/step-memory
 * Memory and time of one full GPG training step (no generation): a model of the given HF shape
 * with random weights, `prompts × G` sequences of `prompt + completion` random tokens, token
 * log-probs of the completion tokens, the GPG loss −Σ(lp·A·m)/Σm over the whole step,
 * backward per micro-batch, one AdamW step. Prints one JSON line: peak native live bytes
 * (sampled at every allocation) and its parts, peak RSS, seconds.
 *
 *   node --import tsx bench/step-memory.ts --shape ../shared/bench/qwen2.5-0.5b.json \
 *     --prompts 4 --G 8 --prompt-len 256 --completion-len 256 --microbatch 8 --checkpointing [--bf16]
 *
 * --microbatch N: N sequences per micro-batch (per_device_train_batch_size); --max-tokens N:
 * micro-batches by token budget instead (max_tokens_per_microbatch). --steps 2 runs a second step
 * (the first one's allocations warmed). Measure one configuration per process: peak RSS is the
 * process's.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Tensor, tidy } from '../src/tensor/tensor.ts';
import { backward } from '../src/tensor/tape.ts';
import { setAutocast } from '../src/tensor/ops/matmul.ts';
import { defaultBackend, liveBytes, setNumThreads } from '../src/backend/index.ts';
import { CausalLM } from '../src/model/decoder.ts';
import { initModel } from '../src/model/init.ts';
import { makeOptimizer, optimizerStep } from '../src/train/optimizer.ts';
import { planMicroBatches } from '../src/train/batch.ts';
import { Rng } from '../src/data/rng.ts';

const { values: a } = parseArgs({
  options: {
    shape: { type: 'string' },
    prompts: { type: 'string', default: '4' },
    G: { type: 'string', default: '8' },
    'prompt-len': { type: 'string', default: '256' },
    'completion-len': { type: 'string', default: '256' },
    microbatch: { type: 'string', default: '0' },
    'max-tokens': { type: 'string', default: '0' },
    checkpointing: { type: 'boolean', default: false },
    bf16: { type: 'boolean', default: false },
    threads: { type: 'string', default: '0' },
    steps: { type: 'string', default: '1' },
  },
});
if (!a.shape) throw new Error('--shape <HF config.json> is required');
const num = (k: keyof typeof a) => Number(a[k]);
if (num('threads') > 0) setNumThreads(num('threads'));
const P = num('prompt-len');
const Cl = num('completion-len');
const G = num('G');
const nSeq = num('prompts') * G;
const T = P + Cl;

const t0 = performance.now();
const init = initModel(JSON.parse(readFileSync(a.shape, 'utf8')) as Record<string, unknown>, { seed: 0 });
const model = CausalLM.fromHost(init.cfg, init.tensors);
init.tensors.clear();
const V = model.cfg.vocabSize;
const paramBytes = liveBytes();
const opt = makeOptimizer(model.trainableParameters(), { learningRate: 1e-6, weightDecay: 0.1 });
const stateBytes = liveBytes() - paramBytes;

const be = defaultBackend();
const allocate = be.allocate.bind(be);
let peak = 0;
be.allocate = (...args: Parameters<typeof be.allocate>) => {
  const buf = allocate(...args);
  peak = Math.max(peak, be.liveBytes());
  return buf;
};

const r = new Rng(1);
const ids = Int32Array.from({ length: nSeq * T }, () => r.nextInt(V));
const adv = Float64Array.from({ length: nSeq }, () => r.next() * 2 - 1);
const plan =
  num('max-tokens') > 0
    ? planMicroBatches(
        Array.from({ length: nSeq }, () => ({ prompt: P, completion: Cl })),
        num('max-tokens'),
      )
    : Array.from({ length: Math.ceil(nSeq / (num('microbatch') || nSeq)) }, (_, k) => {
        const mb = num('microbatch') || nSeq;
        return Array.from({ length: Math.min(mb, nSeq - k * mb) }, (_, j) => k * mb + j);
      });
const tokens = nSeq * Cl; // Σm over the whole step
model.setRequiresGrad(true);
model.gradientCheckpointing = !!a.checkpointing;
setAutocast(!!a.bf16);
const stepTimes: number[] = [];
let gradBytes = 0;
for (let s = 0; s < num('steps'); s++) {
  const ts = performance.now();
  for (const rows of plan) {
    const B = rows.length;
    const mids = new Int32Array(B * T);
    rows.forEach((row, b) => mids.set(ids.subarray(row * T, (row + 1) * T), b * T));
    const mask = new Int32Array(B * T).fill(1);
    const select = new Uint8Array(B * (T - 1));
    for (let b = 0; b < B; b++) select.fill(1, b * (T - 1) + P - 1, (b + 1) * (T - 1));
    tidy(() => {
      const { logps, index } = model.tokenLogps({ ids: mids, mask, B, T }, { select });
      const seed = Float32Array.from(index, (j) => -adv[rows[Math.floor(j / (T - 1))]!]! / tokens);
      backward(logps, Tensor.fromArray(seed, [seed.length]));
    });
  }
  gradBytes = model.parameters().reduce((n, p) => n + (p.grad ? p.grad.size * 4 : 0), 0);
  optimizerStep(opt, model.parameters(), { lr: 1e-6, maxGradNorm: 1 });
  stepTimes.push((performance.now() - ts) / 1000);
}
const GB = (x: number) => Math.round((x / 2 ** 30) * 1000) / 1000;
console.log(
  JSON.stringify({
    shape: a.shape,
    params: model.numParameters(),
    sequences: nSeq,
    T,
    micro_batches: plan.map((m) => m.length),
    checkpointing: !!a.checkpointing,
    bf16: !!a.bf16,
    peak_live_gib: GB(peak),
    params_gib: GB(paramBytes),
    adam_state_gib: GB(stateBytes),
    grads_gib: GB(gradBytes),
    peak_above_params_state_grads_gib: GB(peak - paramBytes - stateBytes - gradBytes),
    max_rss_gib: GB(process.resourceUsage().maxRSS * 1024),
    step_seconds: stepTimes.map((x) => Math.round(x * 100) / 100),
    total_seconds: Math.round((performance.now() - t0) / 10) / 100,
  }),
);
