/**
 * @module demo/heldout
 * Greedy held-out accuracy of a model on built-in arithmetic problems, graded by the project's
 * verifier (worker pool): the number the demo and the ablation report before and after training.
 */
import { specialTokens } from '../model/special.ts';
import type { CausalLM } from '../model/decoder.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { generate } from '../generate/generate.ts';
import type { ArithProblem } from '../data/arith.ts';
import { VerifierPool } from '../rewards/math-verify/pool.ts';

export interface HeldoutResult {
  accuracy: number;
  correct: number;
  total: number;
  samples: Array<{ prompt: string; completion: string; answer: string; correct: boolean }>;
}

export async function heldoutAccuracy(
  model: CausalLM,
  tokenizer: TextTokenizer,
  problems: ArithProblem[],
  o: { maxNewTokens?: number; batchSize?: number; pool?: VerifierPool } = {},
): Promise<HeldoutResult> {
  const { eosTokenIds } = specialTokens(model.cfg, tokenizer, null, 'held-out model');
  const prompts = problems.map((p) => tokenizer.encode(p.prompt, { addSpecialTokens: false }));
  const gen = generate(model, prompts, {
    maxNewTokens: o.maxNewTokens ?? 48,
    greedy: true,
    eosTokenIds,
    batchSize: o.batchSize ?? 256,
  });
  const texts = gen.tokens.map((t) => tokenizer.decode(t, { skipSpecialTokens: true, dropUnknown: true }));
  const pool = o.pool ?? new VerifierPool({ timeoutMs: 2000 });
  try {
    const res = await pool.verifyMany(problems.map((p, i) => ({ gold: p.answer, pred: texts[i]! })));
    const correct = res.filter((r) => r.equal).length;
    return {
      accuracy: correct / problems.length,
      correct,
      total: problems.length,
      samples: problems
        .slice(0, 8)
        .map((p, i) => ({ prompt: p.prompt, completion: texts[i]!, answer: p.answer, correct: res[i]!.equal })),
    };
  } finally {
    if (!o.pool) await pool.close();
  }
}
