// In-place scaling x *= s (gradient-norm clipping, see gradnorm.cc). Legend: n = elements. Updates x in
// place; nothing is saved; no backward.
#include "kernels.h"

namespace gpg {

// x [n] *= s
void scale(float* x, float s, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

}  // namespace gpg
