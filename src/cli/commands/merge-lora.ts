/**
 * @module cli/commands/merge-lora
 * `gpg-rl merge-lora --base BASE --adapter ADAPTER_DIR --out DIR`: folds a PEFT LoRA adapter into
 * its base model (W' = W + lora_alpha/r · B·A for every adapted layer) and writes a full Hugging
 * Face model folder (config.json, model.safetensors, generation_config.json, the base's tokenizer
 * files) that transformers, vLLM and `gpg-rl` load with no adapter support. Written atomically.
 */
import type { Command } from '../main.ts';
import { parseFlags, requireFlag, usageText, type FlagSpec } from '../options.ts';
import { mergeLoraFolder } from '../../model/lora.ts';
import { resolveModelPath } from '../../model/hub.ts';
import { FlagError } from '../../errors.ts';

const flags: Record<string, FlagSpec> = {
  base: {
    type: 'string',
    help: 'base model folder (config.json + *.safetensors) the adapter was trained on, or its Hugging Face repo id in the local hub cache',
  },
  adapter: { type: 'string', help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors)' },
  out: { type: 'string', help: 'output model folder (replaced atomically when it exists)' },
};

export const command: Command = {
  summary: 'fold a LoRA adapter into its base model: a full HF model folder',
  usage: usageText('merge-lora', '--base BASE --adapter ADAPTER_DIR --out DIR', flags),
  async run(argv) {
    const p = parseFlags('merge-lora', argv, flags);
    if (p.positionals.length)
      throw new FlagError(`\`gpg-rl merge-lora\` takes no positional arguments (got ${p.positionals.join(' ')})`);
    const base = resolveModelPath(requireFlag('merge-lora', p, 'base'), { what: '--base' });
    const adapter = requireFlag('merge-lora', p, 'adapter');
    const out = requireFlag('merge-lora', p, 'out');
    const r = mergeLoraFolder(base, adapter, out);
    process.stdout.write(`merged ${r.modules} adapted layers of ${base} with ${adapter} into ${out}\n`);
    return 0;
  },
};
