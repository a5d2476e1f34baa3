// Dtype casts between float32 and bfloat16 (round to nearest even). Used for mixed precision:
// bf16 GEMM operands are cast from fp32 master weights/activations; gradients flow back in fp32
// (a cast's backward is the identity on values, so no cast_backward kernel is needed).
// Legend: n = elements. Outputs are written with "="; nothing is saved.
#include <omp.h>

#include "kernels.h"

namespace gpg {

// out bf16 [n] = round(x f32 [n])
void cast_f32_bf16(uint16_t* out, const float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16(x[i]);
}

// out f32 [n] = x bf16 [n] (exact)
void cast_bf16_f32(float* out, const uint16_t* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(x[i]);
}

}  // namespace gpg
