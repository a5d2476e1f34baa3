// Copies: a contiguous range of any dtype (Tensor.clone / copyFrom, slices), and a 2-D
// block of float32 rows between two row strides (KV-cache appends, last-token gathers).
// Legend: nbytes = bytes; rows × cols = the block, dstStride / srcStride = elements between
// rows. Pointers arrive already offset to the first element. "=" into dst; nothing is saved; no
// backward kernel (the TypeScript ops that copy route gradients themselves).
#include <omp.h>

#include <cstring>

#include "kernels.h"

namespace gpg {

// dst[0..nbytes) = src[0..nbytes) (the ranges may overlap)
void copy(void* dst, const void* src, int64_t nbytes) { std::memmove(dst, src, static_cast<size_t>(nbytes)); }

// dst[r·dstStride + c] = src[r·srcStride + c] for r < rows, c < cols
void copy_rows(float* dst, const float* src, int64_t rows, int64_t cols, int64_t dstStride, int64_t srcStride) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; r++) std::memcpy(dst + r * dstStride, src + r * srcStride, cols * 4);
}

}  // namespace gpg
