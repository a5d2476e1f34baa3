// Gradient norm for clipping (torch.nn.utils.clip_grad_norm_): sum of squares of a float32 tensor,
// accumulated in double. Deterministic regardless of the thread count: the tensor is cut into
// fixed-size blocks (kBlock elements, independent of threads), each block is summed in a fixed
// (vectorised) order into its own slot, and the slots are added in block order. The clip itself
// reuses `scale` (scale.cc). There is no backward: norms and clipping act on gradients, and
// nothing is saved. Legend: n = elements of the tensor.
#include <algorithm>
#include <vector>

#include "kernels.h"

namespace gpg {

namespace {
constexpr int64_t kBlock = 1 << 14;
}

// Σ_i x[i]^2 over x [n], in double
double gradnorm_sumsq(const float* x, int64_t n) {
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<size_t>(nb), 0.0);
#pragma omp parallel for schedule(static) if (n > 2 * kBlock)
  for (int64_t b = 0; b < nb; b++) {
    const float* xb = x + b * kBlock;
    const int64_t len = std::min(kBlock, n - b * kBlock);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; i++) s += static_cast<double>(xb[i]) * static_cast<double>(xb[i]);
    part[b] = s;
  }
  double total = 0;
  for (int64_t b = 0; b < nb; b++) total += part[b];
  return total;
}

}  // namespace gpg
