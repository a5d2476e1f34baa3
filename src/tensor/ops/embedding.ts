/**
 * @module tensor/ops/embedding
 * Token embedding (HF embed_tokens): out[..., :] = weight[ids[...], :]. Backward is a deterministic
 * scatter-add into a fresh [V, C] gradient (repeated ids summed in token order, no float atomics).
 * An id outside [0, V) raises NativeOpError naming the id, its index and V.
 * Native kernels: native/kernels/embedding.cc.
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import { op } from '../../native/index.ts';
import * as check from '../check.ts';

/** weight [V, C] float32, ids int32 [...] → [..., C]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  const name = 'embedding';
  check.live(name, ['weight', weight], ['ids', ids]);
  check.dtype(name, 'weight', weight, 'float32');
  check.dtype(name, 'ids', ids, 'int32');
  if (weight.shape.length !== 2) check.fail(name, `weight${weight.name ? ` (${weight.name})` : ''} must be [V, C], got ${shapeStr(weight.shape)}`);
  const [V, C] = weight.shape as [number, number];
  const N = ids.size;
  const out = Tensor.empty([...ids.shape, C]);
  op('embedding_forward')(out.storage, weight.storage, ids.storage, N, V, C);
  if (!needsGrad(weight)) return out;
  return record(name, [weight], out, (dout) => {
    check.live(`${name} backward`, ['ids', ids]);
    const dw = Tensor.empty(weight.shape);
    op('embedding_backward')(dw.storage, dout.storage, ids.storage, N, V, C);
    return [dw];
  });
}
