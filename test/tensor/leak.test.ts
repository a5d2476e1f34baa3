/**
 * Memory: 1,000 forward + backward + AdamW steps of a tiny model inside tidy() scopes leave no
 * native storage behind and RSS flat (≤ 20 MB growth between step 100 and step 1,000; issue 2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel } from '../../src/model/init.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/tape.ts';
import { AdamW, clipGradNorm } from '../../src/tensor/optim.ts';
import { liveBytes as liveNativeBytes } from '../../src/backend/index.ts';

test('1,000 training steps: flat RSS and no live native memory growth', async () => {
  const init = initModel(
    {
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 64,
      max_position_embeddings: 64,
    },
    { seed: 1 },
  );
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  model.setRequiresGrad(true);
  const opt = new AdamW(
    model.parameters().map((p) => ({ param: p, weightDecay: 0.01 })),
    { lr: 1e-3 },
  );
  const B = 4;
  const T = 24;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 64);
  const mask = new Int32Array(B * T).fill(1);
  for (let b = 0; b < B; b++) mask[b * T] = 0; // some padding
  let rss100 = 0;
  let live100 = 0;
  for (let step = 1; step <= 1000; step++) {
    // The training loop awaits every step (rewards, verifier); N-API runs deferred finalizers of
    // disposed storage wrappers then, so the test yields the same way.
    await new Promise((r) => setImmediate(r));
    tidy(() => {
      const { logps, index } = model.tokenLogps({ ids: Int32Array.from(ids), mask: Int32Array.from(mask), B, T });
      backward(logps, Tensor.full([index.length], -1 / index.length));
    });
    clipGradNorm(model.parameters(), 1.0);
    opt.step();
    opt.zeroGrad();
    if (step === 100) {
      global.gc?.();
      rss100 = process.memoryUsage().rss;
      live100 = liveNativeBytes();
    }
  }
  global.gc?.();
  const growth = (process.memoryUsage().rss - rss100) / 2 ** 20;
  assert.equal(liveNativeBytes(), live100, 'native bytes held by live tensors changed between step 100 and 1,000');
  assert.ok(growth <= 20, `RSS grew ${growth.toFixed(1)} MB between step 100 and step 1,000`);
  opt.dispose();
  model.dispose();
});
