// SwiGLU of the HF Qwen2/Llama MLP (modeling_qwen2.py, Qwen2MLP):
//   out = silu(gate) * up,   silu(g) = g * sigmoid(g) = g / (1 + exp(-g))
// Elementwise over n = B*T*I values (I = intermediate size). Nothing is saved: backward recomputes
// sigmoid(gate). Backward writes fresh gradients with "=":
//   dgate = dout * up * s * (1 + g * (1 - s)),   dup = dout * silu(g),   s = sigmoid(g)
// exp is a vectorisable float32 implementation (Cody-Waite range reduction + degree-6 polynomial,
// relative error ~2e-7, NaN propagates), so the loops compile to AVX-512 without -ffast-math.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace gpg {

namespace {

// exp(-g) capped at exp(87): for g ≤ −87 sigmoid is then 1.6e-38 instead of a subnormal (true value
// < 1.2e-38), which changes silu(g) = g·sigmoid(g) by < 1e-35 absolute and keeps every operand
// normal — subnormal operands take microcode assists on Intel cores (measured 7× slower SwiGLU
// forward and backward on a Xeon when half the gates are below −87).
// NaN propagates (std::min returns its first argument when a comparison is false).
inline float sigmoid_f32(float g) { return 1.0f / (1.0f + vexp(std::min(-g, 87.0f))); }

}  // namespace

// out [n] = silu(gate [n]) * up [n]
void swiglu_forward(float* out, const float* g, const float* u, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) out[i] = g[i] * sigmoid_f32(g[i]) * u[i];
}

// dgate [n] | null, dup [n] | null ("=") from dout [n], gate [n], up [n]
void swiglu_backward(float* dg, float* du, const float* dy, const float* g, const float* u, int64_t n) {
  if (dg && du) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      const float s = sigmoid_f32(g[i]);
      dg[i] = dy[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
      du[i] = dy[i] * (g[i] * s);
    }
  } else if (dg) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      const float s = sigmoid_f32(g[i]);
      dg[i] = dy[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
    }
  } else if (du) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) du[i] = dy[i] * (g[i] * sigmoid_f32(g[i]));
  }
}

}  // namespace gpg
