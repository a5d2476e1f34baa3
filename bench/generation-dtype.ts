/**
 * @module bench/generation-dtype
 * Which `generation_dtype` decodes faster on this machine: fp32 weights or the packed bf16 copy,
 * timed in alternation in one process (so a shared machine's load moves both alike), with the
 * bench's decode setting (B/8 prompts × G 8, sampling) at a given shape, batch and length.
 *
 *   node --expose-gc --import tsx bench/generation-dtype.ts --shape bench/qwen2.5-0.5b.json \
 *     --batch 64 --prompt 128 --new 64 --rounds 3
 *
 * Prints one JSON line: tokens/s per dtype per round, the medians and their ratio.
 */
import { parseArgs } from 'node:util';
import { CausalLM } from '../src/model/decoder.ts';
import { generate } from '../src/generate/generate.ts';
import { noGrad } from '../src/tensor/tape.ts';
import { Rng } from '../src/data/rng.ts';
import { benchWeights, readShape } from '../src/perf/fixtures.ts';
import { cpuInfo } from '../src/perf/bench.ts';

const { values: a } = parseArgs({
  options: {
    shape: { type: 'string', default: 'bench/qwen2.5-0.5b.json' },
    batch: { type: 'string', default: '64' },
    prompt: { type: 'string', default: '128' },
    new: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const B = Number(a.batch),
  P = Number(a.prompt),
  N = Number(a.new),
  rounds = Number(a.rounds);
const G = 8;
const shape = readShape(a.shape!);
const w = benchWeights(shape);
const model = CausalLM.fromHost(w.cfg, w.tensors);
const r = new Rng(1);
const V = model.cfg.vocabSize;
const distinct = Array.from({ length: B / G }, () => Array.from({ length: P }, () => r.nextInt(V)));
const prompts = distinct.flatMap((p) => Array.from({ length: G }, () => p));
const run = (dtype: 'float32' | 'bfloat16', n: number) =>
  noGrad(() => {
    const t0 = performance.now();
    const g = generate(model, prompts, {
      maxNewTokens: n,
      temperature: 1,
      eosTokenIds: [],
      rng: new Rng(2),
      weightsDtype: dtype,
    });
    const tokens = g.tokens.reduce((s, t) => s + t.length, 0);
    return tokens / ((performance.now() - t0) / 1000);
  });
run('float32', 2);
run('bfloat16', 2);
const res: Record<string, number[]> = { float32: [], bfloat16: [] };
for (let k = 0; k < rounds; k++)
  for (const d of k % 2 ? (['bfloat16', 'float32'] as const) : (['float32', 'bfloat16'] as const))
    res[d]!.push(run(d, N));
const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
console.log(
  JSON.stringify({
    cpu: cpuInfo(),
    shape: shape.name,
    batch: B,
    prompt: P,
    new_tokens: N,
    tokens_per_s: res,
    median: { float32: med(res.float32!), bfloat16: med(res.bfloat16!) },
    bf16_over_fp32: med(res.bfloat16!) / med(res.float32!),
  }),
);
