// Fill a float32 tensor with one value (Tensor.full; a zero weight gradient when there are no rows).
// Legend: n = elements. "=" into x; nothing is saved; no backward.
#include <omp.h>

#include "kernels.h"

namespace gpg {

// x [n] = value
void fill(float* x, float value, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) x[i] = value;
}

}  // namespace gpg
