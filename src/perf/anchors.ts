/**
 * @module perf/anchors
 * The anchors a user would pick instead of gpg-rl, measured in the same `gpg-rl bench --anchors`
 * run on the same weights: Hugging Face transformers' own Qwen2ForCausalLM (a GPG train step and
 * `generate`, scripts/anchors/hf_bench.py) and llama.cpp (`llama-batched-bench` on a bf16 GGUF
 * converted from the same folder by llama.cpp's `convert_hf_to_gguf.py`). Both run inside the
 * anchors chroot (../shared/anchors/setup.sh builds it; run.sh runs a command in it with the
 * project's parent folder bind-mounted), with PyTorch on the OpenMP OpenBLAS and
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for that process only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BenchError, REPO_ROOT, type AnchorFolder } from './fixtures.ts';

export const DEFAULT_RUN_SH = join(REPO_ROOT, '..', 'shared', 'anchors', 'run.sh');
const HF_SCRIPT = join(REPO_ROOT, 'scripts', 'anchors', 'hf_bench.py');
const CONVERTER = '/usr/share/doc/llama.cpp-tools/scripts/convert_hf_to_gguf.py';

export interface AnchorsOptions {
  /** The chroot (default: run.sh's own, /opt/gpg-anchors). */
  root?: string;
  /** run.sh (default ../shared/anchors/run.sh). */
  runSh?: string;
  threads: number;
  log?: (s: string) => void;
}

/** The environment of a reference process: ours minus the OpenBLAS core/cache overrides. */
export function referenceEnv(base: NodeJS.ProcessEnv, root?: string): NodeJS.ProcessEnv {
  const env = { ...base };
  delete env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_L2_SIZE'];
  if (root) env['ANCHORS_ROOT'] = root;
  return env;
}

/** Runs `cmd` inside the chroot; stdout, or a BenchError naming the command and its last stderr line. */
export function inChroot(o: AnchorsOptions, cmd: string[], what: string, timeoutMs = 3_600_000): string {
  const runSh = o.runSh ?? DEFAULT_RUN_SH;
  if (!existsSync(runSh))
    throw new BenchError(`--anchors: ${runSh} not found (the anchors come from ../shared/anchors)`);
  const env = referenceEnv(process.env, o.root);
  env['OMP_NUM_THREADS'] = String(o.threads);
  const r = spawnSync(runSh, cmd, { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw new BenchError(`--anchors: ${what}: ${r.error.message}`);
  if (r.status !== 0) {
    const last = (r.stderr || r.stdout || '').trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
    throw new BenchError(`--anchors: ${what} exited with ${r.status ?? r.signal}: ${last.slice(0, 300)}`);
  }
  return r.stdout;
}

/** Fails early, with the fix, when the chroot is not there. */
export function checkAnchors(o: AnchorsOptions): { torch: string; transformers: string; llamacpp: string } {
  const out = inChroot(
    o,
    [
      'sh',
      '-c',
      'python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__)" && dpkg-query -W -f="\\${Version}\\n" llama.cpp && test -x /usr/bin/llama-batched-bench',
    ],
    'anchors check (torch, transformers, llama-batched-bench; build them with ../shared/anchors/setup.sh)',
    120_000,
  );
  const [tv, llama] = out.trim().split('\n');
  const [torch, transformers] = (tv ?? '').split(' ');
  return { torch: torch ?? '?', transformers: transformers ?? '?', llamacpp: llama ?? '?' };
}

export interface HfResult {
  tokens_per_s: number;
  seconds: number;
  [k: string]: unknown;
}

function lastJson(stdout: string, what: string): HfResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as HfResult;
  } catch {
    throw new BenchError(`--anchors: ${what} printed no JSON line (last: ${JSON.stringify(line.slice(0, 200))})`);
  }
}

/** HF transformers: forward + backward of the GPG loss on B × T (fp32 or autocast bf16). */
export interface Timing {
  /** At most this many timed runs ... */
  maxReps: number;
  /** ... and no new one started after this many seconds. */
  budgetS: number;
}

const timingArgs = (t: Timing) => ['--repeats', String(t.maxReps), '--budget', String(t.budgetS)];

export function hfTrain(o: AnchorsOptions, dir: string, B: number, T: number, bf16: boolean, t: Timing): HfResult {
  const args = ['python3', HF_SCRIPT, '--model', dir, '--mode', 'train', '--batch', String(B), '--seq', String(T)];
  args.push('--dtype', bf16 ? 'bfloat16' : 'float32', '--threads', String(o.threads), ...timingArgs(t));
  return lastJson(inChroot(o, args, `hf_bench.py train${bf16 ? ' bf16' : ''}`), 'hf_bench.py train');
}

/** HF transformers `generate`: B sequences (B/G prompts × G), P prompt tokens, N new tokens. */
export function hfDecode(o: AnchorsOptions, dir: string, B: number, P: number, N: number, G: number, t: Timing) {
  const args = ['python3', HF_SCRIPT, '--model', dir, '--mode', 'decode', '--batch', String(B)];
  args.push('--prompt', String(P), '--new', String(N), '--group', String(G));
  args.push('--threads', String(o.threads), ...timingArgs(t));
  return lastJson(inChroot(o, args, `hf_bench.py decode batch ${B}`), 'hf_bench.py decode');
}

/** The bf16 GGUF of the folder (llama.cpp's own converter), made once per cached folder. */
export function ensureGguf(o: AnchorsOptions, f: AnchorFolder): string {
  if (existsSync(f.gguf)) return f.gguf;
  if (!f.hasTokenizer)
    throw new BenchError(
      `llama.cpp needs a tokenizer its converter accepts; the bench has Qwen's (151,669 ids), which does not fit this shape's vocabulary`,
    );
  const tmp = f.gguf + '.tmp';
  rmSync(tmp, { force: true });
  o.log?.('llama.cpp: converting the bench model to a bf16 GGUF (convert_hf_to_gguf.py) ...');
  inChroot(o, ['python3', CONVERTER, f.dir, '--outtype', 'bf16', '--outfile', tmp], 'convert_hf_to_gguf.py');
  renameSync(tmp, f.gguf);
  return f.gguf;
}

/** One row of llama-batched-bench's output. */
export interface BatchedBenchRow {
  pp: number;
  tg: number;
  pl: number;
  /** Total seconds (prefill + generation). */
  t: number;
}

/**
 * Parses `llama-batched-bench` output: `--output-format jsonl` lines ({"pp", "tg", "pl", "t", …})
 * or the markdown table (| PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |).
 */
export function parseBatchedBench(out: string): BatchedBenchRow[] {
  const rows: BatchedBenchRow[] = [];
  for (const line of out.split('\n')) {
    const s = line.trim();
    if (s.startsWith('{')) {
      try {
        const j = JSON.parse(s) as Record<string, unknown>;
        if (typeof j['pl'] === 'number' && typeof j['t'] === 'number')
          rows.push({ pp: Number(j['pp']), tg: Number(j['tg']), pl: j['pl'], t: j['t'] });
      } catch {
        // not a result line
      }
      continue;
    }
    const cells = s.split('|').map((c) => c.trim());
    // | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
    if (cells.length >= 12 && /^\d+$/.test(cells[1]!) && /^\d+$/.test(cells[3]!))
      rows.push({ pp: Number(cells[1]), tg: Number(cells[2]), pl: Number(cells[3]), t: Number(cells[9]) });
  }
  return rows;
}

/**
 * llama.cpp's decode figure per batch: generated tokens over its total time (prefill + decode),
 * B·TG / T of `llama-batched-bench -npp P -ntg N -npl B1,B2,…` (no shared prompt, as documented).
 */
export function llamaDecode(
  o: AnchorsOptions,
  gguf: string,
  batches: number[],
  P: number,
  N: number,
): { byBatch: Record<string, number>; rows: BatchedBenchRow[] } {
  const ctx = Math.max(...batches) * (P + N);
  const args = ['llama-batched-bench', '-m', gguf, '-c', String(ctx), '-npp', String(P), '-ntg', String(N)];
  args.push('-npl', batches.join(','), '-t', String(o.threads), '--output-format', 'jsonl');
  const out = inChroot(o, args, 'llama-batched-bench');
  const rows = parseBatchedBench(out);
  const byBatch = llamaTokensPerS(rows, batches, P, N);
  return { byBatch, rows };
}

/** Generated tokens per second by batch, B·TG / T, from llama-batched-bench's rows. */
export function llamaTokensPerS(
  rows: BatchedBenchRow[],
  batches: number[],
  P: number,
  N: number,
): Record<string, number> {
  const byBatch: Record<string, number> = {};
  for (const B of batches) {
    const r = rows.find((x) => x.pl === B && x.pp === P && x.tg === N);
    if (!r) throw new BenchError(`llama-batched-bench printed no row for batch ${B} (npp ${P}, ntg ${N})`);
    if (!(r.t > 0)) throw new BenchError(`llama-batched-bench: batch ${B} has total time ${r.t} s`);
    byBatch[String(B)] = (B * N) / r.t;
  }
  return byBatch;
}
