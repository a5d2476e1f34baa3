/**
 * @module cli/commands/generate
 * `gpg-rl generate --model DIR --input IN.safetensors --max-new-tokens N [--greedy] --out OUT.safetensors`:
 * reads left-padded int32 `input_ids` / `attention_mask` [B, P] and writes `output_ids`
 * (int32 [B, N]; after an eos, filled with `pad_token_id`) and `output_logps` (float32 [B, N],
 * the sampling policy's log-probs, 0 after the end). Needs only config.json and the weights.
 */
import { specialTokens } from '../../model/special.ts';
import type { Command } from '../main.ts';
import { intFlag, numberFlag, parseFlags, requireFlag, usageText, type FlagSpec } from '../options.ts';
import { readBatch } from './_io.ts';
import { resolveModelPath } from '../../model/hub.ts';
import { CausalLM } from '../../model/decoder.ts';
import { readGenerationConfig } from '../../model/config.ts';
import { generate } from '../../generate/generate.ts';
import { Rng } from '../../data/rng.ts';
import { fromFloat32, fromInt32, writeSafetensorsFile } from '../../model/safetensors.ts';
import { UsageError } from '../../errors.ts';

const flags: Record<string, FlagSpec> = {
  model: {
    type: 'string',
    help: 'model folder (config.json + *.safetensors), or a Hugging Face repo id in the local hub cache',
  },
  input: { type: 'string', help: 'safetensors with left-padded int32 input_ids and attention_mask [B, P]' },
  out: { type: 'string', help: 'output safetensors (output_ids int32 [B, N], output_logps float32 [B, N])' },
  'max-new-tokens': { type: 'string', help: 'tokens to generate per row (N)' },
  greedy: { type: 'boolean', help: 'argmax decoding instead of sampling' },
  temperature: { type: 'string', help: 'sampling temperature (default: generation_config.json, else 1)' },
  'top-p': { type: 'string', help: 'nucleus sampling mass (default 1 = off)' },
  'top-k': { type: 'string', help: 'keep the k most likely tokens (default 0 = off)' },
  seed: { type: 'string', help: 'sampling seed (default 0)' },
};

export const command: Command = {
  summary: 'generate continuations of token-id prompts with the KV cache',
  usage: usageText(
    'generate',
    '--model DIR --input IN.safetensors --max-new-tokens N [--greedy] --out OUT.safetensors',
    flags,
  ),
  async run(argv) {
    const p = parseFlags('generate', argv, flags);
    const dir = resolveModelPath(requireFlag('generate', p, 'model'), { what: '--model' });
    const input = requireFlag('generate', p, 'input');
    const out = requireFlag('generate', p, 'out');
    if (p.flags['max-new-tokens'] === undefined) throw new UsageError('`gpg-rl generate` needs --max-new-tokens');
    const N = intFlag(p, 'max-new-tokens', 0, 1);
    const model = CausalLM.load(dir);
    const gen = readGenerationConfig(dir, model.cfg);
    const { ids, mask, B, T } = readBatch(input, model.cfg.vocabSize);
    const prompts: number[][] = [];
    for (let b = 0; b < B; b++) {
      const row: number[] = [];
      for (let t = 0; t < T; t++) if (mask[b * T + t]) row.push(ids[b * T + t]!);
      if (row.length === 0) throw new UsageError(`${input}: row ${b} has no real token (attention_mask all 0)`);
      prompts.push(row);
    }
    const { eosTokenIds, padTokenId: pad } = specialTokens(model.cfg, null, gen, dir, { requireEos: false });
    const res = generate(model, prompts, {
      maxNewTokens: N,
      greedy: !!p.flags.greedy,
      temperature: numberFlag(p, 'temperature', gen.temperature ?? 1),
      topP: numberFlag(p, 'top-p', 1),
      topK: intFlag(p, 'top-k', 0),
      eosTokenIds,
      rng: new Rng(intFlag(p, 'seed', 0)),
    });
    const outIds = new Int32Array(B * N).fill(pad);
    const outLp = new Float32Array(B * N);
    for (let b = 0; b < B; b++) {
      res.tokens[b]!.forEach((t, i) => (outIds[b * N + i] = t));
      res.logps[b]!.forEach((l, i) => (outLp[b * N + i] = l));
    }
    writeSafetensorsFile(out, {
      output_ids: fromInt32(outIds, [B, N]),
      output_logps: fromFloat32(outLp, [B, N], 'F32'),
    });
    return 0;
  },
};
