// Elementwise kernels: residual add (forward; its backward is the identity for both inputs, so
// the TypeScript op passes dy through without a kernel), axpy (gradient accumulation, "+="),
// and in-place scaling.  n = number of elements.
#include "../addon.h"

namespace gpg {

// add_forward(out [n], a [n], b [n], n): out = a + b
GPG_OP(add_forward) {
  Args a(info, "add_forward");
  int64_t n = a.integer(3, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "a", n);
  const float* y = a.f32(2, "b", n);
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) out[i] = x[i] + y[i];
  return info.Env().Undefined();
}

// axpy(y [n], x [n], alpha, n): y += alpha * x
GPG_OP(axpy) {
  Args a(info, "axpy");
  int64_t n = a.integer(3, "n");
  float* y = a.f32(0, "y", n);
  const float* x = a.f32(1, "x", n);
  float alpha = static_cast<float>(a.number(2, "alpha"));
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
  return info.Env().Undefined();
}

// scale(x [n], s, n): x *= s
GPG_OP(scale) {
  Args a(info, "scale");
  int64_t n = a.integer(2, "n");
  float* x = a.f32(0, "x", n);
  float s = static_cast<float>(a.number(1, "s"));
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
  return info.Env().Undefined();
}

}  // namespace gpg

namespace gpg {

// sum_rows(out [N], x [M, N], M, N, beta): out = beta * out + sum over rows of x (bias gradients)
GPG_OP(sum_rows) {
  Args a(info, "sum_rows");
  int64_t M = a.integer(2, "M"), N = a.integer(3, "N");
  float beta = static_cast<float>(a.number(4, "beta"));
  float* out = a.f32(0, "out", N);
  const float* x = a.f32(1, "x", M * N);
#pragma omp parallel for schedule(static) if (M * N > 32768)
  for (int64_t j = 0; j < N; j++) {
    double s = 0;  // deterministic: fixed order per column
    for (int64_t i = 0; i < M; i++) s += x[i * N + j];
    out[j] = (beta == 0.0f ? 0.0f : beta * out[j]) + static_cast<float>(s);  // beta 0 never reads out (it may be uninitialised)
  }
  return info.Env().Undefined();
}

}  // namespace gpg
