/**
 * @module tensor/ops/copy
 * Untracked row copies between tensors on one backend (no gradient):
 *   copyRows(dst, src, {rows, cols, dstStride, srcStride, dstOff, srcOff})
 *     dst[dstOff + r·dstStride + c] = src[srcOff + r·srcStride + c]   (KV-cache appends, last-position gathers)
 * Strides and offsets are in elements. The backend checks the ranges against the buffers.
 */
import type { Tensor } from '../tensor.ts';
import * as check from '../check.ts';

export interface RowCopy {
  rows: number;
  cols: number;
  dstStride: number;
  srcStride: number;
  dstOff?: number;
  srcOff?: number;
}

export function copyRows(dst: Tensor, src: Tensor, o: RowCopy): void {
  const name = 'copyRows';
  const be = check.backend(name, ['dst', dst], ['src', src]);
  check.dtype(name, 'dst', dst, 'float32');
  check.dtype(name, 'src', src, 'float32');
  const dOff = o.dstOff ?? 0;
  const sOff = o.srcOff ?? 0;
  if (o.rows > 0 && o.cols > 0) {
    if (dOff + (o.rows - 1) * o.dstStride + o.cols > dst.size)
      check.fail(
        name,
        `rows ${o.rows} × cols ${o.cols} at offset ${dOff}, stride ${o.dstStride} overrun dst of ${dst.size} elements`,
      );
    if (sOff + (o.rows - 1) * o.srcStride + o.cols > src.size)
      check.fail(
        name,
        `rows ${o.rows} × cols ${o.cols} at offset ${sOff}, stride ${o.srcStride} overrun src of ${src.size} elements`,
      );
  }
  be.copyRows(dst.deviceBuffer, src.deviceBuffer, o.rows, o.cols, o.dstStride, o.srcStride, dOff, sOff);
}
