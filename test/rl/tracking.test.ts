/**
 * report_to: a run with `[tensorboard, csv]` writes events.out.tfevents.* that an independent
 * reader here parses back (TFRecord framing, both masked CRC32Cs, `brain.Event:2`, scalar
 * summaries per logged step, averaged over logging_steps) and a metrics.csv whose header has
 * `loss`; eval results reach TensorBoard. Also the TRL record format against a fixed byte vector,
 * callbacks (onStep/onCompletions/onSave with 'stop', a throwing callback checkpoints first),
 * save_total_limit, rows without a dataset, and `wandb` refused with one line.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@aws-crypto/crc32c';
import { train } from '../../src/rl/trainer.ts';
import { validateConfig } from '../../src/rl/recipe.ts';
import { readMetrics } from '../../src/rl/metrics.ts';
import { tfRecord, scalarsEvent, readEventFile } from '../../src/rl/tracking.ts';
import { CallbackError, type CompletionRecord } from '../../src/rl/callbacks.ts';
import { ConfigError, DataError } from '../../src/errors.ts';
import { rowsFromCode, rowsSource } from '../../src/data/dataset.ts';
import type { RewardInput } from '../../src/rewards/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpg-track-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const len = ({ completions }: { completions: string[] }) => completions.map((c) => (c.length % 3 === 0 ? 1 : 0));
const base = (name: string, over: Record<string, unknown> = {}) => ({
  model_name_or_path: 'builtin:tiny',
  dataset: { path: 'builtin:arithmetic', limit: 32 },
  output_dir: join(dir, name),
  max_steps: 4,
  num_generations: 2,
  per_device_train_batch_size: 4,
  max_completion_length: 6,
  learning_rate: 1e-3,
  threads: 1,
  ...over,
});

// ---- an independent reader: TFRecord framing and tensorflow.Event / Summary protobuf

const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
function varint(b: Uint8Array, p: { i: number }): number {
  let x = 0;
  let s = 1;
  for (;;) {
    const byte = b[p.i++]!;
    x += (byte & 0x7f) * s;
    if (!(byte & 0x80)) return x;
    s *= 128;
  }
}
interface Ev {
  wall: number;
  step: number;
  version?: string;
  values: Map<string, number>;
}
function decodeEvent(b: Uint8Array): Ev {
  const ev: Ev = { wall: 0, step: 0, values: new Map() };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const p = { i: 0 };
  while (p.i < b.length) {
    const key = varint(b, p);
    if (key === 0x09) {
      ev.wall = dv.getFloat64(p.i, true);
      p.i += 8;
    } else if (key === 0x10) ev.step = varint(b, p);
    else if (key === 0x1a) {
      const n = varint(b, p);
      ev.version = new TextDecoder().decode(b.subarray(p.i, p.i + n));
      p.i += n;
    } else if (key === 0x2a) {
      const end = varint(b, p) + p.i;
      while (p.i < end) {
        assert.equal(varint(b, p), 0x0a, 'Summary.value (field 1, bytes)');
        const vEnd = varint(b, p) + p.i;
        assert.equal(varint(b, p), 0x0a, 'Summary.Value.tag');
        const tl = varint(b, p);
        const tag = new TextDecoder().decode(b.subarray(p.i, p.i + tl));
        p.i += tl;
        assert.equal(varint(b, p), 0x15, 'Summary.Value.simple_value (field 2, fixed32)');
        ev.values.set(tag, dv.getFloat32(p.i, true));
        p.i += 4;
        assert.equal(p.i, vEnd);
      }
    } else assert.fail(`unexpected Event field key ${key}`);
  }
  return ev;
}
function readRecords(path: string): Ev[] {
  const buf = new Uint8Array(readFileSync(path));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Ev[] = [];
  let off = 0;
  while (off < buf.length) {
    const n = Number(dv.getBigUint64(off, true));
    assert.equal(dv.getUint32(off + 8, true), mask(crc32c(buf.subarray(off, off + 8))), `length CRC at ${off}`);
    const data = buf.subarray(off + 12, off + 12 + n);
    assert.equal(dv.getUint32(off + 12 + n, true), mask(crc32c(data)), `data CRC at ${off}`);
    out.push(decodeEvent(data));
    off += 16 + n;
  }
  assert.equal(off, buf.length, 'no trailing bytes');
  return out;
}

describe('TFRecord / Event encoding', () => {
  test('CRC32C known answer and one record byte for byte', () => {
    assert.equal(crc32c(new TextEncoder().encode('123456789')) >>> 0, 0xe3069283); // RFC 3720 check value
    const ev = scalarsEvent(1.5, 3, { loss: 0.25 });
    // wall_time (0x09 + double 1.5), step (0x10 03), summary (0x2a len { 0x0a len { 0x0a 04 "loss" 0x15 float 0.25 } })
    assert.deepEqual(
      [...ev],
      [
        0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 3, 0x2a, 13, 0x0a, 11, 0x0a, 4, 108, 111, 115, 115, 0x15, 0, 0, 0x80,
        0x3e,
      ],
    );
    const rec = tfRecord(ev);
    assert.equal(rec.length, 16 + ev.length);
    assert.equal(new DataView(rec.buffer).getUint32(12 + ev.length, true), mask(crc32c(ev)));
  });
});

describe('report_to: tensorboard and csv', () => {
  test('a run writes event files TensorBoard reads and a CSV with a loss column', async () => {
    const out = join(dir, 'tb');
    const res = await train(base('tb', { report_to: ['tensorboard', 'csv'], logging_steps: 2 }), {
      rewardFns: { len },
      log: () => {},
    });
    assert.equal(res.steps, 4);
    const files = readdirSync(out).filter((f) => f.startsWith('events.out.tfevents.'));
    assert.equal(files.length, 1);
    const events = readRecords(join(out, files[0]!));
    assert.equal(events[0]!.version, 'brain.Event:2');
    const scalars = events.slice(1);
    assert.deepEqual(
      scalars.map((e) => e.step),
      [2, 4],
    );
    const rows = readMetrics(join(out, 'metrics.jsonl'));
    // each logged value is the mean of the window's steps (float32 in the event)
    for (const [k, e] of scalars.entries()) {
      const win = rows.slice(2 * k, 2 * k + 2);
      const want = (win[0]!.loss! + win[1]!.loss!) / 2;
      assert.ok(Math.abs(e.values.get('loss')! - want) <= 1e-6 * Math.max(1, Math.abs(want)), `loss at ${e.step}`);
      assert.ok(Math.abs(e.values.get('learning_rate')! - win[1]!.learning_rate!) <= 1e-6 * win[1]!.learning_rate!);
      assert.ok(e.values.has('rewards/len/mean'));
      assert.ok(!e.values.has('step'));
    }
    // our own reader agrees
    assert.deepEqual(
      readEventFile(join(out, files[0]!)).map((e) => e.step),
      [0, 2, 4],
    );
    const csv = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n');
    const header = csv[0]!.split(',');
    assert.equal(header[0], 'step');
    assert.ok(header.includes('loss') && header.includes('rewards/len/mean'));
    assert.deepEqual(
      csv.slice(1).map((l) => Number(l.split(',')[0])),
      [2, 4],
    );
    const lossCol = header.indexOf('loss');
    assert.ok(Number.isFinite(Number(csv[2]!.split(',')[lossCol])));
  });

  test('wandb and unknown trackers are refused with one line; none/all/jsonl are accepted', () => {
    assert.throws(
      () => validateConfig(base('w', { report_to: 'wandb' })),
      (e: Error) =>
        e instanceof ConfigError &&
        /^config: report_to: wandb: no maintained JavaScript library writes W&B offline run folders/.test(e.message) &&
        !e.message.includes('\n'),
    );
    assert.throws(
      () => validateConfig(base('w', { report_to: ['mlflow'] })),
      /report_to: "mlflow" is not a tracker here/,
    );
    assert.deepEqual(validateConfig(base('w', { report_to: 'none' })).report_to, []);
    assert.deepEqual(validateConfig(base('w', { report_to: 'all' })).report_to, ['tensorboard', 'csv']);
    assert.deepEqual(validateConfig(base('w', { report_to: ['jsonl', 'csv'] })).report_to, ['csv']);
  });
});

describe('callbacks', () => {
  test("onStep 'stop' ends the run cleanly; onCompletions gets every completion; onSave sees checkpoints and the model", async () => {
    const steps: number[] = [];
    const comps: CompletionRecord[][] = [];
    const saves: string[] = [];
    const res = await train(base('stop', { max_steps: 6, save_steps: 1, save_total_limit: 2 }), {
      rewardFns: { len },
      log: () => {},
      onStep: (row, info) => {
        steps.push(row.step!);
        assert.equal(info.totalSteps, 6);
        assert.ok(info.elapsedS > 0 && Number.isFinite(info.etaS));
        return row.step === 3 ? 'stop' : undefined;
      },
      onCompletions: (c) => void comps.push(c),
      onSave: (s) => void saves.push(s.modelDir ? `model@${s.step}` : `ck@${s.step}`),
    });
    assert.deepEqual(steps, [1, 2, 3]);
    assert.equal(res.steps, 3);
    assert.equal(comps.length, 3);
    assert.equal(comps[0]!.length, 4); // 2 prompts × 2 completions
    const c = comps[0]![0]!;
    assert.equal(typeof c.completion, 'string');
    assert.equal(typeof c.rewards.len, 'number');
    assert.ok(Number.isFinite(c.advantage));
    assert.ok(c.answer !== undefined);
    assert.deepEqual(saves, ['ck@1', 'ck@2', 'model@3']);
    const cks = readdirSync(res.runDir).filter((f) => f.startsWith('checkpoint-'));
    assert.deepEqual(cks.sort(), ['checkpoint-2', 'checkpoint-3']); // save_total_limit 2
    assert.ok(existsSync(join(res.runDir, 'model', 'config.json')));
    assert.ok(existsSync(join(res.runDir, 'report.html')));
  });

  test('a throwing callback checkpoints the completed step first, then one CallbackError', async () => {
    await assert.rejects(
      train(base('throw'), {
        rewardFns: { len },
        log: () => {},
        onStep: (row) => {
          if (row.step === 2) throw new Error('my hook broke');
        },
      }),
      (e: Error) =>
        e instanceof CallbackError &&
        e.step === 2 &&
        /^onStep threw at step 2: my hook broke; the step was saved to .*checkpoint-2/.test(e.message),
    );
    assert.ok(existsSync(join(dir, 'throw', 'checkpoint-2', 'trainer_state.json')));
  });

  test('rows given in code need no dataset and are recorded as rows:<n>:<hash>; resume names other rows', async () => {
    // answer and fields may be left out; a number answer is its decimal text; fields default to the row
    const rows = Array.from({ length: 8 }, (_, i) => ({ prompt: `${i}+1`, answer: i + 1, id: i }));
    const { dataset: _ignored, ...cfg } = base('rows', { max_steps: 1, save_steps: 1 });
    const seen: Array<{ answer: unknown; id: unknown }> = [];
    // (the row's fields arrive as columns, as TRL passes dataset columns to reward functions)
    const spy = ({ completions, answer, id }: RewardInput) => {
      for (let i = 0; i < completions.length; i++) seen.push({ answer: answer![i], id: id![i] });
      return completions.map(() => 1);
    };
    const res = await train(cfg, { rewardFns: { spy }, rows, log: () => {} });
    assert.equal(res.steps, 1);
    assert.ok(seen.length > 0 && seen.every((s) => s.answer === String(Number(s.id) + 1)), JSON.stringify(seen));
    const saved = JSON.parse(readFileSync(join(res.runDir, 'trainer_config.json'), 'utf8'));
    assert.match(saved.dataset.path, /^rows:8:[0-9a-f]{16}$/);
    assert.equal(saved.dataset.path, rowsSource('rows:', rowsFromCode(rows)));
    // other rows on --resume: the changed setting is named
    const other = rows.map((r) => ({ ...r, answer: 0 }));
    await assert.rejects(
      train({ ...cfg, max_steps: 2 }, { rewardFns: { len }, rows: other, resume: true, log: () => {} }),
      /dataset/,
    );
    assert.throws(
      () => rowsFromCode([{ prompt: 'a' }, { prompt: 3 }]),
      (e: Error) => e instanceof DataError && e.message === 'rows[1]: prompt must be a string (got a number)',
    );
  });
});
