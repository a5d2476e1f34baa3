/**
 * `gpg-rl eval --rollout-servers` (issue 16 §4) on loopback, with two `gpg-rl serve` processes
 * serving a tiny init-model: served eval equals local eval on the same model (greedy, and seeded
 * sampling, since eval sends the local engine's per-completion seeds): same results.jsonl, same
 * summary.json but for the time, same table; a server that is down at the start, or dies between
 * rounds, is dropped with a warning and the other generates the rest (same results); all servers
 * down is one clear line, exit 1, no output; incompatible options are refused in one line.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { readGenerationConfig, readModelConfig } from '../../src/model/config.ts';
import { specialTokens } from '../../src/model/special.ts';
import { TextTokenizer } from '../../src/model/tokenizer.ts';
import { RolloutServers } from '../../src/generate/remote.ts';
import { evaluate } from '../../src/eval/evaluate.ts';
import { serve, type Served } from '../serve/spawn.ts';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const TINY = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 4096,
  tie_word_embeddings: true,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-eval-servers-'));
const modelDir = join(dir, 'tiny-model');
writeInitModel(modelDir, TINY, { seed: 1, charVocab: true });
const servers: Served[] = [];
after(async () => {
  for (const s of servers) await s.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** `gpg-rl eval …` as a child process (async: the servers' stderr keeps draining meanwhile). */
function runEval(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'eval', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const COMMON = ['--model', modelDir, '--benchmarks', 'amc23,aime24', '--limit', '3', '--max-new-tokens', '10'];
const SAMPLED = ['--samples', '3', '--temperature', '0.9', '--top-p', '0.95', '--top-k', '20', '--seed', '7'];
const DEAD = 'http://127.0.0.1:9';

function outputs(out: string): { results: string; summary: Record<string, unknown> } {
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, unknown>;
  delete summary['time_s'];
  return { results: readFileSync(join(out, 'results.jsonl'), 'utf8'), summary };
}

function sameOutputs(local: string, served: string, what: string): void {
  const a = outputs(local);
  const b = outputs(served);
  assert.equal(b.results, a.results, `${what}: results.jsonl`);
  assert.deepEqual(b.summary, a.summary, `${what}: summary.json`);
}

describe('gpg-rl eval --rollout-servers', () => {
  let a: Served;
  let b: Served;
  test('start two gpg-rl serve processes', async () => {
    [a, b] = await Promise.all([serve(modelDir), serve(modelDir)]);
    servers.push(a, b);
  });

  for (const [name, extra] of [
    ['greedy', [] as string[]],
    ['seeded sampling (k = 3)', SAMPLED],
  ] as const)
    test(`${name}: served eval equals local eval (results.jsonl, summary.json, table)`, async () => {
      const tag = extra.length ? 'sampled' : 'greedy';
      const local = await runEval([...COMMON, ...extra, '--out', join(dir, `${tag}-local`)]);
      assert.equal(local.status, 0, local.stderr);
      const served = await runEval([
        ...COMMON,
        ...extra,
        '--rollout-servers',
        `${a.url},${b.url}/`,
        '--batch-size',
        extra.length ? '6' : '2', // 2 prompts per server request: several rounds, both servers used
        '--out',
        join(dir, `${tag}-served`),
      ]);
      assert.equal(served.status, 0, served.stderr);
      assert.equal(served.stdout, local.stdout, 'the table');
      sameOutputs(join(dir, `${tag}-local`), join(dir, `${tag}-served`), name);
      assert.match(served.stderr, /eval: generating on 2 rollout server\(s\)/);
      assert.doesNotMatch(served.stderr, /warning/);
      for (const s of [a, b]) assert.match(s.stderr(), /POST \/v1\/completions 200/);
      // some completion is non-empty, so equality says something
      const recs = readFileSync(join(dir, `${tag}-served`, 'results.jsonl'), 'utf8')
        .trim()
        .split('\n');
      assert.equal(recs.length, 6 * (extra.length ? 3 : 1));
      const texts = recs.map((l) => (JSON.parse(l) as { completion: string }).completion);
      assert.ok(texts.some((t) => t.length > 0));
      // sampled: the samples differ, so equal files mean equal seeds reached the servers
      if (extra.length) assert.ok(new Set(texts).size > 6, `distinct sampled completions: ${new Set(texts).size}`);
    });

  test('one server down at the start: a warning, the other generates everything, same results', async () => {
    const r = await runEval([
      ...COMMON,
      '--rollout-servers',
      `${DEAD},${b.url}`,
      '--rollout-server-retries',
      '0',
      '--out',
      join(dir, 'one-down'),
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /eval: warning: rollout server http:\/\/127\.0\.0\.1:9 failed after 1 attempt\(s\) \(.+\)/);
    assert.match(r.stderr, /eval: generating on 1 rollout server\(s\): http:\/\/127\.0\.0\.1:\d+\n/);
    sameOutputs(join(dir, 'greedy-local'), join(dir, 'one-down'), 'one server down');
  });

  test('a server that dies between rounds: its prompts go to the other with a warning, same results', async () => {
    const [c, d] = await Promise.all([serve(modelDir), serve(modelDir)]);
    servers.push(c, d);
    const lines: string[] = [];
    const fleet = new RolloutServers([c.url, d.url], {
      retries: 1,
      timeoutMs: 60_000,
      backoffMs: () => 0,
      log: (l) => lines.push(l),
      allDownHint: 'x',
    });
    await fleet.connect();
    const tokenizer = TextTokenizer.fromDir(modelDir);
    const cfg = readModelConfig(modelDir);
    // the eos ids `gpg-rl eval` uses
    const eos = specialTokens(cfg, tokenizer, readGenerationConfig(modelDir, cfg), modelDir).eosTokenIds;
    let killed = false;
    const r = await evaluate(null, tokenizer, {
      benchmarks: ['aime24', 'amc23'],
      limit: 3,
      maxNewTokens: 10,
      batchSize: 1,
      eosTokenIds: eos,
      remote: { servers: fleet, vocabSize: cfg.vocabSize },
      progressIntervalMs: 0,
      onProgress: (m) => {
        if (!killed && /completions \d+\/\d+/.test(m)) {
          killed = true;
          c.child.kill('SIGKILL'); // after the first round of amc23
        }
      },
    });
    assert.ok(killed);
    assert.ok(
      lines.some((l) => l.startsWith(`warning: rollout server ${c.url} failed after 2 attempt(s)`)),
      lines.join('\n'),
    );
    assert.deepEqual(fleet.live, [d.url]);
    const local = readFileSync(join(dir, 'greedy-local', 'results.jsonl'), 'utf8');
    assert.equal(r.records.map((x) => JSON.stringify(x) + '\n').join(''), local);
  });

  test('all servers down: one clear line on stderr, exit 1, nothing written', async () => {
    const out = join(dir, 'all-down');
    const r = await runEval([
      ...COMMON,
      '--rollout-servers',
      `${DEAD},http://127.0.0.1:1`,
      '--rollout-server-retries',
      '0',
      '--out',
      out,
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    const last = r.stderr.trim().split('\n').at(-1)!;
    assert.match(
      last,
      /^gpg-rl eval: --rollout-servers: all 2 server\(s\) failed \(http:\/\/127\.0\.0\.1:9: .+; http:\/\/127\.0\.0\.1:1: .+\); start them again, or drop --rollout-servers to generate locally$/,
    );
    assert.ok(!existsSync(out), 'the fresh --out folder is removed');
  });

  test('--served-model-name: requests name it; a name the servers do not serve is one clear line', async () => {
    const ok = await runEval([...COMMON, '--rollout-servers', a.url, '--served-model-name', modelDir]);
    assert.equal(ok.status, 0, ok.stderr);
    const bad = await runEval([...COMMON, '--rollout-servers', a.url, '--served-model-name', 'other-model']);
    assert.equal(bad.status, 1);
    assert.equal(
      bad.stderr.trim().split('\n').at(-1),
      `gpg-rl eval: rollout server ${a.url}: does not serve the model \`other-model\` (GET /v1/models lists ${modelDir})`,
    );
  });

  test('incompatible or malformed options are refused in one line', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--completions', join(dir, 'c.jsonl'), '--rollout-servers', a.url],
        /^gpg-rl eval: --rollout-servers generates completions; --completions grades given ones: pass one of them\n$/,
      ],
      [
        [...COMMON, '--rollout-servers', 'gpu1:8000'],
        /^gpg-rl eval: --rollout-servers: each entry must be an http\(s\) URL such as http:\/\/host:8000 \(got "gpu1:8000"\)\n$/,
      ],
      [
        [...COMMON, '--served-model-name', 'x'],
        /^gpg-rl eval: --served-model-name only applies with --rollout-servers URL\[,URL…\]\n$/,
      ],
      [
        [...COMMON, '--rollout-servers', a.url, '--rollout-server-timeout-s', '0'],
        /^gpg-rl eval: --rollout-server-timeout-s must be > 0 \(got 0\)\n$/,
      ],
    ];
    for (const [args, want] of cases) {
      const r = await runEval(args);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, want);
      assert.equal(r.stdout, '');
    }
  });
});
