import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError } from '../../src/errors.ts';
import {
  f16ToF32,
  f32ToF16,
  fromFloat32,
  fromInt32,
  parseSafetensors,
  readSafetensorsFile,
  serializeSafetensors,
  toFloat32,
  toInt32,
  writeSafetensorsFile,
  type StTensor,
} from '../../src/model/safetensors.ts';

const FIX = '/work/shared/fixtures/hf-reference';

/** A file with a hand-written header (the reader is tested independently of our writer). */
function rawFile(header: unknown, dataBytes: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function expectSt(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof SafetensorsError && re.test(e.message) && !e.message.includes('\n'));
}

describe('safetensors format', () => {
  test('re-serializing HF-written fixtures gives identical bytes', () => {
    for (const m of ['qwen2-tiny', 'llama-tiny', 'qwen3-tiny']) {
      const buf = readFileSync(join(FIX, m, 'model.safetensors'));
      const { tensors, metadata } = parseSafetensors(buf, m);
      assert.deepEqual(metadata, { format: 'pt' });
      assert.ok(tensors.has('model.embed_tokens.weight'));
      assert.equal(Buffer.compare(buf, Buffer.from(serializeSafetensors(tensors, metadata))), 0, m);
    }
  });

  test('writer: __metadata__ first with format pt, names sorted, header 8-byte aligned, mixed dtypes', () => {
    const t = {
      'b.w': fromFloat32(new Float32Array([1, 2, 3]), [3], 'BF16'),
      'a.w': fromFloat32(new Float32Array([1.5, -2, 0.25, 8]), [2, 2], 'F32'),
      'c.ids': fromInt32(new Int32Array([7, -1]), [1, 2]),
    };
    const bytes = serializeSafetensors(t, { note: 'x' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString());
    assert.deepEqual(Object.keys(header), ['__metadata__', 'a.w', 'b.w', 'c.ids']);
    assert.deepEqual(header.__metadata__, { format: 'pt', note: 'x' });
    assert.deepEqual(header['a.w'], { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] });
    assert.deepEqual(header['b.w'], { dtype: 'BF16', shape: [3], data_offsets: [16, 22] });
    assert.deepEqual(header['c.ids'], { dtype: 'I32', shape: [1, 2], data_offsets: [22, 30] });
    const back = parseSafetensors(bytes);
    // c.ids sits at an odd-aligned offset: conversion must still work.
    assert.deepEqual([...toInt32(back.tensors.get('c.ids')!)], [7, -1]);
    assert.deepEqual([...toFloat32(back.tensors.get('a.w')!)], [1.5, -2, 0.25, 8]);
    assert.deepEqual([...toFloat32(back.tensors.get('b.w')!)], [1, 2, 3]);
  });

  test('zero-size and scalar tensors', () => {
    const bytes = serializeSafetensors({
      e: fromFloat32(new Float32Array(0), [0, 5], 'F32'),
      s: fromFloat32(new Float32Array([3]), [], 'F32'),
    });
    const { tensors } = parseSafetensors(bytes);
    assert.deepEqual(tensors.get('e')!.shape, [0, 5]);
    assert.equal(toFloat32(tensors.get('e')!).length, 0);
    assert.deepEqual([...toFloat32(tensors.get('s')!)], [3]);
  });
});

describe('dtype conversion', () => {
  test('bf16 rounds to nearest even and keeps inf/NaN', () => {
    const one = 1,
      ulp = 2 ** -7; // bf16 has 7 mantissa bits
    const vals = new Float32Array([
      one + ulp / 2,
      one + ulp * 1.5,
      one + ulp / 2 + 2 ** -20,
      -0,
      Infinity,
      -Infinity,
      NaN,
      3.0e38,
    ]);
    const back = toFloat32(fromFloat32(vals, [vals.length], 'BF16'));
    assert.equal(back[0], 1); // tie → even (1.0)
    assert.equal(back[1], one + 2 * ulp); // tie → even (up)
    assert.equal(back[2], one + ulp); // above the tie → up
    assert.ok(Object.is(back[3], -0));
    assert.equal(back[4], Infinity);
    assert.equal(back[5], -Infinity);
    assert.ok(Number.isNaN(back[6]));
    assert.ok(Math.abs(back[7]! - 3.0e38) / 3.0e38 < 2 ** -8);
  });

  test('f16: exact values, ties to even, subnormals, overflow', () => {
    assert.equal(f32ToF16(1), 0x3c00);
    assert.equal(f32ToF16(-2), 0xc000);
    assert.equal(f32ToF16(65504), 0x7bff);
    assert.equal(f32ToF16(65520), 0x7c00); // rounds to inf
    assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(f32ToF16(2 ** -25), 0x0000); // tie → even (0)
    assert.equal(f32ToF16(3 * 2 ** -25), 0x0002); // tie → even (2)
    assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(f32ToF16(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
    assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
    // every finite f16 survives f16 → f32 → f16
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue;
      assert.equal(f32ToF16(f16ToF32(h)), h);
    }
    const t = fromFloat32(new Float32Array([0.5, -3.25, 1e-6]), [3], 'F16');
    const back = toFloat32(t);
    assert.equal(back[0], 0.5);
    assert.equal(back[1], -3.25);
    assert.ok(Math.abs(back[2]! - 1e-6) < 6e-8);
  });

  test('F64 → f32; I64 range-checked; wrong kinds are errors', () => {
    const f64 = new Float64Array([1.25, -7]);
    assert.deepEqual([...toFloat32({ dtype: 'F64', shape: [2], data: new Uint8Array(f64.buffer) })], [1.25, -7]);
    const i64 = new BigInt64Array([5n, -3n]);
    assert.deepEqual([...toInt32({ dtype: 'I64', shape: [2], data: new Uint8Array(i64.buffer) })], [5, -3]);
    const big = new BigInt64Array([2n ** 31n]);
    expectSt(() => toInt32({ dtype: 'I64', shape: [1], data: new Uint8Array(big.buffer) }), /does not fit in int32/);
    expectSt(() => toFloat32({ dtype: 'I32', shape: [1], data: new Uint8Array(4) }), /not a float type/);
    expectSt(() => toInt32({ dtype: 'F32', shape: [1], data: new Uint8Array(4) }), /not an integer type/);
    expectSt(() => fromFloat32(new Float32Array(3), [2, 2], 'F32'), /does not match 3 elements/);
  });
});

describe('untrusted input', () => {
  const good = (): Record<string, unknown> => ({
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] },
  });

  test('a valid hand-written file parses', () => {
    const { tensors } = parseSafetensors(rawFile(good(), 12), 'x.safetensors');
    assert.deepEqual([...tensors.keys()], ['a', 'b']);
  });

  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ['shorter than 8 bytes', () => new Uint8Array(5), /f\.st: file is 5 bytes/],
    ['header length past end', () => rawFile(good(), 12).subarray(0, 20), /header length \d+ runs past the end/],
    [
      'header length over limit',
      () => {
        const b = rawFile(good(), 12);
        new DataView(b.buffer).setBigUint64(0, 2n ** 40n, true);
        return b;
      },
      /exceeds the 100000000-byte limit/,
    ],
    [
      'not JSON',
      () => {
        const b = rawFile(good(), 12);
        b[10] = 0x7b;
        b[9] = 0x7b;
        return b;
      },
      /not valid JSON/,
    ],
    [
      'not UTF-8',
      () => {
        const b = rawFile(good(), 12);
        b[12] = 0xff;
        return b;
      },
      /not valid UTF-8/,
    ],
    ['JSON array', () => rawFile([1, 2], 0), /does not start with '\{'/],
    [
      'unknown dtype',
      () => rawFile({ ...good(), a: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, 12),
      /tensor "a": unsupported dtype "Q4"/,
    ],
    [
      'negative dim',
      () => rawFile({ ...good(), a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 12),
      /tensor "a": shape \[-2\] has an invalid dim/,
    ],
    [
      'fractional dim',
      () => rawFile({ ...good(), a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 12),
      /invalid dim/,
    ],
    [
      'huge shape',
      () => rawFile({ ...good(), a: { dtype: 'F32', shape: [2 ** 52, 2 ** 52, 0.5e1], data_offsets: [0, 8] } }, 12),
      /tensor "a": shape .* needs more than 12 bytes/,
    ],
    [
      'size mismatch',
      () => rawFile({ ...good(), a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 12),
      /needs 12 bytes but data_offsets \[0, 8\] hold 8/,
    ],
    [
      'offset past data',
      () => rawFile({ ...good(), b: { dtype: 'U8', shape: [4], data_offsets: [8, 12] } }, 11),
      /run past the 11-byte data region/,
    ],
    [
      'overlap',
      () =>
        rawFile(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'U8', shape: [4], data_offsets: [4, 8] },
          },
          8,
        ),
      /tensor "b" starts at byte 4 .* \(overlap\)/,
    ],
    [
      'gap',
      () =>
        rawFile(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'U8', shape: [4], data_offsets: [9, 13] },
          },
          13,
        ),
      /\(gap\)/,
    ],
    ['trailing bytes', () => rawFile(good(), 16), /cover 12 bytes but the data region holds 16/],
    [
      'offsets reversed',
      () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8),
      /data_offsets \[8,0\] are invalid/,
    ],
    [
      'metadata not strings',
      () => rawFile({ __metadata__: { n: 3 }, ...good() }, 12),
      /__metadata__\.n must be a string/,
    ],
    ['entry not object', () => rawFile({ a: 'F32' }, 0), /tensor "a": entry is not an object/],
  ];
  for (const [name, make, re] of cases) {
    test(`rejects: ${name}`, () => expectSt(() => parseSafetensors(make(), 'f.st'), re));
  }

  test('readSafetensorsFile: fixture matches the in-memory parse; truncated file names the path', () => {
    const path = join(FIX, 'llama-tiny', 'model.safetensors');
    const a = readSafetensorsFile(path);
    const b = parseSafetensors(readFileSync(path));
    assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()]);
    for (const [k, t] of a.tensors) assert.deepEqual(Buffer.from(t.data), Buffer.from(b.tensors.get(k)!.data), k);
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    try {
      const cut = join(dir, 'cut.safetensors');
      writeFileSync(cut, readFileSync(path).subarray(0, 4000));
      expectSt(() => readSafetensorsFile(cut), /cut\.safetensors: .*(run past|truncated)/);
      expectSt(() => readSafetensorsFile(join(dir, 'none.safetensors')), /none\.safetensors: cannot open \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('writeSafetensorsFile: same bytes as serialize; failure leaves no file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    try {
      const t: Record<string, StTensor> = { w: fromFloat32(new Float32Array([1, 2, 3, 4]), [2, 2], 'F16') };
      const p = join(dir, 'm.safetensors');
      writeSafetensorsFile(p, t);
      assert.deepEqual(readFileSync(p), Buffer.from(serializeSafetensors(t)));
      assert.deepEqual(readdirSync(dir), ['m.safetensors']);
      expectSt(() => writeSafetensorsFile(join(dir, 'missing', 'x.safetensors'), t), /cannot write \(ENOENT\)/);
      expectSt(
        () =>
          writeSafetensorsFile(join(dir, 'bad.safetensors'), {
            w: { dtype: 'F32', shape: [3], data: new Uint8Array(8) },
          }),
        /needs 12 bytes, data has 8/,
      );
      assert.deepEqual(readdirSync(dir), ['m.safetensors']);
      assert.ok(!existsSync(join(dir, 'missing')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
