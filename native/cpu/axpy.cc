// axpy: y += alpha·x, the tape's gradient accumulation ("+=" into y). Legend: n = elements.
// Nothing is saved; no backward.
#include "kernels.h"

namespace gpg {

// y [n] += alpha · x [n]
void axpy(float* y, const float* x, float alpha, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

}  // namespace gpg
