import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsError } from '../../src/errors.ts';
import {
  fromFloat32,
  fromInt32,
  parseSafetensors,
  readSafetensorsFile,
  serializeSafetensors,
  ST_ITEMSIZE,
  type StDtype,
} from '../../src/model/safetensors.ts';
import { makeRng } from '../../src/model/init.ts';

// A valid base file: several dtypes and shapes, including an empty tensor.
const base = serializeSafetensors({
  'model.embed_tokens.weight': fromFloat32(
    Float32Array.from({ length: 48 }, (_, i) => i / 7),
    [12, 4],
    'F32',
  ),
  'model.norm.weight': fromFloat32(new Float32Array([1, 2, 3, 4]), [4], 'BF16'),
  'x.half': fromFloat32(new Float32Array([0.5, 1.5, -2]), [3], 'F16'),
  ids: fromInt32(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
  empty: fromFloat32(new Float32Array(0), [0, 3], 'F32'),
});
const headerLen = Number(new DataView(base.buffer).getBigUint64(0, true));
const baseHeader = JSON.parse(Buffer.from(base.subarray(8, 8 + headerLen)).toString()) as Record<
  string,
  Record<string, unknown>
>;
const dataRegion = base.subarray(8 + headerLen);

function fileWith(header: unknown, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const WILD: unknown[] = [
  -1,
  0,
  1,
  2 ** 31,
  2 ** 53,
  2 ** 64,
  1e308,
  -0,
  0.5,
  NaN,
  'x',
  null,
  [],
  {},
  true,
  Number.MAX_SAFE_INTEGER,
  2 ** 32 - 1,
];
const DTYPES = [...Object.keys(ST_ITEMSIZE), 'F4', 'bf16', '', 'C64'] as Array<StDtype | string>;

function mutate(rng: () => number): Uint8Array {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rng() * a.length)]!;
  const kind = Math.floor(rng() * 9);
  switch (kind) {
    case 0: {
      // random byte flips anywhere in the prefix + header
      const b = base.slice();
      const n = 1 + Math.floor(rng() * 4);
      for (let i = 0; i < n; i++) b[Math.floor(rng() * (8 + headerLen))] = Math.floor(rng() * 256);
      return b;
    }
    case 1: // truncation anywhere
      return base.slice(0, Math.floor(rng() * base.length));
    case 2: {
      // header length field overwritten with a random u64
      const b = base.slice();
      const hi = BigInt(Math.floor(rng() * 2 ** 32)) << 32n;
      const v = rng() < 0.5 ? BigInt(Math.floor(rng() * (base.length + 64))) : hi | BigInt(Math.floor(rng() * 2 ** 32));
      new DataView(b.buffer).setBigUint64(0, v, true);
      return b;
    }
    case 3: {
      // a wild value for one dim (huge shapes, negatives, fractions, wrong types)
      const h = structuredClone(baseHeader);
      const t = h[pick(Object.keys(h).filter((k) => k !== '__metadata__'))]!;
      const shape = (t['shape'] as unknown[]).slice();
      if (shape.length === 0 || rng() < 0.3) shape.push(pick(WILD));
      else shape[Math.floor(rng() * shape.length)] = pick(WILD);
      t['shape'] = rng() < 0.1 ? pick(WILD) : shape;
      return fileWith(h, dataRegion);
    }
    case 4: {
      // wild offsets
      const h = structuredClone(baseHeader);
      const t = h[pick(Object.keys(h).filter((k) => k !== '__metadata__'))]!;
      const offs = (t['data_offsets'] as unknown[]).slice();
      offs[Math.floor(rng() * 2)] = rng() < 0.5 ? pick(WILD) : Math.floor(rng() * (dataRegion.length + 10));
      t['data_offsets'] = rng() < 0.1 ? pick(WILD) : offs;
      return fileWith(h, dataRegion);
    }
    case 5: {
      // wrong dtype
      const h = structuredClone(baseHeader);
      h[pick(Object.keys(h).filter((k) => k !== '__metadata__'))]!['dtype'] = pick(DTYPES);
      return fileWith(h, dataRegion);
    }
    case 6: {
      // data region grown or shrunk
      const extra = Math.floor(rng() * 16) - 8;
      const data =
        extra >= 0
          ? Buffer.concat([dataRegion, Buffer.alloc(extra)])
          : dataRegion.subarray(0, dataRegion.length + extra);
      return fileWith(baseHeader, data);
    }
    case 7: {
      // structural garbage in the JSON text
      const text = JSON.stringify(baseHeader);
      const i = Math.floor(rng() * text.length);
      const junk = pick([
        '',
        '"',
        '{',
        '}',
        '[',
        ']',
        ',',
        ':',
        '\\u0000',
        '\u00ff',
        'null',
        '1e999',
        '{"__proto__":1}',
      ]);
      const cut = text.slice(0, i) + junk + text.slice(i + Math.floor(rng() * 4));
      return fileWith(cut, dataRegion);
    }
    default: {
      // extra / removed entries and metadata
      const h = structuredClone(baseHeader) as Record<string, unknown>;
      const r = rng();
      if (r < 0.3)
        h['extra' + Math.floor(rng() * 10)] = {
          dtype: pick(DTYPES),
          shape: [pick(WILD)],
          data_offsets: [pick(WILD), pick(WILD)],
        };
      else if (r < 0.6) delete h[pick(Object.keys(h))];
      else h['__metadata__'] = pick(WILD);
      return fileWith(h, dataRegion);
    }
  }
}

test('fuzz: 2,000 mutated files give only SafetensorsError or a fully consistent parse', () => {
  const rng = makeRng(20240611);
  let rejected = 0;
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    const buf = mutate(rng);
    try {
      const { tensors } = parseSafetensors(buf, `fuzz-${i}`);
      accepted++;
      // Anything accepted must be internally consistent: views inside the buffer, sizes match.
      for (const [name, t] of tensors) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        assert.equal(t.data.byteLength, n * ST_ITEMSIZE[t.dtype], `case ${i} tensor ${name}`);
        assert.ok(t.data.byteOffset + t.data.byteLength <= buf.byteOffset + buf.byteLength);
      }
    } catch (e) {
      if (!(e instanceof SafetensorsError)) assert.fail(`case ${i}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
      assert.ok(e.message.startsWith(`fuzz-${i}: `) && !e.message.includes('\n'), e.message);
      rejected++;
    }
  }
  assert.ok(rejected > 1500, `only ${rejected} of 2000 mutations were rejected`);
  assert.ok(accepted + rejected === 2000);
});

test('fuzz: the file reader (validates before reading data) on 200 mutated files', () => {
  const rng = makeRng(7);
  const dir = mkdtempSync(join(tmpdir(), 'st-fuzz-'));
  try {
    for (let i = 0; i < 200; i++) {
      const p = join(dir, `f${i}.safetensors`);
      writeFileSync(p, mutate(rng));
      try {
        readSafetensorsFile(p);
      } catch (e) {
        if (!(e instanceof SafetensorsError)) assert.fail(`case ${i}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
        assert.ok(e.message.startsWith(p), e.message);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
