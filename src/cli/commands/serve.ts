/**
 * @module cli/commands/serve
 * `gpg-rl serve MODEL_DIR [--port N] [--host H]`: an OpenAI-compatible completions server on the
 * rollout engine (src/serve/server.ts), with vLLM's and SGLang's weight-reload endpoints, so CPU
 * machines can serve `rollout_servers`. Runs until SIGINT / SIGTERM.
 */
import type { Command } from '../main.ts';
import { intFlag, numberFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';
import { resolveModelPath } from '../../model/hub.ts';
import { CompletionServer } from '../../serve/server.ts';
import { UsageError } from '../../errors.ts';

const flags: Record<string, FlagSpec> = {
  port: { type: 'string', help: 'TCP port (default 8000; 0 = any free port, printed at start)' },
  host: { type: 'string', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)' },
  'served-model-name': {
    type: 'string',
    help: 'the model id in /v1/models and requests (default: MODEL_DIR as given)',
  },
  'generation-dtype': { type: 'string', help: 'weights the engine reads: float32 (default) or bfloat16' },
  'kv-cache-gb': {
    type: 'string',
    help: 'KV-cache pool of the engine in GB (default 2), shared by every running request',
  },
  'max-num-seqs': { type: 'string', help: 'most sequences decoded together (default 256)' },
};

export const command: Command = {
  summary: 'OpenAI-compatible completions server on the rollout engine (rollout_servers)',
  usage: usageText(
    'serve',
    'MODEL_DIR [--port N] [--host H]',
    flags,
    'Endpoints: GET /v1/models, GET /health, POST /v1/completions (prompt text or token ids, n, max_tokens, temperature, top_p, top_k, seed, stop, logprobs, return_tokens_as_token_ids), POST /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM), POST /update_weights_from_disk (SGLang). Continuous batching across requests (a request joins the running batch at the next decode step). One access-log line per request on stderr.',
  ),
  async run(argv) {
    const p = parseFlags('serve', argv, flags);
    if (p.positionals.length !== 1) throw new UsageError('`gpg-rl serve` needs exactly one MODEL_DIR');
    const dir = resolveModelPath(p.positionals[0]!, { what: 'MODEL_DIR' });
    const dtype = p.flags['generation-dtype'] ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'bfloat16')
      throw new UsageError(`--generation-dtype must be float32 or bfloat16 (got ${String(dtype)})`);
    const server = new CompletionServer({
      modelDir: dir,
      servedModelName:
        typeof p.flags['served-model-name'] === 'string' ? p.flags['served-model-name'] : p.positionals[0]!,
      host: typeof p.flags.host === 'string' ? p.flags.host : '127.0.0.1',
      port: intFlag(p, 'port', 8000, 0),
      weightsDtype: dtype,
      kvCacheBytes: numberFlag(p, 'kv-cache-gb', 2) * 1e9,
      maxNumSeqs: intFlag(p, 'max-num-seqs', 256, 1),
    });
    const url = await server.start();
    process.stderr.write(`gpg-rl serve: listening on ${url} (model ${server.modelName})\n`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        process.stderr.write(`gpg-rl serve: ${sig}, shutting down\n`);
        void server.close().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    return 0;
  },
};
