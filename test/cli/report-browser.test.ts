/**
 * report.html in a real browser: `gpg-rl report RUN_DIR`, then headless Chromium (Debian
 * `chromium`; .ci/run installs it as root) takes a screenshot (a PNG of the page size that is not
 * blank) and runs the page's script: the completions search (`#q=` in the address) hides the
 * rows that lack the words. Skipped, with one line saying why, where Chromium is absent.
 * GPG_RL_SCREENSHOT_DIR=DIR keeps the screenshot there.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;
const browser = ['chromium', 'chromium-browser', 'google-chrome'].find(
  (b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0,
);
const dir = mkdtempSync(join(tmpdir(), 'gpg-report-browser-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function chromium(args: string[]): { stdout: string; status: number | null } {
  const r = spawnSync(
    browser!,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--user-data-dir=${join(dir, 'profile')}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 },
  );
  return { stdout: r.stdout, status: r.status };
}

/** PNG width, height and the inflated scanlines (8-bit RGB/RGBA as Chromium writes them). */
function readPng(path: string): { w: number; h: number; pixels: Buffer } {
  const b = readFileSync(path);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  let off = 8;
  let w = 0;
  let h = 0;
  const idat: Buffer[] = [];
  while (off < b.length) {
    const n = b.readUInt32BE(off);
    const type = b.toString('ascii', off + 4, off + 8);
    const data = b.subarray(off + 8, off + 8 + n);
    if (type === 'IHDR') [w, h] = [data.readUInt32BE(0), data.readUInt32BE(4)];
    if (type === 'IDAT') idat.push(data);
    off += 12 + n;
  }
  return { w, h, pixels: inflateSync(Buffer.concat(idat)) };
}

test(
  'report.html in headless Chromium: a non-blank screenshot, and the completions search filters rows',
  {
    skip: browser ? false : 'no chromium on this machine (Debian: apt-get install chromium); report.html not rendered',
  },
  () => {
    const run = join(dir, 'run');
    mkdirSync(run);
    const rows = Array.from({ length: 20 }, (_, i) => ({
      step: i + 1,
      loss: 1 / (i + 1),
      reward: i / 20,
      reward_std: 0.3,
      learning_rate: 1.1e-4 + i * 1e-7,
      'rewards/accuracy/mean': i / 20,
      'rewards/format/mean': 0.5,
    }));
    writeFileSync(join(run, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(
      join(run, 'eval.jsonl'),
      [5, 10, 15, 20]
        .map((s) =>
          JSON.stringify({ step: s, benchmarks: { math500: { pass1: s / 100 } }, average: { pass1: s / 100 } }),
        )
        .join('\n') + '\n',
    );
    const comp = (step: number, prompt: string, completion: string, answer: string) =>
      JSON.stringify({
        step,
        prompt,
        completion,
        answer,
        rewards: { accuracy: 1, format: 0 },
        reward: 1,
        advantage: 0.25,
        finished: true,
      });
    writeFileSync(
      join(run, 'completions.jsonl'),
      [comp(19, '12+30=', '42', '42'), comp(20, '7*6=', '41', '42'), comp(20, '9-4=', 'five', '5')].join('\n') + '\n',
    );
    const r = spawnSync(process.execPath, [BIN, 'report', run], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const url = `file://${join(run, 'report.html')}`;

    const png = join(dir, 'report.png');
    const shot = chromium(['--window-size=1280,1800', `--screenshot=${png}`, url]);
    assert.equal(shot.status, 0);
    const { w, h, pixels } = readPng(png);
    assert.deepEqual([w, h], [1280, 1800]);
    // not a blank page: many distinct byte values in the scanlines (curves, text, table)
    assert.ok(new Set(pixels.subarray(0, 2_000_000)).size > 64, 'the screenshot is (nearly) blank');
    if (process.env['GPG_RL_SCREENSHOT_DIR'])
      copyFileSync(png, join(process.env['GPG_RL_SCREENSHOT_DIR'], 'report.png'));

    // the page after its script ran: all curves drawn, the search box filtering by every word
    const all = chromium(['--dump-dom', url]).stdout;
    assert.match(all, /eval pass@1 \(eval_steps\)/);
    assert.match(all, /<th>gold answer<\/th><th>accuracy<\/th><th>format<\/th><th>reward<\/th><th>advantage<\/th>/);
    const dom = chromium(['--dump-dom', `${url}#q=20+42`]).stdout;
    assert.match(dom, /id="qn">1 of 3 shown</);
    const shown = [...dom.matchAll(/<tr( style="display: none;")?><td>(\d+)<\/td><td><pre>([^<]*)</g)].map((m) => [
      m[3],
      !m[1],
    ]);
    assert.deepEqual(shown, [
      ['9-4=', false],
      ['7*6=', true],
      ['12+30=', false],
    ]);
  },
);
