/**
 * @module tensor/ops/sample
 * Token sampling on the backend (native/cpu/sample.cc), one row per sequence:
 *   sampleTokens(logits [B, V], uniforms [B], opts) -> { ids int32 [B], logps [B] }
 * Warpers in Hugging Face order: temperature, top-k, top-p; greedy = argmax. `logps` is the sampling
 * policy's log_softmax(logits / T)[id] over the FULL vocabulary (DESIGN §4). Randomness comes from
 * the caller's uniforms in [0, 1), so generation is reproducible from a saved RNG state. No gradient.
 */
import { Tensor, shapeStr } from '../tensor.ts';
import * as check from '../check.ts';

export interface SampleOptions {
  temperature: number;
  /** 0 disables. */
  topK: number;
  /** 1 disables. */
  topP: number;
  greedy: boolean;
}

export function sampleTokens(logits: Tensor, uniforms: Tensor, o: SampleOptions): { ids: Tensor; logps: Tensor } {
  const name = 'sampleTokens';
  const be = check.backend(name, ['logits', logits], ['uniforms', uniforms]);
  check.dtype(name, 'logits', logits, 'float32');
  check.rank(name, 'logits', logits, 2);
  const [B, V] = logits.shape as [number, number];
  if (uniforms.size !== B) check.fail(name, `uniforms ${shapeStr(uniforms.shape)}: expected [${B}]`);
  if (!(o.temperature > 0)) check.fail(name, `temperature must be > 0, got ${o.temperature}`);
  const ids = Tensor.empty([B], 'int32', false, be);
  const logps = Tensor.empty([B], 'float32', false, be);
  be.sampleTokens(
    ids.deviceBuffer,
    logps.deviceBuffer,
    logits.deviceBuffer,
    uniforms.deviceBuffer,
    B,
    V,
    o.greedy ? 1 : o.temperature,
    o.topK,
    o.topP,
    o.greedy,
  );
  return { ids, logps };
}
