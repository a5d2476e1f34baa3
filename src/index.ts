/**
 * @module gpg-rl
 * The public surface of gpg-rl (TypeScript sources, run with tsx or any TS-aware loader).
 */

// Training: GPG and the methods it is compared against (DESIGN §5)
export { train, type TrainOptions, type TrainResult } from './rl/trainer.ts';
export { loadRecipe, validateConfig } from './rl/recipe.ts';
export { describeConfig, type TrainConfig, type LossType } from './rl/config.ts';
export { computeLoss, type LossInput, type LossOutput } from './rl/algorithms/group-loss.ts';
export {
  algorithmFor,
  LOSS_TYPES,
  type Algorithm,
  type StepBatch,
  type MicroBatchLoss,
} from './rl/algorithms/index.ts';
export { advantages, rewardStats } from './rl/advantages.ts';
export { inverseAlpha, validGroups, collectWithThreshold, collectDynamic } from './rl/alpha.ts';
export { sftTrain, type SftPair, type SftOptions } from './sft/sft.ts';

// Rewards and the maths verifier
export {
  resolveRewards,
  scoreCompletions,
  builtinReward,
  type RewardFn,
  type RewardInput,
  type NamedReward,
} from './rewards/index.ts';
export { verify, VerifierPool } from './rewards/math-verify/index.ts';

// Data and evaluation
export { loadDataset, type PromptRow, type RowInput } from './data/dataset.ts';
export { evaluate } from './eval/evaluate.ts';

// Models, tokenizers, generation
export { CausalLM } from './model/decoder.ts';
// a value model (HF …ForTokenClassification, one label) and a critic over it (PPO's; any learned baseline)
export { ValueModel } from './model/value.ts';
export { Critic, valueLoss } from './rl/critic.ts';
export { readModelConfig, type ModelConfig } from './model/config.ts';
export { TextTokenizer } from './model/tokenizer.ts';
export { resolveModelPath, findInHubCache } from './model/hub.ts';
export { saveModelFolder, loadModelTensors } from './model/folder.ts';
export {
  applyLora,
  loadAdapter,
  saveAdapter,
  mergedWeights,
  mergeLoraFolder,
  loadBaseModel,
  LoraAdapter,
  type ApplyLoraOptions,
} from './model/lora.ts';
export { generate, type GenerateOptions, type GenerateResult } from './generate/generate.ts';

// Engine
export { Tensor, tidy } from './tensor/tensor.ts';
export { backward, noGrad } from './tensor/tape.ts';
export { setAutocast } from './tensor/ops/matmul.ts';
export { AdamW, clipGradNorm } from './tensor/optim.ts';
export {
  setNumThreads,
  getNumThreads,
  useBackend,
  availableBackends,
  backendNames,
  type Backend,
} from './backend/index.ts';

// Errors
export * from './errors.ts';
