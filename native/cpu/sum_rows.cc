// Column sums of a [M, N] matrix: the bias gradient of a Linear layer (sum of dy over rows).
// Legend: M rows, N columns. out = beta·out + Σ_rows x: beta = 0 writes "=" (out is not read, it
// may be uninitialised), beta = 1 accumulates "+=". Deterministic: each column is summed in row
// order, in double, by one thread. Nothing is saved; no backward.
#include "kernels.h"

namespace gpg {

// out [N] = beta · out + Σ_i x [i, :] for x [M, N]
void sum_rows(float* out, const float* x, int64_t M, int64_t N, float beta) {
#pragma omp parallel for schedule(static) if (M * N > 32768)
  for (int64_t j = 0; j < N; j++) {
    double s = 0;  // deterministic: fixed order per column
    for (int64_t i = 0; i < M; i++) s += x[i * N + j];
    out[j] = (beta == 0.0f ? 0.0f : beta * out[j]) +
             static_cast<float>(s);  // beta 0 never reads out (it may be uninitialised)
  }
}

}  // namespace gpg
