// SwiGLU of the HF Qwen2/Llama MLP (modeling_qwen2.py, Qwen2MLP):
//   out = silu(gate) * up,   silu(g) = g * sigmoid(g) = g / (1 + exp(-g))
// Elementwise over n = B*T*I values (I = intermediate size). Nothing is saved: backward recomputes
// sigmoid(gate). Backward writes fresh gradients with "=":
//   dgate = dout * up * s * (1 + g * (1 - s)),   dup = dout * silu(g),   s = sigmoid(g)
// exp is a vectorisable float32 implementation (Cody-Waite range reduction + degree-6 polynomial,
// relative error ~2e-7, NaN propagates), so the loops compile to AVX-512 without -ffast-math.
#include <cstdint>
#include <cstring>

#include "../addon.h"

namespace gpg {

namespace {


inline float sigmoid_f32(float g) { return 1.0f / (1.0f + vexp(-g)); }

}  // namespace

// swiglu_forward(out [n], gate [n], up [n], n)
GPG_OP(swiglu_forward) {
  Args a(info, "swiglu_forward");
  int64_t n = a.integer(3, "n");
  float* out = a.f32(0, "out", n);
  const float* g = a.f32(1, "gate", n);
  const float* u = a.f32(2, "up", n);
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) out[i] = g[i] * sigmoid_f32(g[i]) * u[i];
  return info.Env().Undefined();
}

// swiglu_backward(dgate [n] | null, dup [n] | null, dout [n], gate [n], up [n], n)
GPG_OP(swiglu_backward) {
  Args a(info, "swiglu_backward");
  int64_t n = a.integer(5, "n");
  float* dg = a.present(0) ? a.f32(0, "dgate", n) : nullptr;
  float* du = a.present(1) ? a.f32(1, "dup", n) : nullptr;
  const float* dy = a.f32(2, "dout", n);
  const float* g = a.f32(3, "gate", n);
  const float* u = a.f32(4, "up", n);
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
  return info.Env().Undefined();
}

}  // namespace gpg
