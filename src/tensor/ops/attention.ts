/**
 * @module tensor/ops/attention
 * Causal grouped-query attention with key-padding masks (Hugging Face eager attention semantics
 * for Qwen2 / Llama / Qwen3, DESIGN §4), computed flash style by native/cpu/attention.cc:
 * the T×T score matrix is never materialised; forward saves only the log-sum-exp [B, H, T] and
 * backward recomputes the scores tile by tile (FlashAttention-2, arXiv:2307.08691).
 *
 *   attention(q [B,T,H,D], k/v [B,T,Hkv,D], keyMask int32 [B,T] | null) -> [B,T,H,D]   (training / prefill)
 *   attentionCached(q [B,Tq,H,D], kCache/vCache [B,Tmax,Hkv,D], keyMask [B,Tmax], Tk) -> [B,Tq,H,D]  (decode)
 *
 * Query t attends keys s <= t whose keyMask is 1; head h reads kv head h / (H / Hkv). A query row
 * with no attendable key (a left-padding position) outputs 0 and gets no gradient (HF gives it
 * uniform attention, an artefact never compared).
 */
import { Tensor, shapeStr } from '../tensor.ts';
import { needsGrad, record } from '../tape.ts';
import * as check from '../check.ts';

function scaleOf(opName: string, D: number, opts?: { scale?: number }): number {
  const s = opts?.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(s)) check.fail(opName, `scale must be a finite number, got ${s}`);
  return s;
}

/** Checks q [B,Tq,H,D] against k/v [B,Tkv,Hkv,D] and returns the dims. */
function dims(
  opName: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
): { B: number; Tq: number; H: number; D: number; Tkv: number; Hkv: number } {
  for (const [n, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    check.dtype(opName, n, t, 'float32');
    check.rank(opName, n, t, 4);
  }
  check.sameShape(opName, ['k', k], ['v', v]);
  const [B, Tq, H, D] = q.shape as [number, number, number, number];
  const [Bk, Tkv, Hkv, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D)
    check.fail(opName, `q ${shapeStr(q.shape)} vs k ${shapeStr(k.shape)}: batch or head dim differ`);
  if (Hkv === 0 || H % Hkv !== 0)
    check.fail(
      opName,
      `q ${shapeStr(q.shape)} vs k ${shapeStr(k.shape)}: ${H} query heads are not a multiple of ${Hkv} kv heads`,
    );
  return { B, Tq, H, D, Tkv, Hkv };
}

function checkMask(opName: string, mask: Tensor, B: number, T: number): void {
  check.dtype(opName, 'keyMask', mask, 'int32');
  if (mask.shape.length !== 2 || mask.shape[0] !== B || mask.shape[1] !== T)
    check.fail(opName, `keyMask ${shapeStr(mask.shape)}: expected [${B},${T}]`);
}

/**
 * Training / prefill attention. q [B, T, H, D], k/v [B, T, Hkv, D], keyMask int32 [B, T] (1 = real
 * token, 0 = padding) or null (all real). Returns [B, T, H, D]; gradients flow to q, k and v.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null, opts?: { scale?: number }): Tensor {
  const name = 'attention';
  const be = check.backend(name, ['q', q], ['k', k], ['v', v], ['keyMask', keyMask]);
  const { B, Tq: T, H, D, Tkv, Hkv } = dims(name, q, k, v);
  if (Tkv !== T) check.fail(name, `q ${shapeStr(q.shape)} vs k ${shapeStr(k.shape)}: sequence lengths differ`);
  if (keyMask) checkMask(name, keyMask, B, T);
  const scale = scaleOf(name, D, opts);
  const out = Tensor.empty(q.shape, 'float32', false, be);
  const grad = needsGrad(q, k, v);
  const lse = grad ? Tensor.empty([B, H, T], 'float32', false, be) : null;
  be.attentionForward(
    out.deviceBuffer,
    lse ? lse.deviceBuffer : null,
    q.deviceBuffer,
    k.deviceBuffer,
    v.deviceBuffer,
    keyMask ? keyMask.deviceBuffer : null,
    B,
    T,
    T,
    T,
    H,
    Hkv,
    D,
    scale,
  );
  if (!grad || !lse) return out;
  return record(name, [q, k, v], out, (dout) => {
    check.live(name, ['q', q], ['k', k], ['v', v], ['keyMask', keyMask], ['out', out], ['lse', lse]);
    const dq = Tensor.empty(q.shape, 'float32', false, be);
    const dk = Tensor.empty(k.shape, 'float32', false, be);
    const dv = Tensor.empty(v.shape, 'float32', false, be);
    be.attentionBackward(
      dq.deviceBuffer,
      dk.deviceBuffer,
      dv.deviceBuffer,
      dout.deviceBuffer,
      q.deviceBuffer,
      k.deviceBuffer,
      v.deviceBuffer,
      out.deviceBuffer,
      lse.deviceBuffer,
      keyMask ? keyMask.deviceBuffer : null,
      B,
      T,
      H,
      Hkv,
      D,
      scale,
    );
    return [dq, dk, dv];
  });
}

/**
 * Decoding with a KV cache (no gradient). q [B, Tq, H, D] are the last Tq positions of a sequence
 * of Tk tokens whose keys/values fill the first Tk rows of kCache/vCache [B, Tmax, Hkv, D];
 * keyMask int32 [B, Tmax] (only the first Tk columns are read). Query i sits at position
 * Tk - Tq + i and attends keys s <= Tk - Tq + i with mask 1. Returns [B, Tq, H, D].
 */
export function attentionCached(
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  keyMask: Tensor,
  Tk: number,
  opts?: { scale?: number },
): Tensor {
  const name = 'attentionCached';
  const be = check.backend(name, ['q', q], ['kCache', kCache], ['vCache', vCache], ['keyMask', keyMask]);
  const { B, Tq, H, D, Tkv: Tmax, Hkv } = dims(name, q, kCache, vCache);
  checkMask(name, keyMask, B, Tmax);
  if (!Number.isInteger(Tk) || Tk < Tq || Tk > Tmax)
    check.fail(
      name,
      `Tk = ${Tk} must be an integer with Tq (${Tq}) <= Tk <= Tmax (${Tmax}); q ${shapeStr(q.shape)}, kCache ${shapeStr(kCache.shape)}`,
    );
  const out = Tensor.empty(q.shape, 'float32', false, be);
  be.attentionForward(
    out.deviceBuffer,
    null,
    q.deviceBuffer,
    kCache.deviceBuffer,
    vCache.deviceBuffer,
    keyMask.deviceBuffer,
    B,
    Tq,
    Tk,
    Tmax,
    H,
    Hkv,
    D,
    scaleOf(name, D, opts),
  );
  return out;
}
