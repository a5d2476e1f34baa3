/**
 * The CLI trainer's numbers for the browser test's run: `train()` (src/rl/trainer.ts) on the native
 * CPU backend with the page's recipe (the demo's, with the test's batch and lengths) from the same
 * warm-start folder; prints one JSON line per step. The test compares the page's steps with these.
 *   node --conditions=gpg-rl-source --import tsx examples/browser/cpu-reference.ts DIR STEPS PROMPTS G MAXLEN ROUNDS   (from the repository root)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train } from '../../src/rl/trainer.ts';
import { demoTrainConfig } from '../../src/demo/demo.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { arithRows, trainStream } from '../../src/data/arith.ts';
import { DEMO_LEVEL } from '../../src/builtin/warmstart.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';

const [dir, steps, prompts, G, maxLen, rounds] = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'gpg-rl-browser-ref-'));
try {
  const cfg = validateConfig(
    {
      ...demoTrainConfig(dir!, join(out, 'run'), 0, Number(steps)),
      num_generations: Number(G),
      per_device_train_batch_size: Number(prompts) * Number(G),
      max_completion_length: Number(maxLen),
      max_resample_rounds: Number(rounds),
    },
    'browser test reference',
    { checkModel: false },
  );
  const res = await train(cfg, {
    model: CausalLM.load(dir!),
    tokenizer: TextTokenizer.fromDir(dir!),
    modelDir: dir!,
    rows: arithRows(Array.from({ length: 20000 }, trainStream(0, DEMO_LEVEL))),
    log: () => {},
  });
  for (const m of res.metrics)
    console.log(JSON.stringify({ step: m.step, reward: m.reward, loss: m.loss, gradNorm: m.grad_norm }));
} finally {
  rmSync(out, { recursive: true, force: true });
}
