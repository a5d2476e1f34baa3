/**
 * @module cli/commands/logprobs
 * `gpg-rl logprobs --model DIR --input IN.safetensors --out OUT.safetensors`: reads `input_ids`
 * and `attention_mask` (int32 [B, T], left and/or right padding) and writes `token_logps`
 * (float32 [B, T-1]: log-prob of ids[t] given the prefix; 0 where the target or its context is
 * padding), DESIGN §4. Needs only config.json and the weights. `--adapter DIR` applies a PEFT
 * LoRA adapter (adapter_config.json + adapter_model.safetensors) on top of the model.
 */
import type { Command } from '../main.ts';
import { parseFlags, requireFlag, usageText, type FlagSpec } from '../options.ts';
import { readBatch } from './_io.ts';
import { CausalLM, expandRows } from '../../model/decoder.ts';
import { resolveModelPath } from '../../model/hub.ts';
import { loadAdapter } from '../../model/lora.ts';
import { Tensor, tidy } from '../../tensor/tensor.ts';
import { noGrad } from '../../tensor/tape.ts';
import { fromFloat32, writeSafetensorsFile } from '../../model/safetensors.ts';

const flags: Record<string, FlagSpec> = {
  model: {
    type: 'string',
    help: 'model folder (config.json + *.safetensors), or a Hugging Face repo id in the local hub cache',
  },
  adapter: { type: 'string', help: 'PEFT LoRA adapter folder applied on top of --model (optional)' },
  input: { type: 'string', help: 'safetensors with int32 input_ids and attention_mask [B, T]' },
  out: { type: 'string', help: 'output safetensors (token_logps float32 [B, T-1])' },
  temperature: { type: 'string', help: 'divide logits by this before log_softmax (default 1)' },
};

export const command: Command = {
  summary: 'token log-probs of given sequences (checks the model layer against other tools)',
  usage: usageText(
    'logprobs',
    '--model DIR [--adapter ADAPTER_DIR] --input IN.safetensors --out OUT.safetensors',
    flags,
  ),
  async run(argv) {
    const p = parseFlags('logprobs', argv, flags);
    const dir = resolveModelPath(requireFlag('logprobs', p, 'model'), { what: '--model' });
    const input = requireFlag('logprobs', p, 'input');
    const out = requireFlag('logprobs', p, 'out');
    const temperature = p.flags.temperature === undefined ? 1 : Number(p.flags.temperature);
    const model = CausalLM.load(dir);
    if (p.flags.adapter !== undefined) loadAdapter(model, String(p.flags.adapter));
    const { ids, mask, B, T } = readBatch(input, model.cfg.vocabSize);
    const dense = noGrad(() =>
      tidy(() => {
        const r = model.tokenLogps({ ids, mask, B, T }, { temperature });
        return expandRows(r.logps.toFloat32(), r.index, B * (T - 1));
      }),
    );
    writeSafetensorsFile(out, { token_logps: fromFloat32(dense, [B, T - 1], 'F32') });
    return 0;
  },
};
