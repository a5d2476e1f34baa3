/**
 * @module cli/commands/eval
 * `gpg-rl eval --model DIR [--protocol default|lighteval|qwen-math] [--benchmarks aime24,math500,…]
 * [--samples k] [--temperature T] [--top-p P] [--top-k K] [--max-new-tokens N] [--limit N]
 * [--grader math-verify|qwen] [--system-prompt S] [--prompt-template T] [--chat-template on|off]
 * [--raw-template T] [--seed N] [--rollout-servers URL[,URL…] [--served-model-name NAME]] [--out DIR]
 * [--completions FILE [--allow-partial]]`: evaluates a model on the GPG paper's benchmarks by a
 * protocol (eval/protocols.ts: `lighteval` = the paper's 1.5B table, `qwen-math` = its 7B table;
 * each flag overrides that one field), or grades given completions (no model needed; every selected
 * problem needs one unless `--allow-partial`), and prints the table in the paper's layout; `--out`
 * writes results.jsonl and summary.json (with the protocol, its values and the overridden fields).
 * `--rollout-servers` generates on OpenAI-compatible completions servers that honour
 * `return_tokens_as_token_ids` (vLLM, SGLang, `gpg-rl serve`) instead of the local engine
 * (generate/remote.ts: prompts tokenized here and sent as token ids, token ids back, decoded and
 * graded here; the model folder gives the tokenizer, config and eos ids, its weights are not
 * loaded). Every input is checked before the first token is generated, so bad input is one line
 * on stderr, exit 1, and no output.
 */
import { specialTokens } from '../../model/special.ts';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from '../main.ts';
import { intFlag, numberFlag, parseFlags, usageText, type FlagSpec } from '../options.ts';
import { FileSystemError, UsageError } from '../../errors.ts';
import { ensureDir, fsErrorMessage, removeCreatedDir } from '../../io/fs.ts';
import { positionWarning } from '../../generate/generate.ts';
import { resolveModelPath } from '../../model/hub.ts';
import { CausalLM } from '../../model/decoder.ts';
import { TextTokenizer } from '../../model/tokenizer.ts';
import { readGenerationConfig, readModelConfig } from '../../model/config.ts';
import { BENCHMARK_IDS, parseBenchmarkList } from '../../eval/benchmarks.ts';
import { readCompletionsFile } from '../../eval/completions.ts';
import { evaluate, writeEvalOutputs, type EvalOptions } from '../../eval/evaluate.ts';
import { RolloutServers } from '../../generate/remote.ts';
import { PROTOCOL_NAMES, parseProtocolName } from '../../eval/protocols.ts';

const FLAGS: Record<string, FlagSpec> = {
  model: {
    type: 'string',
    help: 'model folder (config.json, *.safetensors, tokenizer.json) or a Hugging Face repo id in the local hub cache; optional with --completions',
  },
  protocol: {
    type: 'string',
    help: `${PROTOCOL_NAMES.join(', ')}: the harness whose prompt, sampling, length and grading to follow (default: default; lighteval = the GPG paper's 1.5B table, qwen-math = its 7B table); the flags below override single fields`,
  },
  benchmarks: {
    type: 'string',
    help: `comma-separated: ${BENCHMARK_IDS.join(',')} (default all; with --completions, those in the file)`,
  },
  samples: {
    type: 'string',
    help: "completions per problem, k (default: the protocol's, 1); pass@1 is averaged over them, pass@k unbiased",
  },
  temperature: { type: 'string', help: "sampling temperature; 0 = greedy (default: the protocol's)" },
  'top-p': { type: 'string', help: "nucleus sampling mass, 1 = off (default: the protocol's)" },
  'top-k': { type: 'string', help: "top-k sampling, 0 = off (default: the protocol's)" },
  'max-new-tokens': {
    type: 'string',
    help: "tokens per completion (default: the protocol's: 2048, lighteval 32768, qwen-math 2048)",
  },
  limit: { type: 'string', help: 'only the first N problems of each benchmark' },
  grader: {
    type: 'string',
    help: "math-verify (Math-Verify semantics) or qwen (Qwen2.5-Math evaluation semantics); default: the protocol's",
  },
  'system-prompt': { type: 'string', help: "system message, '' for none (default: the protocol's)" },
  'prompt-template': {
    type: 'string',
    help: "the user turn, with {prompt} where the problem goes, e.g. '{prompt} Put your final answer within \\boxed{}.' (taken as written: no escapes; default: the protocol's)",
  },
  'chat-template': {
    type: 'string',
    help: "on: the tokenizer's chat template (when it has one); off: --raw-template (default: the protocol's)",
  },
  'raw-template': {
    type: 'string',
    help: "prompt text without chat template, with {system} and {prompt} (default: the protocol's)",
  },
  seed: { type: 'string', help: "sampling seed (default: the protocol's)" },
  'batch-size': {
    type: 'string',
    help: 'sequences per generation batch (default 16); with --rollout-servers, most sequences per server request',
  },
  'rollout-servers': {
    type: 'string',
    help: 'comma-separated base URLs of OpenAI-compatible completions servers that return token ids (vLLM, SGLang, gpg-rl serve: return_tokens_as_token_ids) serving the --model weights, to generate there: prompts are tokenized here and sent as token ids, completions come back as token ids and are decoded and graded here; a failing server is retried, then dropped with a warning',
  },
  'served-model-name': {
    type: 'string',
    help: "with --rollout-servers: the model name requests use (the servers' --served-model-name; default: the base model GET /v1/models lists)",
  },
  'rollout-server-retries': {
    type: 'string',
    help: 'with --rollout-servers: retries of a failed request on the same server before it is dropped (default 2)',
  },
  'rollout-server-timeout-s': {
    type: 'string',
    help: 'with --rollout-servers: seconds one request (a round of --batch-size sequences) may take (default 600)',
  },
  'timeout-ms': { type: 'string', help: 'verifier time limit per comparison in ms (default 5000)' },
  out: {
    type: 'string',
    help: 'folder for results.jsonl and summary.json (refused if they exist, unless --overwrite)',
  },
  overwrite: { type: 'boolean', help: 'replace results.jsonl and summary.json already in --out' },
  completions: {
    type: 'string',
    help: 'JSONL of {"benchmark","index","completion"[,"sample"]} to grade instead of generating; every problem of the selected benchmarks (and --limit) needs one',
  },
  'allow-partial': {
    type: 'boolean',
    help: 'with --completions: score only the problems that have completions (coverage is shown in the table and summary.json)',
  },
};

export const command: Command = {
  summary: 'evaluate a model (or given completions) on AIME24, MATH-500, AMC23, Minerva, OlympiadBench',
  usage: usageText(
    'eval',
    '--model DIR [--protocol default|lighteval|qwen-math] [--benchmarks aime24,math500,...] [--samples k] [--temperature T] [--max-new-tokens N] [--limit N] [--rollout-servers URL[,URL...]] [--out DIR] | --completions FILE [--allow-partial]',
    FLAGS,
    "Prints pass@1 (averaged over k samples) and pass@k per benchmark in the GPG paper's table layout. Data: ../shared/data, or $GPG_RL_DATA_DIR.",
  ),
  async run(argv: string[]): Promise<number> {
    const p = parseFlags('eval', argv, FLAGS);
    if (p.positionals.length)
      throw new UsageError(`unexpected argument "${p.positionals[0]}" for \`gpg-rl eval\`; see \`gpg-rl eval --help\``);
    const str = (k: string): string | undefined => p.flags[k] as string | undefined;
    const modelArg = str('model');
    // a folder, or a Hugging Face repo id in the local hub cache (never downloaded)
    const modelDir = modelArg === undefined ? undefined : resolveModelPath(modelArg, { what: '--model' });
    const completionsFile = str('completions');
    if (!completionsFile && !modelDir)
      throw new UsageError('`gpg-rl eval` needs --model DIR (or --completions FILE to grade given completions)');
    const protocolText = str('protocol') ?? 'default';
    const protocol = parseProtocolName(protocolText);
    if (protocol === null)
      throw new UsageError(`--protocol: unknown protocol "${protocolText}"; known: ${PROTOCOL_NAMES.join(', ')}`);
    const grader = str('grader');
    if (grader !== undefined && grader !== 'math-verify' && grader !== 'qwen')
      throw new UsageError(`--grader must be math-verify or qwen (got ${grader})`);
    const opts: EvalOptions = {
      protocol,
      grader,
      limit: p.flags['limit'] !== undefined ? intFlag(p, 'limit', 0, 1) : undefined,
      systemPrompt: str('system-prompt'),
      promptTemplate: str('prompt-template'),
      rawTemplate: str('raw-template'),
      allowPartial: p.flags['allow-partial'] === true,
      timeoutMs: intFlag(p, 'timeout-ms', 5000, 1),
      onProgress: (m) => process.stderr.write(m + '\n'),
    };
    for (const [flag, v] of [
      ['prompt-template', opts.promptTemplate],
      ['raw-template', opts.rawTemplate],
    ] as const)
      if (v !== undefined && !v.includes('{prompt}'))
        throw new UsageError(
          `--${flag} must contain {prompt} where the problem goes (got ${JSON.stringify(v).slice(0, 60)})`,
        );
    const chat = str('chat-template');
    if (chat !== undefined) {
      if (chat !== 'on' && chat !== 'off') throw new UsageError(`--chat-template must be on or off (got ${chat})`);
      opts.useChatTemplate = chat === 'on';
    }
    if (opts.allowPartial && str('completions') === undefined)
      throw new UsageError(
        '--allow-partial only applies with --completions FILE (generation always covers every problem)',
      );
    if (str('benchmarks') !== undefined) opts.benchmarks = parseBenchmarkList(str('benchmarks')!);
    if (p.flags['samples'] !== undefined) opts.samples = intFlag(p, 'samples', 1, 1);
    // Sampling flags: given ones override the protocol's values, absent ones leave them.
    const sampling: Partial<EvalOptions> = {};
    if (p.flags['temperature'] !== undefined) {
      const t = numberFlag(p, 'temperature', 0);
      if (t < 0) throw new UsageError(`--temperature must be ≥ 0 (got ${t}); 0 means greedy`);
      sampling.temperature = t;
    }
    if (p.flags['top-p'] !== undefined) {
      const topP = numberFlag(p, 'top-p', 1);
      if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1] (got ${topP})`);
      sampling.topP = topP;
    }
    if (p.flags['top-k'] !== undefined) sampling.topK = intFlag(p, 'top-k', 0, 0);
    if (p.flags['max-new-tokens'] !== undefined) sampling.maxNewTokens = intFlag(p, 'max-new-tokens', 1, 1);
    if (p.flags['seed'] !== undefined) sampling.seed = intFlag(p, 'seed', 0, 0);
    const batchSize = intFlag(p, 'batch-size', 16, 1);
    const serverList = str('rollout-servers');
    let serverUrls: string[] | null = null;
    if (serverList !== undefined) {
      if (completionsFile !== undefined)
        throw new UsageError(
          '--rollout-servers generates completions; --completions grades given ones: pass one of them',
        );
      serverUrls = serverList.split(',').map((u) => u.trim());
      const badUrl = serverUrls.find((u) => !/^https?:\/\/[^\s/]+/.test(u));
      if (badUrl !== undefined)
        throw new UsageError(
          `--rollout-servers: each entry must be an http(s) URL such as http://host:8000 (got ${JSON.stringify(badUrl)})`,
        );
    } else
      for (const f of ['served-model-name', 'rollout-server-retries', 'rollout-server-timeout-s'])
        if (p.flags[f] !== undefined) throw new UsageError(`--${f} only applies with --rollout-servers URL[,URL…]`);
    const servedName = str('served-model-name');
    if (servedName === '') throw new UsageError('--served-model-name must not be empty');
    const retries = intFlag(p, 'rollout-server-retries', 2, 0);
    const timeoutS = numberFlag(p, 'rollout-server-timeout-s', 600);
    if (!(timeoutS > 0)) throw new UsageError(`--rollout-server-timeout-s must be > 0 (got ${timeoutS})`);
    const out = str('out');
    if (out !== undefined && existsSync(out) && !statSync(out).isDirectory())
      throw new UsageError(
        `--out ${out}: exists and is not a folder; give a folder for results.jsonl and summary.json`,
      );
    // before any generation: an existing result is not replaced silently, an unwritable folder fails now
    if (out !== undefined && !p.flags['overwrite']) {
      const there = ['results.jsonl', 'summary.json'].filter((f) => existsSync(join(out, f)));
      if (there.length)
        throw new UsageError(
          `--out ${out}: already holds ${there.join(' and ')}; pass --overwrite to replace them, or choose another folder`,
        );
    }
    let outCreated: string | null = null;

    let model: CausalLM | null = null;
    let tokenizer: TextTokenizer | null = null;
    if (modelDir !== undefined) {
      tokenizer = TextTokenizer.fromDir(modelDir);
      opts.modelName = modelDir === modelArg ? basename(resolve(modelDir)) : modelArg!;
    } else opts.modelName = basename(completionsFile!);
    try {
      // the output folder now, before any generation (removed again if the evaluation fails)
      if (out !== undefined) {
        outCreated = ensureDir(out, `--out ${out}`);
        try {
          accessSync(out, constants.W_OK);
        } catch (e) {
          throw new FileSystemError(`--out ${out}: ${fsErrorMessage(e, 'write to', out)}`, out);
        }
      }
      if (completionsFile !== undefined) {
        opts.completions = readCompletionsFile(completionsFile);
      } else {
        const cfg = readModelConfig(modelDir!);
        const gen = readGenerationConfig(modelDir!, cfg);
        Object.assign(opts, sampling, { batchSize });
        const special = specialTokens(cfg, tokenizer!, gen, modelDir!);
        opts.eosTokenIds = special.eosTokenIds;
        if (serverUrls !== null) {
          const servers = new RolloutServers(serverUrls, {
            retries,
            timeoutMs: timeoutS * 1000,
            log: (l) => process.stderr.write(`eval: ${l}\n`),
            model: servedName,
            name: '--rollout-servers',
            allDownHint: 'start them again, or drop --rollout-servers to generate locally',
          });
          await servers.connect();
          opts.remote = { servers, vocabSize: cfg.vocabSize };
        } else model = CausalLM.load(modelDir!);
        const warn =
          sampling.maxNewTokens !== undefined
            ? positionWarning(cfg.maxPositionEmbeddings, 0, sampling.maxNewTokens)
            : null;
        if (warn) process.stderr.write(`eval: warning: ${warn}\n`);
      }
      const result = await evaluate(model, tokenizer, opts);
      if (out !== undefined) {
        const files = writeEvalOutputs(out, result);
        process.stderr.write(`eval: wrote ${files.results} and ${files.summary}\n`);
      }
      process.stdout.write(result.table + '\n');
      const s = result.summary;
      const counts = Object.entries(s.benchmarks)
        .map(([id, b]) => `${id} ${b!.correct}/${b!.completions}`)
        .join(', ');
      const partial = s.coverage.graded < s.coverage.total ? `; coverage ${s.coverage.graded}/${s.coverage.total}` : '';
      const over = s.protocol_overrides.length ? ` (overridden: ${s.protocol_overrides.join(', ')})` : '';
      process.stderr.write(
        `eval: protocol ${s.protocol}${over}; ${counts}${partial}; verifier timeouts ${s.verifier.timeouts}, crashes ${s.verifier.crashes}; ${s.time_s.toFixed(1)} s\n`,
      );
      return 0;
    } catch (e) {
      if (out !== undefined) removeCreatedDir(outCreated, out);
      throw e;
    } finally {
      model?.dispose();
    }
  },
};
