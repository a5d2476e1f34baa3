/**
 * @module tensor/ops/paged
 * The paged KV cache of the rollout engine (vLLM's PagedAttention layout), computed by
 * native/cpu/paged.cc; no gradient (decoding only):
 *   pagedKvWrite(kPool, vPool, k [n, Hkv, D], v, slots int32 [n])      pool rows at slots = k / v
 *   pagedAttention(q [B, Tq, H, D], kPool, vPool [S, Hkv, D], table int32 [B, maxBlocks], ctx int32 [B],
 *                  blockSize) -> [B, Tq, H, D]
 * A pool holds S = numBlocks · blockSize slots; row b's key s lives at slot
 * table[b, s / blockSize] · blockSize + s % blockSize. Row b has ctx[b] keys; its query i sits at
 * position ctx[b] − Tq + i and attends keys 0 … that position (causal, GQA: head h reads kv head
 * h / (H / Hkv)). Rows never pad: each has its own length, and rows may share blocks (a group's
 * prompt).
 */
import { Tensor, shapeStr } from '../tensor.ts';
import * as check from '../check.ts';

function poolDims(name: string, kPool: Tensor, vPool: Tensor): [number, number, number] {
  check.dtype(name, 'kPool', kPool, 'float32');
  check.rank(name, 'kPool', kPool, 3);
  check.sameShape(name, ['kPool', kPool], ['vPool', vPool]);
  return kPool.shape as [number, number, number];
}

/** Writes n key/value rows [n, Hkv, D] into the pools at `slots` (int32 [n]). */
export function pagedKvWrite(kPool: Tensor, vPool: Tensor, k: Tensor, v: Tensor, slots: Tensor): void {
  const name = 'pagedKvWrite';
  const be = check.backend(name, ['kPool', kPool], ['vPool', vPool], ['k', k], ['v', v], ['slots', slots]);
  const [S, Hkv, D] = poolDims(name, kPool, vPool);
  check.dtype(name, 'k', k, 'float32');
  check.sameShape(name, ['k', k], ['v', v]);
  check.dtype(name, 'slots', slots, 'int32');
  const n = slots.size;
  if (k.size !== n * Hkv * D)
    check.fail(name, `k ${shapeStr(k.shape)} must hold ${n} rows of [${Hkv}, ${D}] (slots ${shapeStr(slots.shape)})`);
  be.pagedKvWrite(
    kPool.deviceBuffer,
    vPool.deviceBuffer,
    k.deviceBuffer,
    v.deviceBuffer,
    slots.deviceBuffer,
    n,
    S,
    Hkv * D,
  );
}

/** Attention of q [B, Tq, H, D] over each row's own paged keys; see the module comment. */
export function pagedAttention(
  q: Tensor,
  kPool: Tensor,
  vPool: Tensor,
  table: Tensor,
  ctx: Tensor,
  blockSize: number,
  opts?: { scale?: number },
): Tensor {
  const name = 'pagedAttention';
  const be = check.backend(name, ['q', q], ['kPool', kPool], ['vPool', vPool], ['table', table], ['ctx', ctx]);
  const [S, Hkv, D] = poolDims(name, kPool, vPool);
  check.dtype(name, 'q', q, 'float32');
  check.rank(name, 'q', q, 4);
  const [B, Tq, H, Dq] = q.shape as [number, number, number, number];
  if (Dq !== D) check.fail(name, `q ${shapeStr(q.shape)} vs kPool ${shapeStr(kPool.shape)}: head dims differ`);
  if (H % Hkv !== 0) check.fail(name, `${H} query heads are not a multiple of ${Hkv} kv heads`);
  check.dtype(name, 'table', table, 'int32');
  check.rank(name, 'table', table, 2);
  check.dtype(name, 'ctx', ctx, 'int32');
  if (table.shape[0] !== B || ctx.size !== B)
    check.fail(
      name,
      `table ${shapeStr(table.shape)} and ctx ${shapeStr(ctx.shape)} must have ${B} rows (q ${shapeStr(q.shape)})`,
    );
  if (!Number.isInteger(blockSize) || blockSize < 1 || S % blockSize !== 0)
    check.fail(name, `blockSize ${blockSize} must be a positive integer dividing the pool's ${S} slots`);
  const scale = opts?.scale ?? 1 / Math.sqrt(D);
  const out = Tensor.empty(q.shape, 'float32', false, be);
  be.pagedAttentionForward(
    out.deviceBuffer,
    q.deviceBuffer,
    kPool.deviceBuffer,
    vPool.deviceBuffer,
    table.deviceBuffer,
    ctx.deviceBuffer,
    B,
    Tq,
    H,
    Hkv,
    D,
    blockSize,
    table.shape[1]!,
    S / blockSize,
    scale,
  );
  return out;
}
