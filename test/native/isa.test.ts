/**
 * The portable addon: build/isa holds one build per instruction-set level of native/isa.json and
 * the loader picks the best level the CPU has (or GPG_RL_NATIVE_ISA); a CPU below every level is
 * one clear error naming the levels and their flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chooseNativeBuild, nativeBuild, nativeDirs } from '../../src/backend/cpu/addon.ts';
import { GpgRlError } from '../../src/errors.ts';

const levels = JSON.parse(readFileSync(new URL('../../native/isa.json', import.meta.url), 'utf8')).x64;
const all = levels.map((l: { name: string }) => l.name);

test('the best level the CPU flags allow; forced by name; unknown flags take the lowest', () => {
  const zen3 = new Set(['avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'sse4_2']);
  const skx = new Set([...zen3, 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']);
  const zen5 = new Set([...skx, 'avx512_bf16', 'avx512_vnni']);
  assert.equal(chooseNativeBuild(all, levels, zen3, undefined).name, 'x86-64-v3');
  assert.equal(chooseNativeBuild(all, levels, skx, undefined).name, 'x86-64-v4');
  assert.equal(chooseNativeBuild(all, levels, zen5, undefined).name, 'x86-64-v4-bf16');
  assert.equal(chooseNativeBuild(['x86-64-v3'], levels, zen5, undefined).name, 'x86-64-v3', 'only what was built');
  assert.equal(chooseNativeBuild(all, levels, zen5, 'x86-64-v4').name, 'x86-64-v4');
  assert.equal(chooseNativeBuild(all, levels, null, undefined).name, 'x86-64-v3');
  assert.equal(chooseNativeBuild(['native'], levels, zen3, undefined).name, 'native');
  assert.throws(
    () => chooseNativeBuild(all, levels, new Set(['sse2']), undefined),
    (e: unknown) => e instanceof GpgRlError && /none of the instruction sets.*x86-64-v3 \(avx2 fma/.test(e.message),
  );
  assert.throws(
    () => chooseNativeBuild(['x86-64-v3'], levels, zen5, 'x86-64-v4'),
    (e: unknown) => e instanceof GpgRlError && /GPG_RL_NATIVE_ISA=x86-64-v4: no such build/.test(e.message),
  );
});

test('this process loaded a build from build/isa (or a prebuild, or GPG_RL_NATIVE_DIR) and says why', () => {
  const dir = process.env.GPG_RL_NATIVE_DIR;
  if (dir) assert.ok(nativeBuild.file.startsWith(resolve(dir)), nativeBuild.file);
  else assert.match(nativeBuild.file, /(build[/\\]isa|prebuilds[/\\][a-z0-9]+-[a-z0-9]+)[/\\]gpg_native-.+\.node$/);
  assert.ok(nativeBuild.reason.length > 0);
});

test('builds are looked for in build/isa, then prebuilds/<platform>-<arch>; GPG_RL_NATIVE_DIR alone when set', () => {
  const prev = process.env.GPG_RL_NATIVE_DIR;
  try {
    delete process.env.GPG_RL_NATIVE_DIR;
    const [src, pre] = nativeDirs();
    assert.match(src!, /build[/\\]isa$/);
    assert.ok(pre!.endsWith(`prebuilds/${process.platform}-${process.arch}`), pre);
    process.env.GPG_RL_NATIVE_DIR = 'some/dir';
    assert.deepEqual(nativeDirs(), [resolve('some/dir')]);
  } finally {
    if (prev === undefined) delete process.env.GPG_RL_NATIVE_DIR;
    else process.env.GPG_RL_NATIVE_DIR = prev;
  }
});
