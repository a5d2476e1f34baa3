/**
 * The rollout_servers client (src/generate/remote.ts) against small fake servers on loopback:
 * the request it sends (vLLM's fields), retries with a bound on 5xx, no retry on 4xx, fail-over
 * with one warning, the all-down error, and clear errors for answers it cannot use.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { RolloutServers, RolloutServersError, parseCompletion } from '../../src/generate/remote.ts';

type Handler = (path: string, body: any) => { status: number; body: unknown };
const open: Server[] = [];
after(() => {
  for (const s of open) s.close();
});
async function fake(h: Handler): Promise<{ url: string; seen: Array<{ path: string; body: any }> }> {
  const seen: Array<{ path: string; body: any }> = [];
  const srv = createServer(async (req, res) => {
    let text = '';
    for await (const c of req) text += c;
    const body = text ? JSON.parse(text) : null;
    seen.push({ path: req.url!, body });
    const r = h(req.url!, body);
    res.writeHead(r.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r.body));
  });
  open.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address() as { port: number };
  return { url: `http://127.0.0.1:${a.port}`, seen };
}
/** A loopback URL nothing listens on (a port just freed). */
async function deadUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
const choice = (ids: number[], stop = true) => ({
  index: 0,
  text: '',
  logprobs: { tokens: ids.map((i) => `token_id:${i}`), token_logprobs: ids.map(() => -1), top_logprobs: null },
  finish_reason: stop ? 'stop' : 'length',
});
/** Answers n choices per prompt of the request. */
const ok =
  (n: number): Handler =>
  (path, body) =>
    path === '/v1/models'
      ? { status: 200, body: { data: [{ id: 'base', parent: null }] } }
      : {
          status: 200,
          body: {
            choices: Array.from({ length: n * (body?.prompt?.length ?? 1) }, (_, i) => ({
              ...choice([1, 2, i]),
              index: i,
            })),
          },
        };
const S = { maxTokens: 4, temperature: 1, topP: 1, topK: 0, vocabSize: 10 };
const opts = (log: string[], retries = 1) => ({
  retries,
  timeoutMs: 5000,
  log: (l: string) => log.push(l),
  backoffMs: () => 0,
});

describe('RolloutServers', () => {
  test('sends token-id prompts with n, the sampling settings, seeds, logprobs and token ids; parses the answer', async () => {
    const a = await fake(ok(2));
    const log: string[] = [];
    const rs = new RolloutServers([a.url + '/'], opts(log));
    await rs.syncFull('/shared/w');
    const r = await rs.generate([[4, 5]], 2, S, [[7n, 2n ** 63n]]);
    assert.deepEqual(r.tokens, [
      [1, 2, 0],
      [1, 2, 1],
    ]);
    assert.deepEqual(r.finished, [true, true]);
    const sync = a.seen.find((x) => x.path === '/update_weights_from_disk')!;
    assert.deepEqual(sync.body, { model_path: '/shared/w' });
    const req = a.seen.find((x) => x.path === '/v1/completions')!.body;
    assert.deepEqual(req, {
      model: 'base',
      prompt: [[4, 5]],
      n: 2,
      max_tokens: 4,
      temperature: 1,
      top_p: 1,
      top_k: -1,
      seed: 7,
      sequence_seeds: ['7', String(2n ** 63n)],
      logprobs: 0,
      return_tokens_as_token_ids: true,
      skip_special_tokens: false,
    });
    assert.deepEqual(log, []);
  });

  test('5xx is retried (bounded), then the prompts move to the next server with one warning', async () => {
    let fails = 0;
    const bad = await fake((path) => {
      if (path === '/v1/completions') {
        fails++;
        return { status: 503, body: { error: { message: 'overloaded' } } };
      }
      return ok(1)(path, null);
    });
    const good = await fake(ok(1));
    const log: string[] = [];
    const rs = new RolloutServers([bad.url, good.url], opts(log, 2));
    await rs.syncFull('/w');
    const r = await rs.generate([[1], [2], [3]], 1, S, [[1n], [2n], [3n]]);
    assert.equal(r.tokens.length, 3);
    assert.equal(
      fails,
      3,
      'its request (prompts 1 and 3, round-robin) tried 3 times (retries 2), then the server is down',
    );
    // the good server got prompt 2, then prompts 1 and 3 in one request
    assert.deepEqual(
      good.seen.filter((x) => x.path === '/v1/completions').map((x) => x.body.prompt),
      [[[2]], [[1], [3]]],
    );
    assert.deepEqual(rs.live, [good.url]);
    assert.equal(log.length, 1);
    assert.match(
      log[0]!,
      /^warning: rollout server .* failed after 3 attempt\(s\) \(POST \/v1\/completions → 503: overloaded\); its prompts go to another server$/,
    );
  });

  test('every server down: one error naming each; a 4xx is not retried; unusable answers are clear errors', async () => {
    const log: string[] = [];
    const dead = await Promise.all([deadUrl(), deadUrl()]);
    const rs = new RolloutServers(dead, opts(log, 0));
    await assert.rejects(rs.syncFull('/w'), (e: unknown) => {
      assert.ok(e instanceof RolloutServersError);
      assert.match(
        e.message,
        /^rollout_servers: all 2 server\(s\) failed \(http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED; http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\); start them again, or set rollout_servers: \[\] for local rollouts$/,
      );
      return true;
    });
    let calls = 0;
    const four = await fake((path) => {
      if (path !== '/v1/completions') return ok(1)(path, null);
      calls++;
      return { status: 400, body: { error: { message: 'n: too big' } } };
    });
    const rs2 = new RolloutServers([four.url], opts(log, 3));
    await rs2.syncFull('/w');
    await assert.rejects(
      rs2.generate([[1]], 1, S, [[1n]]),
      /rollout server .*: POST \/v1\/completions → 400: n: too big$/,
    );
    assert.equal(calls, 1);
    const far = await fake((path) =>
      path === '/v1/completions' ? { status: 200, body: { choices: [choice([1, 99])] } } : ok(1)(path, null),
    );
    const rs3 = new RolloutServers([far.url], opts(log));
    await rs3.syncFull('/w');
    await assert.rejects(
      rs3.generate([[1]], 1, S, [[1n]]),
      /token id 99 is outside the policy's vocabulary \(10\); is it serving another model\?$/,
    );
    assert.throws(
      () =>
        parseCompletion('u', { choices: [{ ...choice([1]), logprobs: { tokens: ['hi'], token_logprobs: [-1] } }] }, 1),
      /rollout server u: token "hi" is not "token_id:<id>" \(the server ignored return_tokens_as_token_ids/,
    );
    assert.throws(() => parseCompletion('u', { choices: [] }, 2), /rollout server u: expected 2 choices, got 0/);
  });

  test('LoRA sync: unload (a 404 is fine) then load, and requests name the adapter', async () => {
    const a = await fake((path, body) => {
      if (path === '/v1/unload_lora_adapter') return { status: 404, body: { error: { message: 'not loaded' } } };
      if (path === '/v1/load_lora_adapter') return { status: 200, body: { success: true, echo: body } };
      return ok(1)(path, body);
    });
    const rs = new RolloutServers([a.url], opts([]));
    await rs.syncAdapter('pol', '/shared/adapter');
    await rs.generate([[1]], 1, S, [[1n]]);
    assert.deepEqual(
      a.seen.map((x) => x.path),
      ['/v1/models', '/v1/unload_lora_adapter', '/v1/load_lora_adapter', '/v1/completions'],
    );
    assert.deepEqual(a.seen[2]!.body, { lora_name: 'pol', lora_path: '/shared/adapter' });
    assert.equal(a.seen[3]!.body.model, 'pol');
  });

  test('start(): `sent` resolves once the requests are out, so they reach the servers while this process is blocked', async () => {
    // the server runs in another process (this one's event loop is about to block) and prints
    // when each completions request arrived
    const script = `
      const http = require('node:http');
      http.createServer((req, res) => {
        let t = '';
        req.on('data', (c) => (t += c));
        req.on('end', () => {
          process.stdout.write('arrived ' + Date.now() + '\\n');
          const n = JSON.parse(t).n * JSON.parse(t).prompt.length;
          const choices = Array.from({ length: n }, (_, i) => ({ index: i, text: '', finish_reason: 'stop',
            logprobs: { tokens: ['token_id:1'], token_logprobs: [-1] } }));
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ choices }));
        });
      }).listen(0, '127.0.0.1', function () { process.stdout.write('port ' + this.address().port + '\\n'); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      for (let i = 0; !/port \d+/.test(out); i++) {
        assert.ok(i < 3000 && child.exitCode === null, 'the fake server did not start');
        await new Promise((r) => setTimeout(r, 10));
      }
      const url = `http://127.0.0.1:${/port (\d+)/.exec(out)![1]}`;
      const client = new RolloutServers([url], opts([]));
      const { sent, result } = client.start([[1, 2]], 2, S, [[1n, 2n]]);
      await sent;
      const blockedAt = Date.now();
      while (Date.now() - blockedAt < 500); // a synchronous update (the trainer's optimize)
      const res = await result;
      assert.deepEqual(res.tokens, [[1], [1]]);
      while (!/arrived \d+/.test(out)) await new Promise((r) => setTimeout(r, 10));
      const arrived = Number(/arrived (\d+)/.exec(out)![1]);
      assert.ok(
        arrived < blockedAt + 500,
        `arrived ${arrived - blockedAt} ms after the block began (it lasted 500 ms)`,
      );
    } finally {
      child.kill('SIGKILL');
    }
  });
});
