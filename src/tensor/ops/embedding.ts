/**
 * @module tensor/ops/embedding
 * Token embedding (HF embed_tokens): out[..., :] = weight[ids[...], :]. Backward is a deterministic
 * scatter-add into a fresh [V, C] gradient (repeated ids summed in token order, no float atomics),
 * or, when the weight is a parameter that already holds a gradient (a tied lm_head's, an earlier
 * micro-batch's), into that `.grad` in place: no second [V, C] buffer at the step's peak.
 * An id outside [0, V) raises NativeOpError naming the id, its index and V.
 * Native kernels: native/cpu/embedding.cc.
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

/** weight [V, C] float32, ids int32 [...] → [..., C]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  const name = 'embedding';
  const be = check.backend(name, ['weight', weight], ['ids', ids]);
  check.dtype(name, 'weight', weight, 'float32');
  check.dtype(name, 'ids', ids, 'int32');
  if (weight.shape.length !== 2)
    check.fail(name, `weight${weight.name ? ` (${weight.name})` : ''} must be [V, C], got ${shapeStr(weight.shape)}`);
  const [V, C] = weight.shape as [number, number];
  const N = ids.size;
  const out = Tensor.empty([...ids.shape, C], 'float32', false, be);
  be.embeddingForward(out.deviceBuffer, weight.deviceBuffer, ids.deviceBuffer, N, V, C);
  if (!needsGrad(weight)) return out;
  return record(name, [weight], out, (dout) => {
    check.live(`${name} backward`, ['ids', ids]);
    const g = weight.grad;
    if (!weight.node && g && !g.disposed) {
      be.embeddingBackward(g.deviceBuffer, dout.deviceBuffer, ids.deviceBuffer, N, V, C, true); // leaf .grad += (as the tape would)
      return [null];
    }
    const dw = Tensor.empty(weight.shape, 'float32', false, be);
    be.embeddingBackward(dw.deviceBuffer, dout.deviceBuffer, ids.deviceBuffer, N, V, C, false);
    return [dw];
  });
}
