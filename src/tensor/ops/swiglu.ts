/**
 * @module tensor/ops/swiglu
 * SwiGLU of the HF Qwen2/Llama MLP: out = silu(gate) · up, elementwise (gate = gate_proj(x),
 * up = up_proj(x), both [..., I]). Backward recomputes sigmoid(gate). Native: native/cpu/swiglu.cc.
 */
import { Tensor } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

/** gate, up: same shape, float32 → silu(gate) * up. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const name = 'swiglu';
  const be = check.backend(name, ['gate', gate], ['up', up]);
  check.dtype(name, 'gate', gate, 'float32');
  check.dtype(name, 'up', up, 'float32');
  check.sameShape(name, ['gate', gate], ['up', up]);
  const out = Tensor.empty(gate.shape, 'float32', false, be);
  be.swigluForward(out.deviceBuffer, gate.deviceBuffer, up.deviceBuffer, gate.size);
  if (!needsGrad(gate, up)) return out;
  return record(name, [gate, up], out, (dout) => {
    check.live(`${name} backward`, ['gate', gate], ['up', up]);
    const dgate = gate.requiresGrad ? Tensor.empty(gate.shape, 'float32', false, be) : null;
    const dup = up.requiresGrad ? Tensor.empty(up.shape, 'float32', false, be) : null;
    be.swigluBackward(
      dgate ? dgate.deviceBuffer : null,
      dup ? dup.deviceBuffer : null,
      dout.deviceBuffer,
      gate.deviceBuffer,
      up.deviceBuffer,
      gate.size,
    );
    return [dgate, dup];
  });
}
