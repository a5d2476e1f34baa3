/**
 * @module model/special
 * The one eos / pad rule every generator and trainer uses (train, eval, sft, generate, demo):
 *   eosTokenIds  generation_config.json's eos ids, then config.json's, then the tokenizer's eos
 *                token (deduplicated, in that order): generation stops at any of them, as
 *                transformers' `generate` does with a list of eos ids;
 *   eosTokenId   the one written after a supervised completion: the tokenizer's eos token, else
 *                the first of eosTokenIds;
 *   padTokenId   the tokenizer's pad token, else generation_config's, else config.json's, else the
 *                first eos (padding is masked, so any id works; this keeps HF's choice).
 */
import type { GenerationDefaults, ModelConfig } from './config.ts';
import type { TextTokenizer } from './tokenizer.ts';
import { ConfigError } from '../errors.ts';

export interface SpecialTokens {
  eosTokenIds: number[];
  eosTokenId: number;
  padTokenId: number;
}

/**
 * Applies the rule above; `source` names the model in the error when no eos id exists at all.
 * `requireEos: false` (gpg-rl generate, which stops at --max-new-tokens) accepts a model without one.
 */
export function specialTokens(
  cfg: ModelConfig,
  tokenizer: TextTokenizer | null,
  generation: GenerationDefaults | null,
  source: string,
  opts: { requireEos?: boolean } = {},
): SpecialTokens {
  const tokEos = tokenizer?.eosTokenId ?? null;
  const eosTokenIds = [
    ...new Set([...(generation?.eosTokenIds ?? []), ...cfg.eosTokenIds, ...(tokEos !== null ? [tokEos] : [])]),
  ];
  if (eosTokenIds.length === 0 && opts.requireEos !== false) {
    throw new ConfigError(
      `${source}: no eos token id (config.json, generation_config.json or tokenizer_config.json); generation would never stop`,
    );
  }
  // (with requireEos false and no eos at all, generation runs to its token limit and pads with 0)
  const eosTokenId = tokEos ?? eosTokenIds[0] ?? -1;
  const padTokenId = tokenizer?.padTokenId ?? generation?.padTokenId ?? cfg.padTokenId ?? eosTokenIds[0] ?? 0;
  return { eosTokenIds, eosTokenId, padTokenId };
}
