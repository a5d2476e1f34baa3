// Ad-hoc decode profile: random model of a shape, B sequences = B/G groups of G identical prompts.
//   node --import tsx scripts/decode-profile.ts SHAPE.json B PROMPT NEW [float32|bfloat16] [G]
import { readFileSync } from 'node:fs';
import { initModel } from '../src/model/init.ts';
import { CausalLM } from '../src/model/decoder.ts';
import { generate } from '../src/generate/generate.ts';
import { Rng } from '../src/data/rng.ts';
const [shapeFile, Bs, Ps, Ns, dtype = 'float32', Gs = '8'] = process.argv.slice(2);
const shape = JSON.parse(readFileSync(shapeFile!, 'utf8'));
const r = initModel(shape, { seed: 1 });
const model = CausalLM.fromHost(r.cfg, r.tensors);
r.tensors.clear();
const B = Number(Bs),
  P = Number(Ps),
  N = Number(Ns),
  G = Number(Gs);
const rng = new Rng(1);
const prompts: number[][] = [];
for (let g = 0; g < B / G; g++) {
  const p = Array.from({ length: P }, () => 10 + rng.nextInt(1000));
  for (let i = 0; i < G; i++) prompts.push(p);
}
const t0 = performance.now();
let first = 0;
const res = generate(model, prompts, {
  maxNewTokens: N,
  temperature: 1,
  eosTokenIds: [],
  rng,
  weightsDtype: dtype as 'float32' | 'bfloat16',
  onStep: () => {
    if (!first) first = performance.now();
  },
});
const t1 = performance.now();
const toks = res.tokens.reduce((a, t) => a + t.length, 0);
const rss = readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/)![1];
console.log(
  JSON.stringify({
    B,
    P,
    N,
    G,
    dtype,
    tokens: toks,
    seconds: (t1 - t0) / 1000,
    prefill_s: (first - t0) / 1000,
    tokens_per_s: toks / ((t1 - t0) / 1000),
    decode_tokens_per_s: (toks - B) / ((t1 - first) / 1000),
    peak_rss_gb: Number(rss) / 1e6,
    stats: res.stats,
  }),
);
