/**
 * `gpg-rl serve` (issue 16 §3) as a user runs it: a child process on a loopback port. Greedy
 * completions equal local greedy generation token for token; seeded sampling equals local
 * generation with the same seed (alone or sharing the engine with other requests); log-probs equal
 * local scoring (`CausalLM.tokenLogps`, what `gpg-rl logprobs` writes) within tolerance, in the
 * OpenAI / vLLM layout; the reload endpoints (SGLang's /update_weights_from_disk, vLLM's
 * /v1/load_lora_adapter and /v1/unload_lora_adapter) change what is served; bad input is a 400
 * naming the field; every request leaves one access-log line on stderr.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { CausalLM, expandRows } from '../../src/model/decoder.ts';
import { applyLora, saveAdapter } from '../../src/model/lora.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { generate } from '../../src/generate/generate.ts';
import { Rng } from '../../src/data/rng.ts';
import { Tensor, tidy } from '../../src/tensor/tensor.ts';
import { noGrad } from '../../src/tensor/tape.ts';
import { serve, type Served } from './spawn.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-serve-'));
const modelDir = join(dir, 'model');
const otherDir = join(dir, 'other');
const adapterDir = join(dir, 'adapter');
writeInitModel(modelDir, SHAPE, { seed: 1, charVocab: true });
writeInitModel(otherDir, SHAPE, { seed: 2, charVocab: true });
const EOS: number[] = [];
let srv: Served;
let model: CausalLM;
before(async () => {
  srv = await serve(modelDir, ['--served-model-name', 'tiny']);
  model = CausalLM.load(modelDir);
  EOS.push(...model.cfg.eosTokenIds);
});
after(async () => {
  await srv?.kill();
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(srv.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}
const ids = (c: any): number[] => c.logprobs.tokens.map((t: string) => Number(/^token_id:(\d+)$/.exec(t)![1]));

/** Local log-probs of `completion` after `prompt` at `temperature` (the training path). */
function score(m: CausalLM, prompt: number[], completion: number[], temperature = 1): number[] {
  const seq = Int32Array.from([...prompt, ...completion]);
  const T = seq.length;
  const dense = noGrad(() =>
    tidy(() => {
      const r = m.tokenLogps({ ids: seq, mask: new Int32Array(T).fill(1), B: 1, T }, { temperature });
      return expandRows(r.logps.toFloat32(), r.index, T - 1);
    }),
  );
  return Array.from(dense.slice(prompt.length - 1));
}
function close(a: number[], b: number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

const P1 = [5, 6, 7, 8];
const P2 = [9, 10];

describe('gpg-rl serve', () => {
  test('GET /v1/models and /health', async () => {
    const r = (await (await fetch(srv.url + '/v1/models')).json()) as any;
    assert.equal(r.object, 'list');
    assert.deepEqual(
      r.data.map((m: any) => [m.id, m.parent, m.max_model_len]),
      [['tiny', null, 64]],
    );
    assert.equal((await fetch(srv.url + '/health')).status, 200);
  });

  test('greedy completions equal local greedy generation; logprobs equal local scoring', async () => {
    const r = await post('/v1/completions', {
      model: 'tiny',
      prompt: [P1, P2],
      n: 2,
      max_tokens: 6,
      temperature: 0,
      logprobs: 3,
      return_tokens_as_token_ids: true,
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const local = generate(model, [P1, P1, P2, P2], { maxNewTokens: 6, greedy: true, eosTokenIds: EOS });
    assert.equal(r.json.object, 'text_completion');
    assert.equal(r.json.choices.length, 4);
    for (const [i, c] of r.json.choices.entries()) {
      assert.equal(c.index, i);
      assert.deepEqual(ids(c), local.tokens[i], `choice ${i}`);
      close(c.logprobs.token_logprobs, local.logps[i]!, 1e-6, `choice ${i} engine logps`);
      close(c.logprobs.token_logprobs, score(model, i < 2 ? P1 : P2, ids(c)), 1e-4, `choice ${i} vs scoring`);
      assert.equal(c.finish_reason, local.finished[i] ? 'stop' : 'length');
      assert.equal(c.logprobs.top_logprobs.length, ids(c).length);
      for (const [t, top] of c.logprobs.top_logprobs.entries()) {
        const keys = Object.keys(top);
        assert.ok(keys.length >= 3 && keys.length <= 4, JSON.stringify(top));
        // greedy: the sampled token is the most likely one, and its value matches
        const best = keys.reduce((a, b) => (top[a] >= top[b] ? a : b));
        assert.equal(best, c.logprobs.tokens[t]);
        assert.ok(Math.abs(top[best] - c.logprobs.token_logprobs[t]) <= 1e-4);
      }
      // the top 3 are the 3 largest of the local log-softmax over the vocabulary, with its values
      const seq = [...(i < 2 ? P1 : P2), ...ids(c)];
      const T = seq.length;
      const V = model.cfg.vocabSize;
      const logits = noGrad(() =>
        tidy(() =>
          model
            .logits(
              Tensor.fromArray(Int32Array.from(seq), [1, T], 'int32'),
              Tensor.fromArray(new Int32Array(T).fill(1), [1, T], 'int32'),
            )
            .toFloat32(),
        ),
      );
      const P = T - ids(c).length;
      for (let t = 0; t < ids(c).length; t++) {
        const row = Array.from(logits.subarray((P - 1 + t) * V, (P + t) * V));
        const lse = Math.log(row.reduce((a, x) => a + Math.exp(x - Math.max(...row)), 0)) + Math.max(...row);
        const top3 = row
          .map((x, v) => [x - lse, v] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, 3);
        for (const [lp, v] of top3) {
          const got = c.logprobs.top_logprobs[t][`token_id:${v}`];
          assert.ok(
            got !== undefined && Math.abs(got - lp) <= 1e-4,
            `choice ${i} position ${t} token ${v}: ${got} vs ${lp}`,
          );
        }
      }
      assert.deepEqual(
        c.logprobs.text_offset,
        c.logprobs.text_offset.map((_: number, k: number) => k),
      ); // a character-level vocabulary (no special token sampled here): one character per token
    }
    assert.deepEqual(r.json.usage, {
      prompt_tokens: P1.length + P2.length,
      completion_tokens: local.tokens.reduce((a, t) => a + t.length, 0),
      total_tokens: P1.length + P2.length + local.tokens.reduce((a, t) => a + t.length, 0),
    });
  });

  test('seeded sampling equals local generation with that seed, alone or sharing the engine', async () => {
    const body = (seed: number, p: number[]) => ({
      prompt: p,
      n: 3,
      max_tokens: 5,
      temperature: 0.8,
      top_p: 0.9,
      top_k: 20,
      seed,
      logprobs: 0,
      return_tokens_as_token_ids: true,
    });
    const [a, b, c] = await Promise.all([
      post('/v1/completions', body(7, P1)),
      post('/v1/completions', body(8, P2)),
      post('/v1/completions', body(7, P1)),
    ]);
    for (const [r, seed, p] of [
      [a, 7, P1],
      [b, 8, P2],
      [c, 7, P1],
    ] as const) {
      assert.equal(r.status, 200);
      const local = generate(model, [p, p, p], {
        maxNewTokens: 5,
        temperature: 0.8,
        topP: 0.9,
        topK: 20,
        eosTokenIds: EOS,
        rng: new Rng(seed),
      });
      assert.deepEqual(r.json.choices.map(ids), local.tokens, `seed ${seed}`);
      r.json.choices.forEach((ch: any, i: number) => {
        close(ch.logprobs.token_logprobs, local.logps[i]!, 1e-6, `seed ${seed} choice ${i}`);
        close(ch.logprobs.token_logprobs, score(model, p, ids(ch), 0.8), 1e-4, `seed ${seed} scoring`);
        assert.deepEqual(Object.keys(ch.logprobs.top_logprobs[0]), [ch.logprobs.tokens[0]]); // logprobs 0: the sampled token
      });
    }
    // sequence_seeds (the trainer's extension): choice j samples from new Rng(seeds[j])
    const s = await post('/v1/completions', { ...body(0, P2), n: 2, sequence_seeds: ['12345678901234567890', '3'] });
    const l0 = generate(model, [P2, P2], {
      maxNewTokens: 5,
      temperature: 0.8,
      topP: 0.9,
      topK: 20,
      eosTokenIds: EOS,
      seeds: [12345678901234567890n, 3n],
    });
    assert.deepEqual(s.json.choices.map(ids), l0.tokens);
  });

  test('text prompts, stop strings, token texts', async () => {
    const tok = TextTokenizer.fromDir(modelDir);
    const greedy = generate(model, [tok.encode('1+2=', { addSpecialTokens: false })], {
      maxNewTokens: 8,
      greedy: true,
      eosTokenIds: EOS,
    });
    const text = tok.decode(greedy.tokens[0]!, { skipSpecialTokens: true });
    const r = await post('/v1/completions', { prompt: '1+2=', max_tokens: 8, temperature: 0, logprobs: 0 });
    assert.equal(r.json.choices[0].text, text);
    assert.deepEqual(
      r.json.choices[0].logprobs.tokens,
      greedy.tokens[0]!.map((t) => tok.decode([t])),
    );
    const stop = text.slice(1, 2);
    const s = await post('/v1/completions', { prompt: '1+2=', max_tokens: 8, temperature: 0, stop: [stop] });
    assert.equal(s.json.choices[0].finish_reason, 'stop');
    assert.equal(s.json.choices[0].text, text.slice(0, text.indexOf(stop)));
  });

  test('bad input: 400 (404 for an unknown model) naming the field', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{ prompt: P1, n: 0 }, 400, /^n: must be an integer in \[1, 1024\] \(got 0\)$/],
      [{}, 400, /^prompt: must be a string, a list of token ids, or a list of those/],
      [{ prompt: [5, 999] }, 400, /^prompt: the prompt has token id 999 outside the vocabulary \(0\.\.98\)$/],
      [{ prompt: [[5], []] }, 400, /^prompt: prompt 1 is empty$/],
      [{ prompt: P1, top_p: 2 }, 400, /^top_p: must be a number in \(0, 1\]/],
      [{ prompt: P1, temperature: -1 }, 400, /^temperature: /],
      [
        { prompt: P1, max_tokens: 100 },
        400,
        /^max_tokens: prompt 0 \(4 tokens\) \+ max_tokens 100 is past the model's maximum context length 64$/,
      ],
      [{ prompt: P1, logprobs: 50 }, 400, /^logprobs: must be an integer in \[0, 20\]/],
      [{ prompt: P1, stream: true }, 400, /^stream: is not supported/],
      [{ prompt: P1, seed: 1.5 }, 400, /^seed: must be an integer/],
      [{ prompt: P1, n: 2, sequence_seeds: ['1'] }, 400, /^sequence_seeds: must be a list of 2 seeds/],
      [{ prompt: P1, model: 'nope' }, 404, /^model: the model `nope` does not exist \(served: tiny\)$/],
      ['{not json', 400, /^the body is not JSON/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await post('/v1/completions', body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.json.error.message, msg, JSON.stringify(body));
    }
    const u = await post('/update_weights_from_disk', { model_path: join(dir, 'missing') });
    assert.equal(u.status, 400);
    assert.match(u.json.error.message, /^model_path: .*missing holds no config\.json$/);
    assert.equal((await fetch(srv.url + '/v1/completions')).status, 405);
    assert.equal((await fetch(srv.url + '/nowhere')).status, 404);
  });

  test('reloads: /update_weights_from_disk, /v1/load_lora_adapter, /v1/unload_lora_adapter', async () => {
    const req = (m?: string) => ({
      model: m,
      prompt: P1,
      max_tokens: 6,
      temperature: 0,
      logprobs: 0,
      return_tokens_as_token_ids: true,
    });
    const localGreedy = (m: CausalLM) =>
      generate(m, [P1], { maxNewTokens: 6, greedy: true, eosTokenIds: EOS }).tokens[0];
    // full weights (SGLang)
    const u = await post('/update_weights_from_disk', { model_path: otherDir });
    assert.equal(u.status, 200);
    assert.equal(u.json.success, true);
    const other = CausalLM.load(otherDir);
    assert.deepEqual(ids((await post('/v1/completions', req())).json.choices[0]), localGreedy(other));
    const baseTop = (await post('/v1/completions', { ...req('tiny'), logprobs: 3 })).json.choices[0].logprobs;
    // a LoRA adapter on top (vLLM): requests naming it use it, the base name does not
    const lora = applyLora(other, { r: 2, alpha: 4, seed: 1 });
    for (const { B } of lora.pairs.values()) {
      const n = B.size;
      B.copyFrom(
        Tensor.fromArray(
          Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 0.5),
          B.shape,
        ),
      );
    }
    saveAdapter(adapterDir, other, { baseModelNameOrPath: otherDir });
    const l = await post('/v1/load_lora_adapter', { lora_name: 'pol', lora_path: adapterDir });
    assert.equal(l.status, 200, JSON.stringify(l.json));
    const models = (await (await fetch(srv.url + '/v1/models')).json()) as any;
    assert.deepEqual(
      models.data.map((m: any) => [m.id, m.parent]),
      [
        ['tiny', null],
        ['pol', 'tiny'],
      ],
    );
    const withAdapter = localGreedy(other);
    const base = lora.disabled(() => localGreedy(other));
    assert.notDeepEqual(withAdapter, base, 'the adapter changes greedy tokens');
    assert.deepEqual(ids((await post('/v1/completions', req('pol'))).json.choices[0]), withAdapter);
    assert.deepEqual(ids((await post('/v1/completions', req('tiny'))).json.choices[0]), base);
    // the base's top log-probs too (the scoring pass runs with the adapter off)
    const top = (await post('/v1/completions', { ...req('tiny'), logprobs: 3 })).json.choices[0].logprobs;
    assert.deepEqual(top.tokens, baseTop.tokens);
    top.top_logprobs.forEach((d: Record<string, number>, t: number) => {
      assert.deepEqual(Object.keys(d).sort(), Object.keys(baseTop.top_logprobs[t]).sort());
      for (const k of Object.keys(d)) assert.ok(Math.abs(d[k]! - baseTop.top_logprobs[t][k]) <= 1e-5, `${t} ${k}`);
    });
    const again = await post('/v1/load_lora_adapter', { lora_name: 'pol', lora_path: adapterDir });
    assert.equal(again.status, 400);
    assert.match(again.json.error.message, /^lora_name: adapter pol is already loaded/);
    assert.equal((await post('/v1/unload_lora_adapter', { lora_name: 'pol' })).status, 200);
    assert.equal((await post('/v1/completions', req('pol'))).status, 404);
    assert.equal((await post('/v1/unload_lora_adapter', { lora_name: 'pol' })).status, 404);
    other.dispose();
  });

  test('one access-log line per request on stderr (method, path, status, ms)', () => {
    const log = srv.stderr();
    assert.match(log, /^GET \/v1\/models 200 \d+\.\dms$/m);
    assert.match(log, /^POST \/v1\/completions 200 \d+\.\dms$/m);
    assert.match(log, /^POST \/v1\/completions 400 \d+\.\dms$/m);
    assert.match(log, /^POST \/update_weights_from_disk 200 /m);
    assert.match(log, /^GET \/nowhere 404 /m);
  });
});
