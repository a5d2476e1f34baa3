import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
// Run through bin/gpg-rl.mjs with tsx registered by its API (no --import): the workers must
// register tsx themselves (worker-entry.mjs).
const run = (args: string[]) =>
  spawnSync(process.execPath, [BIN, 'verify', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('gpg-rl verify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-verify-'));
  test('grades each line in order, with errors, exit 0', () => {
    const input = join(dir, 'cases.jsonl');
    const out = join(dir, 'out.jsonl');
    writeFileSync(
      input,
      [
        JSON.stringify({ gold: '\\frac12', pred: 'The answer is \\boxed{0.5}', id: 1 }),
        JSON.stringify({ gold: '(1,2)', pred: '(1,2)' }),
        '',
        JSON.stringify({ gold: 27.0, pred: 'so 28' }),
        JSON.stringify({ gold: '1', pred: 'q'.repeat(300_000) }),
      ].join('\n'),
    );
    const r = run(['--input', input, '--out', out, '--timeout-ms', '5000']);
    assert.equal(r.status, 0, r.stderr);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.slice(0, 3), [
      { gold: '\\frac12', pred: 'The answer is \\boxed{0.5}', equal: true },
      { gold: '(1,2)', pred: '(1,2)', equal: true },
      { gold: 27, pred: 'so 28', equal: false },
    ]);
    assert.equal(lines[3]!['equal'], false);
    assert.match(String(lines[3]!['error']), /longer than/);
    const q = run(['--input', input, '--out', out, '--grader', 'qwen']);
    assert.equal(q.status, 0, q.stderr);
    assert.equal((JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!) as { equal: boolean }).equal, true);
  });
  test('missing or invalid input: one-line error, exit 1, no output', () => {
    const out = join(dir, 'none.jsonl');
    const r = run(['--input', join(dir, 'missing.jsonl'), '--out', out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^gpg-rl verify: .*missing\.jsonl: cannot read input \(ENOENT\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"gold":"1","pred":"1"}\nnot json\n');
    const b = run(['--input', bad, '--out', out]);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /bad\.jsonl:2: not valid JSON/);
    const g = run(['--input', bad, '--out', out, '--grader', 'sympy']);
    assert.equal(g.status, 1);
    assert.match(g.stderr, /--grader must be math-verify or qwen/);
    assert.equal(existsSync(out), false);
  });
  test.after(() => rmSync(dir, { recursive: true, force: true }));
});
