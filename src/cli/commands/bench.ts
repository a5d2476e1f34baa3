/**
 * @module cli/commands/bench
 * `gpg-rl bench [--shape FILE.json] [--batches 16,64,256] [--anchors [--anchors-root DIR]] [--json]
 * [--no-torch] [--no-step] [--threads N] [--no-cpu]`: engine speed vs the machine's peak and, with the
 * anchors, vs HF transformers and llama.cpp on the same weights in one run (DESIGN §7). Prints one
 * JSON object (last line).
 */
import type { Command } from '../main.ts';
import { intFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';
import { defaultBackend, setNumThreads } from '../../backend/index.ts';
import { UsageError } from '../../errors.ts';

const flags: Record<string, FlagSpec> = {
  shape: {
    type: 'string',
    help: 'shape file of HF config fields (default ../shared/bench/small-50m.json; bench/qwen2.5-0.5b.json is Qwen2.5-0.5B)',
  },
  batches: { type: 'string', help: 'decode batch sizes, multiples of the group size 8 (default 16,64,256)' },
  anchors: {
    type: 'boolean',
    help: 'also measure HF transformers and llama.cpp (the ../shared/anchors chroot) and print ratios',
  },
  'anchors-root': { type: 'string', help: 'the anchors chroot (default /opt/gpg-anchors); implies --anchors' },
  json: { type: 'boolean', help: 'print only the JSON object (no progress lines)' },
  'no-torch': { type: 'boolean', help: 'skip the plain-PyTorch reference (torch_reference.py)' },
  'no-step': { type: 'boolean', help: 'skip the fresh-process GPG step (step_peak_rss_gb)' },
  threads: { type: 'string', help: 'compute threads (default: all cores)' },
  'no-cpu': {
    type: 'boolean',
    help: 'with --device webgpu: skip the CPU backend measurements of the same run (the *_ratio_vs_cpu keys are null)',
  },
};

/** "16,64,256" → [16, 64, 256] (a usage error names the bad entry). */
export function parseBatches(v: string): number[] {
  return v.split(',').map((x) => {
    const n = Number(x.trim());
    if (x.trim() === '' || !Number.isInteger(n) || n < 1)
      throw new UsageError(`--batches: ${JSON.stringify(x)} is not a positive integer (e.g. --batches 16,64,256)`);
    return n;
  });
}

export const command: Command = {
  summary: 'measure GEMM, training, decoding and step memory vs the machine peak, HF transformers and llama.cpp',
  usage: usageText(
    'bench',
    '[--shape FILE.json] [--batches 16,64,256] [--anchors [--anchors-root DIR]] [--json] [--no-torch] [--no-step] [--threads N] [--no-cpu]',
    flags,
    'small-50m takes a few minutes on 2 cores; the Qwen2.5-0.5B shape with --anchors takes about an hour. Ratios are null without the references. With --device webgpu: the adapter, GEMM, train and decode tokens/s on WebGPU and their ratios to the CPU backend (default shape bench/webgpu-tiny.json, batches 16).',
  ),
  async run(argv) {
    const p = parseFlags('bench', argv, flags);
    const threads = intFlag(p, 'threads', 0, 0);
    if (threads > 0) setNumThreads(threads);
    const batches = typeof p.flags.batches === 'string' ? parseBatches(p.flags.batches) : undefined;
    const root = typeof p.flags['anchors-root'] === 'string' ? p.flags['anchors-root'] : undefined;
    const quiet = !!p.flags.json;
    // --device webgpu has set the backend; otherwise none is loaded yet (perf/bench.ts loads the CPU one)
    let webgpu = false;
    try {
      webgpu = defaultBackend().name === 'webgpu';
    } catch {
      webgpu = false;
    }
    if (webgpu) {
      // --device webgpu: the adapter, GEMM, train and decode tokens/s and the ratios to the CPU (perf/webgpu.ts)
      const { runWebGpuBench } = await import('../../perf/webgpu.ts');
      const res = await runWebGpuBench(
        (s) => {
          if (!quiet) process.stderr.write(`bench: ${s}\n`);
        },
        { shape: typeof p.flags.shape === 'string' ? p.flags.shape : undefined, batches, cpu: !p.flags['no-cpu'] },
      );
      process.stdout.write(JSON.stringify(res) + '\n');
      return 0;
    }
    const { runBench } = await import('../../perf/bench.ts');
    const res = await runBench(
      (s) => {
        if (!quiet) process.stderr.write(`bench: ${s}\n`);
      },
      {
        shape: typeof p.flags.shape === 'string' ? p.flags.shape : undefined,
        batches,
        skipTorch: !!p.flags['no-torch'],
        skipStep: !!p.flags['no-step'],
        anchors: p.flags.anchors || root ? { root } : null,
      },
    );
    process.stdout.write(JSON.stringify(res) + '\n');
    return 0;
  },
};
