/**
 * @module tensor/ops/logprobs
 * Token log-probs and entropy (native/cpu/logprobs.cc), the largest tensors of RL training:
 *
 *   tokenLogprobs(h [N,C], W [V,C], targets int32 [N]) -> logps [N] (grad to h and W), entropy [N] | null
 *     lp[n] = log_softmax(h[n] @ Wᵀ / temperature)[targets[n]], computed in row chunks: each chunk's
 *     logits [rows, V] come from one GEMM and are reduced at once (log-sum-exp saved); backward
 *     recomputes each chunk's logits, overwrites them IN PLACE with dz, then dh[rows] = dz @ W and
 *     dW += dzᵀ @ h[rows]. So no float32 [N, V] buffer ever exists, only [chunkRows, V]. When W is a
 *     parameter that already holds a gradient (an earlier micro-batch's), dW accumulates into that
 *     `.grad` in place (no second [V, C] buffer).
 *   logSoftmaxGather(logits [N,V], targets) -> [N]     tokenEntropy(logits [N,V]) -> [N]
 *     (standalone, explicit logits; used by generation and tests), each with backward.
 *
 * targets[n] < 0 means "ignore": lp = 0 and no gradient. Mixed precision follows linear():
 * under setAutocast(true) the GEMM operands are bf16 (accumulation and logits fp32).
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import { gemmInto, isAutocast, toBf16 } from './matmul.ts';
import * as check from '../check.ts';

function temperatureOf(opName: string, t: number | undefined): number {
  const T = t ?? 1;
  if (!(T > 0) || !Number.isFinite(T)) check.fail(opName, `temperature must be a positive finite number, got ${T}`);
  return T;
}

/**
 * Checks int32 targets [N]. Their values are checked against V by the kernel (which names the
 * first bad one), so no host copy of the targets is made here.
 */
function checkTargets(opName: string, targets: Tensor, N: number, _V: number): void {
  check.dtype(opName, 'targets', targets, 'int32');
  if (targets.shape.length !== 1 || targets.shape[0] !== N)
    check.fail(opName, `targets ${shapeStr(targets.shape)}: expected [${N}]`);
}

/**
 * Token log-probs of `targets` under logits h @ Wᵀ / temperature, chunked over rows.
 * h [N, C] float32, W [V, C] (lm_head or tied embedding), targets int32 [N] (< 0: ignored).
 * Returns logps [N] (gradient flows to h and W) and, with `entropy: true`, the entropy [N]
 * of softmax(logits / temperature) (no gradient).
 */
export function tokenLogprobs(
  h: Tensor,
  W: Tensor,
  targets: Tensor,
  opts?: { temperature?: number; chunkRows?: number; entropy?: boolean },
): { logps: Tensor; entropy: Tensor | null } {
  const name = 'tokenLogprobs';
  const be = check.backend(name, ['h', h], ['W', W], ['targets', targets]);
  check.dtype(name, 'h', h, 'float32');
  check.dtype(name, 'W', W, 'float32');
  check.rank(name, 'h', h, 2);
  check.rank(name, 'W', W, 2);
  const [N, C] = h.shape as [number, number];
  const [V, Cw] = W.shape as [number, number];
  if (C !== Cw)
    check.fail(
      name,
      `h ${shapeStr(h.shape)} vs W ${shapeStr(W.shape)}${W.name ? ` (${W.name})` : ''}: last dims differ`,
    );
  if (V === 0) check.fail(name, `W ${shapeStr(W.shape)} has an empty vocabulary`);
  checkTargets(name, targets, N, V);
  const temp = temperatureOf(name, opts?.temperature);
  const R = opts?.chunkRows ?? 128;
  if (!Number.isInteger(R) || R < 1) check.fail(name, `chunkRows must be a positive integer, got ${R}`);

  const logps = Tensor.empty([N], 'float32', false, be);
  const lse = Tensor.empty([N], 'float32', false, be);
  const entropy = opts?.entropy ? Tensor.empty([N], 'float32', false, be) : null;
  // mixed precision: bf16 GEMM operands; h is cast once per pass and shared by its row chunks,
  // the backend keeps W's bf16 copy until W is written
  const cast = isAutocast();
  const hOperand = () => (cast ? toBf16(h) : h);
  const rows0 = Math.min(R, N);
  {
    const hh = hOperand();
    const chunk = Tensor.empty([rows0, V], 'float32', false, be);
    for (let r0 = 0; r0 < N; r0 += R) {
      const rows = Math.min(R, N - r0);
      gemmInto(chunk, hh, W, { M: rows, N: V, K: C, transB: true, aOff: r0 * C, bf16: cast, weight: true });
      be.logprobsForward(
        logps.deviceBuffer,
        lse.deviceBuffer,
        entropy ? entropy.deviceBuffer : null,
        chunk.deviceBuffer,
        targets.deviceBuffer,
        rows,
        V,
        temp,
        r0,
      );
    }
    chunk.dispose();
    if (hh !== h) hh.dispose();
  }
  if (!needsGrad(h, W)) {
    lse.dispose();
    return { logps, entropy };
  }
  record(name, [h, W], logps, (dlp) => {
    check.live(name, ['h', h], ['W', W], ['targets', targets], ['lse', lse]);
    const dh = h.requiresGrad ? Tensor.empty(h.shape, 'float32', false, be) : null;
    // a leaf W with a gradient takes dW in place (leaf .grad +=, as the tape would)
    const into = W.requiresGrad && !W.node && W.grad && !W.grad.disposed ? W.grad : null;
    const dW = into ?? (W.requiresGrad ? Tensor.empty(W.shape, 'float32', false, be) : null);
    const buf = Tensor.empty([rows0, V], 'float32', false, be); // logits chunk, overwritten in place by its gradient dz
    const dzb = cast ? Tensor.empty([rows0, V], 'bfloat16', false, be) : null; // dz cast once for both products
    const hh = hOperand();
    for (let r0 = 0; r0 < N; r0 += R) {
      const rows = Math.min(R, N - r0);
      gemmInto(buf, hh, W, { M: rows, N: V, K: C, transB: true, aOff: r0 * C, bf16: cast, weight: true });
      be.logprobsBackward(
        buf.deviceBuffer,
        buf.deviceBuffer,
        dlp.deviceBuffer,
        lse.deviceBuffer,
        targets.deviceBuffer,
        rows,
        V,
        temp,
        r0,
      );
      if (dzb) be.castF32Bf16(dzb.deviceBuffer, buf.deviceBuffer, rows * V);
      const dz = dzb ?? buf;
      if (dh) gemmInto(dh, dz, W, { M: rows, N: C, K: V, cOff: r0 * C, bf16: cast, weight: true }); // dh[rows] = dz @ W
      if (dW)
        gemmInto(dW, dz, hh, {
          M: V,
          N: C,
          K: rows,
          transA: true,
          bOff: r0 * C,
          beta: r0 === 0 && !into ? 0 : 1,
          bf16: cast,
        }); // dW (+)= dzᵀ @ h[rows]
    }
    if (dW && !into && N === 0) be.fill(dW.deviceBuffer, 0, dW.size);
    buf.dispose();
    dzb?.dispose();
    if (hh !== h) hh.dispose();
    lse.dispose();
    return [dh, into ? null : dW];
  });
  return { logps, entropy };
}

function checkLogits(opName: string, logits: Tensor): [number, number] {
  check.dtype(opName, 'logits', logits, 'float32');
  check.rank(opName, 'logits', logits, 2);
  const [N, V] = logits.shape as [number, number];
  if (V === 0) check.fail(opName, `logits ${shapeStr(logits.shape)} has an empty vocabulary`);
  return [N, V];
}

/** log_softmax(logits / temperature)[n, targets[n]] for logits [N, V], targets int32 [N] (< 0: 0, no gradient). */
export function logSoftmaxGather(logits: Tensor, targets: Tensor, temperature?: number): Tensor {
  const name = 'logSoftmaxGather';
  const be = check.backend(name, ['logits', logits], ['targets', targets]);
  const [N, V] = checkLogits(name, logits);
  checkTargets(name, targets, N, V);
  const temp = temperatureOf(name, temperature);
  const lp = Tensor.empty([N], 'float32', false, be);
  const lse = Tensor.empty([N], 'float32', false, be);
  be.logprobsForward(lp.deviceBuffer, lse.deviceBuffer, null, logits.deviceBuffer, targets.deviceBuffer, N, V, temp, 0);
  if (!needsGrad(logits)) {
    lse.dispose();
    return lp;
  }
  return record(name, [logits], lp, (dlp) => {
    check.live(name, ['logits', logits], ['targets', targets]);
    const dx = Tensor.empty(logits.shape, 'float32', false, be);
    be.logprobsBackward(
      dx.deviceBuffer,
      logits.deviceBuffer,
      dlp.deviceBuffer,
      lse.deviceBuffer,
      targets.deviceBuffer,
      N,
      V,
      temp,
      0,
    );
    lse.dispose();
    return [dx];
  });
}

/** Entropy -Σ p log p of softmax(logits / temperature) per row, logits [N, V] -> [N]; backward gives dH/dlogits. */
export function tokenEntropy(logits: Tensor, temperature?: number): Tensor {
  const name = 'tokenEntropy';
  const be = check.backend(name, ['logits', logits]);
  const [N, V] = checkLogits(name, logits);
  const temp = temperatureOf(name, temperature);
  const ent = Tensor.empty([N], 'float32', false, be);
  const lse = Tensor.empty([N], 'float32', false, be);
  be.logprobsForward(null, lse.deviceBuffer, ent.deviceBuffer, logits.deviceBuffer, null, N, V, temp, 0);
  if (!needsGrad(logits)) {
    lse.dispose();
    return ent;
  }
  return record(name, [logits], ent, (dH) => {
    check.live(name, ['logits', logits]);
    const dx = Tensor.empty(logits.shape, 'float32', false, be);
    be.logprobsEntropyBackward(
      dx.deviceBuffer,
      logits.deviceBuffer,
      dH.deviceBuffer,
      lse.deviceBuffer,
      ent.deviceBuffer,
      N,
      V,
      temp,
      0,
    );
    lse.dispose();
    return [dx];
  });
}
