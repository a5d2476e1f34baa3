/**
 * `gpg-rl serve`'s continuous batching across requests (issue 16 §3): a short request sent while a
 * long one decodes joins the running batch at a decode-step boundary (it is answered first, and
 * /health counts it), with its own sampling settings, and neither request's completions change:
 * both equal what they give alone and what local `generate` gives. The server stays responsive
 * while it decodes (/health answers). A weight reload sent while a request decodes waits for it:
 * the request completes on the old weights, the reload answers after it, and a request sent after
 * the reload sees the new weights. A request for another model (an adapter while the base decodes)
 * waits for the running batch to drain, and requests are answered in arrival order.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { applyLora, saveAdapter } from '../../src/model/lora.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { generate } from '../../src/generate/generate.ts';
import { Rng } from '../../src/data/rng.ts';
import { serve, type Served } from './spawn.ts';

const SHAPE = {
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 512,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-serve-batch-'));
const modelDir = join(dir, 'model');
const otherDir = join(dir, 'other');
const adapterDir = join(dir, 'adapter');
writeInitModel(modelDir, SHAPE, { seed: 1, charVocab: true });
writeInitModel(otherDir, SHAPE, { seed: 2, charVocab: true });
let srv: Served;
let model: CausalLM;
let EOS: number[];
before(async () => {
  srv = await serve(modelDir);
  model = CausalLM.load(modelDir);
  EOS = model.cfg.eosTokenIds;
});
after(async () => {
  await srv?.kill();
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * One request on a fresh connection (no keep-alive: this process blocks for seconds in local
 * generation, and a pooled socket the server closed meanwhile would fail the next request).
 */
function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; at: number }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = request(
      srv.url + path,
      {
        method,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(data), at: performance.now() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}
const post = (path: string, body: unknown) => call('POST', path, body);
const health = async (): Promise<any> => (await call('GET', '/health')).json;
const ids = (c: any): number[] => c.logprobs.tokens.map((t: string) => Number(/^token_id:(\d+)$/.exec(t)![1]));

/** Resolves once the server reports running sequences (the long request is decoding). */
async function decoding(): Promise<void> {
  for (let i = 0; i < 4000; i++) {
    if ((await health()).sequences_running > 0) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('the long request never started decoding');
}

const PA = [5, 6, 7, 8];
const PB = [9, 10, 11];
// A: long (greedy, 2 copies, 250 tokens: this model's greedy continuation of PA never samples eos);
// B: short, sampled, other settings
const A = { prompt: PA, n: 2, max_tokens: 250, temperature: 0, logprobs: 0, return_tokens_as_token_ids: true };
const B = {
  prompt: PB,
  n: 3,
  max_tokens: 6,
  temperature: 0.8,
  top_p: 0.9,
  top_k: 20,
  seed: 7,
  logprobs: 0,
  return_tokens_as_token_ids: true,
};
const localA = (m: CausalLM) => generate(m, [PA, PA], { maxNewTokens: 250, greedy: true, eosTokenIds: EOS });
const localB = (m: CausalLM) =>
  generate(m, [PB, PB, PB], {
    maxNewTokens: 6,
    temperature: 0.8,
    topP: 0.9,
    topK: 20,
    rng: new Rng(7),
    eosTokenIds: EOS,
  });

describe('gpg-rl serve: continuous batching across requests', () => {
  test('a short request sent while a long one decodes joins its batch; neither output changes', async () => {
    const la = localA(model);
    const lb = localB(model);
    assert.deepEqual(
      la.tokens.map((t) => t.length),
      [250, 250],
      'precondition: A runs to max_tokens',
    );
    // alone
    const aAlone = await post('/v1/completions', A);
    const bAlone = await post('/v1/completions', B);
    assert.equal(aAlone.status, 200, JSON.stringify(aAlone.json));
    assert.equal(bAlone.status, 200, JSON.stringify(bAlone.json));
    // together: B sent while A decodes
    const h0 = await health();
    const a = post('/v1/completions', A);
    await decoding();
    const b = await post('/v1/completions', B);
    const h1 = await health(); // answered while A still decodes
    const aDone = await a;
    assert.equal(b.status, 200, JSON.stringify(b.json));
    assert.equal(aDone.status, 200, JSON.stringify(aDone.json));
    assert.ok(b.at < aDone.at, 'B is answered before A finishes');
    assert.ok(h1.requests_running >= 1 && h1.sequences_running >= 2, JSON.stringify(h1));
    assert.equal(h1.requests_joined_running_batch, h0.requests_joined_running_batch + 1, JSON.stringify([h0, h1]));
    assert.equal(h1.engine_starts, h0.engine_starts + 1, 'one engine for both');
    for (const [got, alone, local, what] of [
      [aDone, aAlone, la, 'A'],
      [b, bAlone, lb, 'B'],
    ] as const) {
      assert.deepEqual(got.json.choices.map(ids), local.tokens, `${what} = local generate`);
      assert.deepEqual(got.json.choices.map(ids), alone.json.choices.map(ids), `${what} = ${what} alone`);
      got.json.choices.forEach((c: any, i: number) => {
        assert.deepEqual(c.logprobs.token_logprobs, alone.json.choices[i].logprobs.token_logprobs, `${what} ${i}`);
        assert.equal(c.finish_reason, local.finished[i] ? 'stop' : 'length');
      });
    }
    const h2 = await health();
    assert.deepEqual([h2.requests_running, h2.requests_waiting, h2.sequences_running], [0, 0, 0]);
  });

  test('a weight reload sent while a request decodes waits for it; later requests see the new weights', async () => {
    const other = CausalLM.load(otherDir);
    try {
      const la = localA(model);
      const greedyB = { ...B, temperature: 0, seed: undefined };
      const lbNew = generate(other, [PB, PB, PB], { maxNewTokens: 6, greedy: true, eosTokenIds: EOS });
      const a = post('/v1/completions', A);
      await decoding();
      const u = post('/update_weights_from_disk', { model_path: otherDir });
      while ((await health()).reloads_waiting === 0) await new Promise((r) => setTimeout(r, 2));
      const b = post('/v1/completions', greedyB); // after the reload: waits for it
      let h = await health();
      while (h.requests_waiting === 0) h = await health();
      assert.deepEqual([h.reloads_waiting, h.requests_waiting], [1, 1], JSON.stringify(h)); // B waits behind the reload
      const [aDone, uDone, bDone] = await Promise.all([a, u, b]);
      assert.equal(uDone.status, 200, JSON.stringify(uDone.json));
      assert.deepEqual(aDone.json.choices.map(ids), la.tokens, 'A decoded on the old weights');
      assert.ok(aDone.at <= uDone.at, 'the reload answers after A');
      assert.deepEqual(bDone.json.choices.map(ids), lbNew.tokens, 'B on the new weights');
    } finally {
      other.dispose();
    }
  });

  test('a request for another model waits for the running batch to drain; arrival order is kept', async () => {
    // the server now serves `other` (previous test); an adapter on it, as a trainer's LoRA policy
    const other = CausalLM.load(otherDir);
    try {
      const lora = applyLora(other, { r: 2, alpha: 4, seed: 1 });
      for (const { B: b } of lora.pairs.values())
        b.copyFrom(
          Tensor.fromArray(
            Float32Array.from({ length: b.size }, (_, i) => Math.sin(i + 1) * 0.5),
            b.shape,
          ),
        );
      saveAdapter(adapterDir, other, { baseModelNameOrPath: otherDir });
      const l = await post('/v1/load_lora_adapter', { lora_name: 'pol', lora_path: adapterDir });
      assert.equal(l.status, 200, JSON.stringify(l.json));
      const short = { ...B, temperature: 0, seed: undefined };
      const greedyShort = () => generate(other, [PB, PB, PB], { maxNewTokens: 6, greedy: true, eosTokenIds: EOS });
      const withAdapter = greedyShort();
      const base = lora.disabled(greedyShort);
      const longBase = lora.disabled(() => localA(other));
      assert.notDeepEqual(withAdapter.tokens, base.tokens, 'the adapter changes greedy tokens');
      const h0 = await health();
      const a = post('/v1/completions', A); // the base
      await decoding();
      const x = post('/v1/completions', { ...short, model: 'pol' });
      while ((await health()).requests_waiting < 1);
      const b = post('/v1/completions', short); // the base again, behind the adapter request
      let h = await health();
      while (h.requests_waiting < 2) h = await health();
      assert.equal(h.requests_running, 1, JSON.stringify(h));
      const [aDone, xDone, bDone] = await Promise.all([a, x, b]);
      assert.deepEqual(aDone.json.choices.map(ids), longBase.tokens, 'A: the base');
      assert.deepEqual(xDone.json.choices.map(ids), withAdapter.tokens, 'the adapter request');
      assert.deepEqual(bDone.json.choices.map(ids), base.tokens, 'the base request');
      assert.ok(aDone.at <= xDone.at && xDone.at <= bDone.at, 'answered in arrival order');
      const h1 = await health();
      assert.equal(
        h1.requests_joined_running_batch,
        h0.requests_joined_running_batch,
        'no request joined another model',
      );
      assert.equal(h1.engine_starts, h0.engine_starts + 3);
    } finally {
      other.dispose();
    }
  });

  test('access log: one line per request, as before', () => {
    const log = srv.stderr();
    assert.match(log, /^POST \/v1\/completions 200 \d+\.\dms$/m);
    assert.match(log, /^GET \/health 200 \d+\.\dms$/m);
    assert.match(log, /^POST \/update_weights_from_disk 200 \d+\.\dms$/m);
  });
});
