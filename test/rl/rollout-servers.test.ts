/**
 * rollout_servers (issue 16 §2) on loopback: training with two `gpg-rl serve` processes equals
 * local rollouts for the same seeds (the trainer sends the local engine's per-completion seeds, so
 * sampled completions match token for token, and with them the metrics and the weights); the
 * weights reach the servers after every optimizer step; killing one server mid-run degrades to
 * the other with a warning; killing both fails the step with one clear message and a checkpoint
 * that --resume continues (here with local rollouts) to the same result.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitModel } from '../../src/model/init.ts';
import { train, type TrainResult } from '../../src/rl/trainer.ts';
import type { MetricsRow } from '../../src/rl/metrics.ts';
import { RolloutServers, RolloutServersError } from '../../src/generate/remote.ts';
import type { PendingRollout } from '../../src/rl/checkpoint.ts';
import type { EvalSummary, SampleRecord } from '../../src/eval/evaluate.ts';
import { serve, type Served } from '../serve/spawn.ts';
import { loadRecipe } from '../../src/rl/recipe.ts';

const SHAPE = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  tie_word_embeddings: true,
  max_position_embeddings: 64,
};
const dir = mkdtempSync(join(tmpdir(), 'gpg-rollout-servers-'));
const model = join(dir, 'model');
writeInitModel(model, SHAPE, { seed: 1, charVocab: true });
writeFileSync(
  join(dir, 'data.jsonl'),
  Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, answer: String(2 * i) })).join('\n') +
    '\n',
);
const servers: Served[] = [];
after(async () => {
  for (const s of servers) await s.kill();
  rmSync(dir, { recursive: true, force: true });
});
async function fleet(n: number, from = model): Promise<Served[]> {
  const out = await Promise.all(Array.from({ length: n }, () => serve(from)));
  servers.push(...out);
  return out;
}

const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 3 === 0 ? 1 : 0));

function config(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_name_or_path: model,
    dataset: { path: join(dir, 'data.jsonl'), use_chat_template: false, prompt_template: '{prompt}=' },
    output_dir: join(dir, name),
    num_generations: 4,
    per_device_train_batch_size: 8,
    max_prompt_length: 16,
    max_completion_length: 6,
    max_steps: 3,
    save_steps: 0,
    seed: 5,
    learning_rate: 3e-2, // large, so the policy (and its samples) change visibly between steps
    max_consecutive_skipped_steps: 0,
    ...over,
  };
}

const TIMING = new Set(['time_s', 'tokens_per_s/generation', 'tokens_per_s/training']);
function sameRun(a: TrainResult, b: TrainResult, what: string): void {
  assert.equal(a.metrics.length, b.metrics.length, what);
  for (const [i, row] of a.metrics.entries()) {
    const other = b.metrics[i]! as MetricsRow;
    for (const [k, v] of Object.entries(row)) {
      if (TIMING.has(k)) continue;
      const w = other[k]!;
      if (Number.isNaN(v)) assert.ok(Number.isNaN(w), `${what}: step ${i + 1} ${k}: ${w} vs NaN`);
      else assert.ok(Math.abs(v - w) <= 1e-6 * Math.max(1, Math.abs(v)), `${what}: step ${i + 1} ${k}: ${w} vs ${v}`);
    }
  }
  for (const [name, p] of a.model.params) {
    const x = p.toFloat32();
    const y = b.model.params.get(name)!.toFloat32();
    let d = 0;
    for (let j = 0; j < x.length; j++) d = Math.max(d, Math.abs(x[j]! - y[j]!));
    assert.ok(d <= 1e-6, `${what}: ${name} max |Δw| ${d}`);
  }
}

describe('rollout_servers', () => {
  let local: TrainResult;
  test('local reference run', async () => {
    local = await train(config('local'), { rewardFns: { len }, log: () => {} });
    assert.equal(local.steps, 3);
    assert.ok(
      local.metrics.some((r) => r['gpg/inverse_alpha']! > 0),
      'some step trained',
    );
  });

  test('two gpg-rl serve processes give the local run: same samples, metrics and weights', async () => {
    const [a, b] = await fleet(2);
    const lines: string[] = [];
    const res = await train(config('served', { rollout_servers: [a!.url, b!.url] }), {
      rewardFns: { len },
      log: (l) => lines.push(l),
    });
    sameRun(local, res, 'served vs local');
    // weights were synced before each rollout (3 steps: 3 reloads per server), prompts went to both
    for (const s of [a!, b!]) {
      assert.equal(s.stderr().match(/POST \/update_weights_from_disk 200/g)?.length, 3, s.stderr());
      assert.match(s.stderr(), /POST \/v1\/completions 200/);
    }
    assert.ok(existsSync(join(dir, 'served', 'rollout_weights', 'config.json')));
    assert.ok(!lines.some((l) => /warning/.test(l)), lines.join('\n'));
    await a!.kill();
    await b!.kill();
  });

  test('LoRA: the adapter reaches the servers through /v1/load_lora_adapter after every step', async () => {
    const lora = { use_peft: true, lora_r: 2, lora_alpha: 4 };
    const localLora = await train(config('lora-local', lora), { rewardFns: { len }, log: () => {} });
    const [a, b] = await fleet(2);
    const res = await train(config('lora-served', { ...lora, rollout_servers: [a!.url, b!.url] }), {
      rewardFns: { len },
      log: () => {},
    });
    sameRun(localLora, res, 'served LoRA vs local LoRA');
    for (const s of [a!, b!]) {
      assert.equal(s.stderr().match(/POST \/v1\/load_lora_adapter 200/g)?.length, 3, s.stderr());
      assert.doesNotMatch(s.stderr(), /update_weights_from_disk/);
    }
    assert.ok(existsSync(join(dir, 'lora-served', 'rollout_weights', 'adapter_config.json')));
    await a!.kill();
    await b!.kill();
  });

  test('killing one server mid-run degrades to the other with a warning, same result', async () => {
    const [a, b] = await fleet(2);
    const lines: string[] = [];
    const res = await train(config('one-dies', { rollout_servers: [a!.url, b!.url], rollout_server_retries: 1 }), {
      rewardFns: { len },
      log: (l) => lines.push(l),
      onStep: async (row) => {
        if (row.step === 1) await a!.kill();
      },
    });
    sameRun(local, res, 'one server killed vs local');
    assert.ok(
      lines.some((l) => l.includes(`warning: rollout server ${a!.url} failed after 2 attempt(s)`)),
      lines.join('\n'),
    );
    await b!.kill();
  });

  test('killing both fails the step with one clear message; --resume (local rollouts) finishes the same run', async () => {
    const [a, b] = await fleet(2);
    const cfg = config('both-die', { rollout_servers: [a!.url, b!.url], rollout_server_retries: 0 });
    await assert.rejects(
      train(cfg, {
        rewardFns: { len },
        log: () => {},
        onStep: async (row) => {
          if (row.step === 1) await Promise.all([a!.kill(), b!.kill()]);
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof RolloutServersError, String(e));
        assert.match(
          e.message,
          /^step 2: rollout_servers: all 2 server\(s\) failed \(.*\); start them again, or set rollout_servers: \[\] for local rollouts; saved .*checkpoint-1, continue with --resume$/,
        );
        return true;
      },
    );
    assert.ok(existsSync(join(dir, 'both-die', 'checkpoint-1')));
    const resumed = await train({ ...cfg, rollout_servers: [] }, { rewardFns: { len }, log: () => {}, resume: true });
    assert.equal(resumed.steps, 3);
    // the resumed process holds steps 2–3; the weights and those rows equal the uninterrupted local run
    sameRun({ ...local, metrics: local.metrics.slice(1) }, resumed, 'resumed vs local');
  });

  test('gpg-rl train with no server up: one line on stderr, exit 1, no run folder left', async () => {
    const { spawnSync } = await import('node:child_process');
    const { writeFileSync: write } = await import('node:fs');
    const recipe = join(dir, 'cli.yaml');
    const cfg = config('cli-down');
    write(
      recipe,
      [
        `model_name_or_path: ${model}`,
        'dataset:',
        `  path: ${join(dir, 'data.jsonl')}`,
        '  use_chat_template: false',
        'reward_funcs: [format]',
        'num_generations: 4',
        'per_device_train_batch_size: 8',
        'max_completion_length: 6',
        'max_steps: 1',
        `output_dir: ${String(cfg.output_dir)}`,
        '',
      ].join('\n'),
    );
    const r = spawnSync(
      process.execPath,
      [
        new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname,
        'train',
        recipe,
        '--set',
        'rollout_servers=[http://127.0.0.1:9]',
        '--set',
        'rollout_server_retries=0',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 1, r.stderr);
    const last = r.stderr.trim().split('\n').at(-1)!;
    assert.match(
      last,
      /^gpg-rl train: step 1: rollout_servers: all 1 server\(s\) failed \(http:\/\/127\.0\.0\.1:9: .+\); start them again, or set rollout_servers: \[\] for local rollouts; nothing was trained, so nothing was saved$/,
    );
    assert.ok(!existsSync(String(cfg.output_dir)), 'the fresh run folder is removed');
  });

  test('--set rollout_servers takes a list of URLs', () => {
    const recipe = new URL('../../recipes/demo.yaml', import.meta.url).pathname;
    const c = loadRecipe(recipe, ['rollout_servers=[http://10.0.0.1:8000, http://gpu2:8000/]']);
    assert.deepEqual(c.rollout_servers, ['http://10.0.0.1:8000', 'http://gpu2:8000/']);
    assert.equal(c.max_staleness, 0);
    assert.throws(
      () => loadRecipe(recipe, ['rollout_servers=[gpu1:8000]']),
      /rollout_servers\.0: must be an http\(s\) URL such as http:\/\/host:8000 \(got "gpu1:8000"\)/,
    );
  });

  test('max_staleness over 1, or 1 with local rollouts, is refused in one line', async () => {
    await assert.rejects(
      train(config('stale2', { max_staleness: 2, rollout_servers: ['http://127.0.0.1:9'] }), { rewardFns: { len } }),
      /max_staleness: at most 1 is implemented \(got 2\)/,
    );
    await assert.rejects(
      train(config('stale1-local', { max_staleness: 1 }), { rewardFns: { len } }),
      /max_staleness: needs rollout_servers \(got 1 with local rollouts\)/,
    );
  });
});

describe('max_staleness 1 (generation of step t+1 during step t)', () => {
  let local: TrainResult;
  let stale: TrainResult;
  let fleetA: Served[];
  const staleDir = join(dir, 'stale1');
  test('a 3-step run: staleness 0 then 1; each step after the first sampled with the weights before the previous update', async () => {
    local = await train(config('local-s'), { rewardFns: { len }, log: () => {} });
    fleetA = await fleet(2);
    const [a, b] = fleetA;
    stale = await train(config('stale1', { rollout_servers: [a!.url, b!.url], max_staleness: 1, save_steps: 1 }), {
      rewardFns: { len },
      log: () => {},
    });
    assert.equal(stale.steps, 3);
    assert.deepEqual(
      stale.metrics.map((r) => r['sampling/staleness']),
      [0, 1, 1],
    );
    // step 1 is the on-policy step: the same as local rollouts
    sameRun(
      { ...local, metrics: local.metrics.slice(0, 1) },
      { ...stale, metrics: stale.metrics.slice(0, 1), model: local.model },
      'step 1',
    );
    // and later steps are not (the samples came from older weights)
    assert.notDeepEqual(
      stale.metrics.slice(1).map((r) => r['completions/mean_length']),
      local.metrics.slice(1).map((r) => r['completions/mean_length']),
    );
    // the weights went out twice: before step 1's rollout (W0) and, once step 2's answer (sampled
    // with W0) was in, before step 3's request (W1); W2 never generates anything
    for (const s of [a!, b!])
      assert.equal(s.stderr().match(/POST \/update_weights_from_disk 200/g)?.length, 2, s.stderr());
    // each checkpoint holds the next step's prefetched rollout, generated with the weights one step back
    const pending = (k: number) =>
      (
        JSON.parse(readFileSync(join(staleDir, `checkpoint-${k}`, 'trainer_state.json'), 'utf8')) as {
          pending: PendingRollout;
        }
      ).pending;
    const p1 = pending(1);
    const p2 = pending(2);
    assert.equal(p1.weightsAt, 0);
    assert.equal(p2.weightsAt, 1);
    assert.equal(
      (JSON.parse(readFileSync(join(staleDir, 'checkpoint-3', 'trainer_state.json'), 'utf8')) as { pending?: unknown })
        .pending,
      undefined,
    );
    // they are what the training steps used: the metrics' mean completion length
    const meanLen = (p: PendingRollout) => p.tokens.reduce((s, t) => s + t.length, 0) / p.tokens.length;
    assert.equal(stale.metrics[1]!['completions/mean_length'], meanLen(p1));
    assert.equal(stale.metrics[2]!['completions/mean_length'], meanLen(p2));
    // the reference: step t+1's prompts and seeds against the step t−1 weights on a fresh server
    const [ref] = await fleet(1);
    const client = new RolloutServers([ref!.url], { retries: 0, timeoutMs: 60_000, log: () => {} });
    const sampling = { maxTokens: 6, temperature: 1, topP: 1, topK: 0, vocabSize: stale.model.cfg.vocabSize };
    const ask = (p: PendingRollout) =>
      client.generate(
        p.prompts,
        4,
        sampling,
        p.seeds.map((g) => g.map((x) => BigInt(x))),
      );
    await client.syncFull(model); // W0: the initial weights
    assert.deepEqual((await ask(p1)).tokens, p1.tokens, 'step 2 = its prompts on W0');
    await client.syncFull(join(staleDir, 'checkpoint-1')); // W1
    assert.deepEqual((await ask(p2)).tokens, p2.tokens, 'step 3 = its prompts on W1');
    await ref!.kill();
  });

  test('Ctrl-C after step 1 awaits the prefetched rollout into the checkpoint; --resume gives the uninterrupted run', async () => {
    const [a, b] = fleetA;
    const ac = new AbortController();
    const cfg = config('stale1-int', { rollout_servers: [a!.url, b!.url], max_staleness: 1 });
    await assert.rejects(
      train(cfg, {
        rewardFns: { len },
        log: () => {},
        signal: ac.signal,
        onStep: (row) => {
          if (row.step === 1) ac.abort();
        },
      }),
      /interrupted after step 1: saved .*checkpoint-1/,
    );
    const ck = join(dir, 'stale1-int', 'checkpoint-1', 'trainer_state.json');
    assert.equal((JSON.parse(readFileSync(ck, 'utf8')) as { pending: PendingRollout }).pending.weightsAt, 0);
    // a copy resumed with max_staleness 0 and local rollouts: step 2's prompts and seeds again, on W1
    cpSync(join(dir, 'stale1-int'), join(dir, 'stale1-int0'), { recursive: true });
    const resumed = await train(cfg, { rewardFns: { len }, log: () => {}, resume: true });
    assert.equal(resumed.steps, 3);
    sameRun({ ...stale, metrics: stale.metrics.slice(1) }, resumed, 'resumed max_staleness 1 vs uninterrupted');
    const onPolicy = await train(
      { ...cfg, output_dir: join(dir, 'stale1-int0'), rollout_servers: [], max_staleness: 0 },
      { rewardFns: { len }, log: () => {}, resume: true },
    );
    sameRun({ ...local, metrics: local.metrics.slice(1) }, onPolicy, 'resumed with max_staleness 0 vs local');
    assert.deepEqual(
      onPolicy.metrics.map((r) => r['sampling/staleness']),
      [0, 0],
    );
    await a!.kill();
    await b!.kill();
  });
});

describe('max_staleness 1 when every server dies', () => {
  test('the step that needs them fails with one line and a checkpoint; a local max_staleness 0 resume finishes', async () => {
    const [a, b] = await fleet(2);
    const cfg = config('stale1-die', {
      rollout_servers: [a!.url, b!.url],
      max_staleness: 1,
      rollout_server_retries: 0,
    });
    let failed = '';
    await assert.rejects(
      train(cfg, {
        rewardFns: { len },
        log: () => {},
        onStep: async (row) => {
          if (row.step === 1) await Promise.all([a!.kill(), b!.kill()]);
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof RolloutServersError, String(e));
        // step 2's prefetched request may have been answered before the kill (then step 3's sync fails)
        assert.match(
          e.message,
          /^step ([23]): rollout_servers: all 2 server\(s\) failed \(.*\); start them again, or set rollout_servers: \[\] for local rollouts; saved .*checkpoint-[12], continue with --resume$/,
        );
        failed = e.message;
        return true;
      },
    );
    const resumed = await train(
      { ...cfg, rollout_servers: [], max_staleness: 0 },
      { rewardFns: { len }, log: () => {}, resume: true },
    );
    assert.equal(resumed.steps, 3, failed);
    assert.ok(resumed.metrics.every((r) => r['sampling/staleness'] === 0));
  });
});

describe('eval_steps on rollout servers', () => {
  // the benchmark prompts are longer than the 64 positions of the training tests' model
  const long = join(dir, 'model-512');
  writeInitModel(long, { ...SHAPE, max_position_embeddings: 512 }, { seed: 1, charVocab: true });
  const evalCfg = {
    model_name_or_path: long,
    max_steps: 2,
    eval_steps: 1,
    eval_benchmarks: ['amc23'],
    eval_limit: 2,
  };
  type Evals = { summary: EvalSummary; records: SampleRecord[] }[];
  const collect = (evals: Evals) => ({
    onEval: (summary: EvalSummary, _info: unknown, records: SampleRecord[]) => {
      evals.push({ summary, records });
    },
  });
  const sameEval = (a: Evals[number], b: Evals[number], what: string) => {
    assert.deepEqual(b.records, a.records, `${what}: completions`);
    assert.deepEqual(b.summary.benchmarks, a.summary.benchmarks, `${what}: scores`);
    assert.deepEqual(b.summary.average, a.summary.average, `${what}: average`);
  };
  const localEvals: Evals = [];
  test('an eval during a served run is generated on the servers and equals the local run’s', async () => {
    await train(config('eval-local', evalCfg), { rewardFns: { len }, log: () => {}, ...collect(localEvals) });
    assert.equal(localEvals.length, 2);
    assert.ok(localEvals[0]!.records.length > 0 && localEvals[0]!.records.some((r) => r.completion.length > 0));
    const [a, b] = await fleet(2, long);
    const evals: Evals = [];
    const res = await train(config('eval-served', { ...evalCfg, rollout_servers: [a!.url, b!.url] }), {
      rewardFns: { len },
      log: () => {},
      ...collect(evals),
    });
    assert.equal(res.steps, 2);
    assert.equal(evals.length, 2);
    evals.forEach((e, i) => sameEval(localEvals[i]!, e, `eval at step ${i + 1}`));
    // the servers generated the evals (past the 2 rollouts' one request per server), each on the
    // weights of the step evaluated: W0 for step 1's rollout, W1 for eval 1 and step 2's rollout,
    // W2 for eval 2 (three syncs per server)
    const count = (re: RegExp) => [a!, b!].reduce((n, s) => n + (s.stderr().match(re)?.length ?? 0), 0);
    assert.ok(count(/POST \/v1\/completions 200/g) > 4, a!.stderr());
    assert.equal(count(/POST \/update_weights_from_disk 200/g), 6);
    await a!.kill();
    await b!.kill();
  });

  test('max_staleness 1: the eval waits for the prefetched rollout, then syncs (step 1 = the local eval)', async () => {
    const [a, b] = await fleet(2);
    const evals: Evals = [];
    const res = await train(config('eval-stale', { ...evalCfg, rollout_servers: [a!.url, b!.url], max_staleness: 1 }), {
      rewardFns: { len },
      log: () => {},
      ...collect(evals),
    });
    assert.deepEqual(
      res.metrics.map((r) => r['sampling/staleness']),
      [0, 1],
    );
    sameEval(localEvals[0]!, evals[0]!, 'eval at step 1');
    // W0 (step 1's rollout and the prefetched step 2), W1 (eval 1), W2 (eval 2)
    for (const s of [a!, b!])
      assert.equal(s.stderr().match(/POST \/update_weights_from_disk 200/g)?.length, 3, s.stderr());
    await a!.kill();
    await b!.kill();
  });
});
