import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkBatches,
  cpuInfo,
  decodeFlopsPerToken,
  decodeTokensPerS,
  gemmAndPeak,
  trainShape,
} from '../../src/perf/bench.ts';
import { benchTokenizer, BenchError, digitPrompts, readShape, QWEN_TOKENIZER_SIZE } from '../../src/perf/fixtures.ts';
import { llamaTokensPerS, parseBatchedBench, referenceEnv } from '../../src/perf/anchors.ts';
import { measureStepInChild, procMemory } from '../../src/perf/step.ts';
import { parseBatches } from '../../src/cli/commands/bench.ts';
import { liveBytes as liveNativeBytes } from '../../src/backend/index.ts';
import { CausalLM } from '../../src/model/decoder.ts';
import { initModel } from '../../src/model/init.ts';
import { ModelLoadError, UsageError } from '../../src/errors.ts';

// The plumbing of `gpg-rl bench`: shapes, settings, parsers, the fresh-process step. Small shapes
// only, and no timing thresholds (those belong to the benchmark, not to tests).
const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'gpg-bench-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const TINY = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 96,
};
const tinyPath = join(dir, 'tiny.json');
writeFileSync(tinyPath, JSON.stringify(TINY));

test('gemmAndPeak: one figure per shape, the peak as median and best of the rounds, no tensors left', () => {
  const before = liveNativeBytes();
  const r = gemmAndPeak(
    [
      { M: 16, K: 32, N: 48, transB: true, reps: 6 },
      { M: 40, K: 24, N: 8, transB: false, reps: 3 },
    ],
    3,
  );
  assert.equal(r.gflops.length, 2);
  for (const g of r.gflops) assert.ok(Number.isFinite(g) && g > 0, `GFLOP/s ${g}`);
  assert.ok(Number.isFinite(r.peak) && r.peak > 0, `peak ${r.peak}`);
  assert.ok(r.peakBest >= r.peak, `best ${r.peakBest} ≥ median ${r.peak}`);
  assert.equal(liveNativeBytes(), before, 'operands are freed');
});

test('the Qwen2.5-0.5B shape file matches its HF config field by field', () => {
  const s = readShape(join(root, 'bench', 'qwen2.5-0.5b.json'));
  const c = s.cfg;
  assert.equal(s.name, 'qwen2.5-0.5b');
  assert.deepEqual(
    [c.architecture, c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize],
    ['Qwen2ForCausalLM', 896, 24, 14, 2, 64, 4864, 151936],
  );
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.ropeTheta, 1e6);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.attentionBias, true, 'q/k/v biases');
  assert.equal(s.json['use_sliding_window'], false);
  assert.equal(s.json['max_position_embeddings'], 32768);
  assert.deepEqual(trainShape(c.vocabSize), { B: 2, T: 512 });
  assert.deepEqual(trainShape(32000), { B: 4, T: 256 });
});

test('readShape: one clear error naming the file', () => {
  assert.throws(
    () => readShape(join(dir, 'nope.json')),
    (e) => e instanceof BenchError && /nope\.json: file not found/.test(e.message),
  );
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"hidden_size": 32,');
  assert.throws(
    () => readShape(bad),
    (e) => e instanceof BenchError && /bad\.json: not valid JSON/.test(e.message),
  );
  writeFileSync(bad, '[1, 2]');
  assert.throws(
    () => readShape(bad),
    (e) => e instanceof BenchError && /must be a JSON object/.test(e.message),
  );
  writeFileSync(bad, JSON.stringify({ ...TINY, hidden_act: 'gelu' }));
  assert.throws(
    () => readShape(bad),
    (e) => e instanceof ModelLoadError && e.message.includes('bad.json'),
  );
});

test('decode batch sizes: multiples of the group size 8, parsed from the flag', () => {
  assert.deepEqual(parseBatches('16,64,256'), [16, 64, 256]);
  assert.deepEqual(checkBatches([8, 24]), [8, 24]);
  assert.throws(() => parseBatches('16,,64'), UsageError);
  assert.throws(
    () => parseBatches('16,x'),
    (e) => e instanceof UsageError && /"x" is not a positive integer/.test(e.message),
  );
  assert.throws(
    () => checkBatches([12]),
    (e) => e instanceof BenchError && /12 is not a positive multiple of the group size 8/.test(e.message),
  );
  assert.throws(() => checkBatches([16, 16]), /repeats a size/);
  assert.throws(() => checkBatches([]), /at least one/);
});

test("bench tokenizer: Qwen's, padded to the model's vocabulary; digit prompts are one token per digit", () => {
  const tok = benchTokenizer(151936);
  assert.equal(tok.vocabSize, 151936);
  // an id above Qwen's 151,669 decodes (to nothing, as a special token) instead of failing
  assert.equal(tok.decode([15, 151935, 16], { skipSpecialTokens: true }), '01');
  const [p] = digitPrompts(1, 256, 3);
  assert.equal(p!.length, 256);
  const ids = tok.encode(p!, { addSpecialTokens: false });
  assert.equal(ids.length, 256);
  assert.ok(ids.every((id) => id >= 15 && id <= 24));
  assert.notEqual(digitPrompts(2, 16, 3)[0], digitPrompts(2, 16, 3)[1]);
  assert.equal(benchTokenizer(1000).vocabSize, QWEN_TOKENIZER_SIZE, 'no padding below its own size');
});

test('decodeTokensPerS: G copies of each prompt through generate(), every token generated and counted', () => {
  const init = initModel(TINY, { seed: 0 });
  const model = CausalLM.fromHost(init.cfg, init.tensors);
  try {
    const before = liveNativeBytes();
    const tps = decodeTokensPerS(model, 16, 8, 4, { G: 8, reps: 1, warmup: 'short' });
    assert.ok(Number.isFinite(tps) && tps > 0, `tokens/s ${tps}`);
    assert.equal(liveNativeBytes(), before, 'caches and logits are freed');
    assert.throws(() => decodeTokensPerS(model, 12, 8, 4, { G: 8 }), /not a multiple of the group size 8/);
  } finally {
    model.dispose();
  }
});

test('llama-batched-bench output: jsonl and markdown rows; B·TG / T by batch', () => {
  const jsonl = [
    'main: n_kv_max = 98304, n_batch = 2048',
    '{"n_kv_max": 98304, "n_batch": 2048, "n_ubatch": 512, "flash_attn": 0, "is_pp_shared": 0, "n_gpu_layers": 0, "n_threads": 2, "n_threads_batch": 2, "pp": 128, "tg": 256, "pl": 16, "n_kv": 6144, "t_pp": 2.5, "speed_pp": 819.2, "t_tg": 37.5, "speed_tg": 109.2, "t": 40.0, "speed": 153.6}',
    '{"pp": 128, "tg": 256, "pl": 64, "n_kv": 24576, "t_pp": 10, "speed_pp": 819.2, "t_tg": 118, "speed_tg": 138.8, "t": 128.0, "speed": 192}',
  ].join('\n');
  const rows = parseBatchedBench(jsonl);
  assert.deepEqual(rows, [
    { pp: 128, tg: 256, pl: 16, t: 40 },
    { pp: 128, tg: 256, pl: 64, t: 128 },
  ]);
  assert.deepEqual(llamaTokensPerS(rows, [16, 64], 128, 256), { 16: (16 * 256) / 40, 64: (64 * 256) / 128 });
  const md = [
    '|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |',
    '|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|',
    '|   128 |    256 |   16 |   6144 |    2.500 |   819.20 |   37.500 |   109.23 |   40.000 |   153.60 |',
  ].join('\n');
  assert.deepEqual(parseBatchedBench(md), [{ pp: 128, tg: 256, pl: 16, t: 40 }]);
  assert.throws(() => llamaTokensPerS(rows, [256], 128, 256), /no row for batch 256/);
});

test('the reference process runs without the OpenBLAS core / cache overrides, ours keeps them', () => {
  const base = { OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '1048576', PATH: '/bin' };
  const env = referenceEnv(base, '/opt/x');
  assert.equal(env['OPENBLAS_CORETYPE'], undefined);
  assert.equal(env['OPENBLAS_L2_SIZE'], undefined);
  assert.equal(env['ANCHORS_ROOT'], '/opt/x');
  assert.equal(env['PATH'], '/bin');
  assert.equal(base.OPENBLAS_CORETYPE, 'Haswell', 'our own environment is not changed');
});

test('machine facts: CPU model and this process memory', () => {
  const c = cpuInfo();
  assert.ok(c.model.length > 0 && c.cores >= 1);
  const m = procMemory();
  assert.ok(m.hwm >= m.rss && m.rss > 0, `VmHWM ${m.hwm} ≥ VmRSS ${m.rss}`);
});

test('step_peak_rss_gb: one GPG step through the trainer in a fresh process reports its VmHWM', async () => {
  const spec = {
    shape: tinyPath,
    prompts: 2,
    G: 8,
    promptTokens: 16,
    completionTokens: 8,
    microBatch: 8,
    threads: 0,
  };
  const r = await measureStepInChild(spec);
  assert.ok(r.peak_rss_gb >= r.build_peak_rss_gb && r.build_peak_rss_gb > 0, JSON.stringify(r));
  const init = initModel(TINY, { seed: 0 });
  assert.equal(
    r.params,
    [...init.tensors.values()].reduce((n, t) => n + t.data.length, 0),
  );
  assert.ok(r.generated_tokens > 0 && r.generated_tokens <= 2 * 8 * 8, `generated ${r.generated_tokens}`);
  assert.ok(r.train_tokens_per_s > 0 && r.generation_tokens_per_s > 0);
  // a bad spec comes back as one error line from the child
  await assert.rejects(
    () =>
      measureStepInChild({
        shape: join(dir, 'missing.json'),
        prompts: 2,
        G: 8,
        promptTokens: 16,
        completionTokens: 8,
        microBatch: 8,
        threads: 0,
      }),
    (e) => e instanceof BenchError && /fresh process\): bench --shape .*missing\.json: file not found/.test(e.message),
  );
  // the memory watchdog stops a child that grows past its limit instead of leaving it to the OOM killer
  await assert.rejects(
    () => measureStepInChild(spec, { maxRssBytes: 1 }),
    (e) => e instanceof BenchError && /stopped at [\d.]+ GB resident, over the limit of 0\.0 GB/.test(e.message),
  );
});

test('gpg-rl bench: bad flags are one line before anything is measured', () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [join(root, 'bin/gpg-rl.mjs'), 'bench', ...args], { encoding: 'utf8', cwd: root });
  for (const [args, re] of [
    [['--batches', '12'], /--batches: 12 is not a positive multiple of the group size 8/],
    [['--batches', '8,a'], /--batches: "a" is not a positive integer/],
    [['--shape', join(dir, 'nope.json')], /nope\.json: file not found/],
  ] as const) {
    const r = cli([...args]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
});

test('decodeFlopsPerToken: 2 per projection weight (the Qwen2.5-0.5B shape: every parameter but biases and norms) plus attention over the context', () => {
  const { cfg } = readShape(join(root, 'bench/qwen2.5-0.5b.json'));
  const L = cfg.numLayers;
  const biases = L * (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim;
  const norms = (2 * L + 1) * cfg.hiddenSize;
  assert.equal(decodeFlopsPerToken(cfg, 0), 2 * (494_032_768 - biases - norms));
  assert.equal(decodeFlopsPerToken(cfg, 100) - decodeFlopsPerToken(cfg, 0), L * 4 * cfg.numHeads * cfg.headDim * 100);
});
