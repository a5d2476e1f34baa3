// RMSNorm as in Hugging Face Qwen2RMSNorm / LlamaRMSNorm (modeling_qwen2.py):
//   rstd = rsqrt(mean(x^2) + eps)   (per row, float32 result; the mean is accumulated in double)
//   y    = w * (x * rstd)            (x * rstd rounded to float first, as HF does before `weight *`)
// Also used for Qwen3's per-head q_norm / k_norm (rows = B*T*H, C = D).
//
// Legend: N = rows (B*T, or B*T*H), C = channels normalised over.
// Forward saves rstd [N] for backward. Backward writes fresh gradients with "=" (the TS tape
// accumulates). With xhat = x * rstd and g = w * dy:
//   dx = rstd * (g - xhat * mean(g * xhat))      dw = sum over rows of dy * xhat
// dw is reduced deterministically: rows are cut into chunks whose count depends only on N (not on
// the thread count); each chunk sums its rows into its own double partial, partials are then added
// in chunk order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"

namespace gpg {

// y [N,C], rstd [N] (saved) from x [N,C], w [C]; eps (rounded to float32 as HF's config value is)
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t C, double eps) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
  for (int64_t r = 0; r < N; r++) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += static_cast<double>(xr[c]) * xr[c];
    const float var = static_cast<float>(ss / static_cast<double>(C));
    const float rs =
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + static_cast<double>(static_cast<float>(eps))));
    rstd[r] = rs;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      const float xh = xr[c] * rs;
      yr[c] = w[c] * xh;
    }
  }
}

// dx [N,C] | null, dw [C] | null ("=") from dy [N,C], x [N,C], w [C], rstd [N]
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      int64_t N, int64_t C) {
  if (dx) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t r = 0; r < N; r++) {
      const float* xr = x + r * C;
      const float* dyr = dy + r * C;
      float* dxr = dx + r * C;
      const float rs = rstd[r];
      double dot = 0;  // sum of (w*dy) * xhat over the row
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; c++) dot += static_cast<double>(w[c] * dyr[c]) * (xr[c] * rs);
      const float mean = static_cast<float>(dot / static_cast<double>(C));
#pragma omp simd
      for (int64_t c = 0; c < C; c++) dxr[c] = rs * (w[c] * dyr[c] - (xr[c] * rs) * mean);
    }
  }

  if (dw) {
    // Chunking depends only on N, so the summation order (hence the bits) is thread-count independent.
    const int64_t rowsPer = std::max<int64_t>(16, (N + 63) / 64);
    const int64_t nChunks = N == 0 ? 0 : (N + rowsPer - 1) / rowsPer;
    std::vector<double> part(static_cast<size_t>(nChunks * C), 0.0);
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t k = 0; k < nChunks; k++) {
      double* pk = part.data() + k * C;
      const int64_t r1 = std::min(N, (k + 1) * rowsPer);
      for (int64_t r = k * rowsPer; r < r1; r++) {
        const float* xr = x + r * C;
        const float* dyr = dy + r * C;
        const float rs = rstd[r];
#pragma omp simd
        for (int64_t c = 0; c < C; c++) pk[c] += static_cast<double>(dyr[c]) * (xr[c] * rs);
      }
    }
#pragma omp parallel for schedule(static) if (nChunks * C > 16384)
    for (int64_t c = 0; c < C; c++) {
      double s = 0;
      for (int64_t k = 0; k < nChunks; k++) s += part[k * C + c];
      dw[c] = static_cast<float>(s);
    }
  }
}

}  // namespace gpg
