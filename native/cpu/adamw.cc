// Fused AdamW step for one parameter tensor, exactly as torch.optim.AdamW's single-tensor path
// (torch/optim/adamw.py, _single_tensor_adamw) with amsgrad=False, maximize=False:
//   p   *= 1 - lr * wd                                 (decoupled weight decay)
//   m    = beta1 m + (1 - beta1) g     (torch 1.13's mul_/add_; torch 2.x writes it as lerp, same maths)
//   v    = beta2 v + (1 - beta2) g^2
//   p   -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Scalars (bias corrections, step size) are formed in double like Python does, then used in
// float32. Legend: n = elements of the parameter tensor; p, g, m (exp_avg), v (exp_avg_sq) are
// float32 [n]. Updates p, m, v in place ("=" of the new values); no gradient, nothing saved.
// Scalar arguments are checked by the binding (native/binding.cc) before this runs.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // (x86 only: the portable paths need no intrinsics, e.g. on arm64)
#endif

#include <cmath>

#include "kernels.h"

// GCC 12's _mm512_sqrt_ps uses _mm512_undefined_ps(), which trips -Wmaybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace gpg {

// adamw_step(p, m, v: updated in place; g: read; n; lr, beta1, beta2, eps, weight_decay; step >= 1)
void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double b1, double b2, double eps,
                double wd, int64_t step) {
  const float decay = static_cast<float>(1.0 - lr * wd);
  const float fb1 = static_cast<float>(b1), w1 = static_cast<float>(1.0 - b1);
  const float fb2 = static_cast<float>(b2), w2 = static_cast<float>(1.0 - b2);
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float feps = static_cast<float>(eps);
  // Scalar update; the AVX-512 body below performs the same float operations in the same order.
  // Block boundaries depend only on n, so results are identical for any thread count.
  auto one = [&](int64_t i) {
    const float gi = g[i];
    const float mi = m[i] * fb1 + gi * w1;
    const float vi = v[i] * fb2 + gi * gi * w2;
    const float denom = std::sqrt(vi) / bc2_sqrt + feps;
    p[i] = p[i] * decay - step_size * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  };
#if defined(__AVX512F__)
  // std::sqrt keeps an errno path without -fno-math-errno, which blocks auto-vectorisation, so
  // the bulk is written with intrinsics.
  constexpr int64_t kBlock = 4096;  // elements per OpenMP work item (multiple of 16)
  const int64_t nb = n / kBlock;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t b = 0; b < nb; b++) {
    const __m512 vb1 = _mm512_set1_ps(fb1), vw1 = _mm512_set1_ps(w1), vb2 = _mm512_set1_ps(fb2),
                 vw2 = _mm512_set1_ps(w2);
    const __m512 vbc2 = _mm512_set1_ps(bc2_sqrt), veps = _mm512_set1_ps(feps), vdec = _mm512_set1_ps(decay),
                 vss = _mm512_set1_ps(step_size);
    for (int64_t i = b * kBlock; i < (b + 1) * kBlock; i += 16) {
      const __m512 gi = _mm512_loadu_ps(g + i), m0 = _mm512_loadu_ps(m + i), v0 = _mm512_loadu_ps(v + i),
                   p0 = _mm512_loadu_ps(p + i);
      const __m512 mi = _mm512_add_ps(_mm512_mul_ps(m0, vb1), _mm512_mul_ps(gi, vw1));
      const __m512 vi = _mm512_add_ps(_mm512_mul_ps(v0, vb2), _mm512_mul_ps(_mm512_mul_ps(gi, gi), vw2));
      const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), vbc2), veps);
      const __m512 pi = _mm512_sub_ps(_mm512_mul_ps(p0, vdec), _mm512_mul_ps(vss, _mm512_div_ps(mi, denom)));
      _mm512_storeu_ps(m + i, mi);
      _mm512_storeu_ps(v + i, vi);
      _mm512_storeu_ps(p + i, pi);
    }
  }
  for (int64_t i = nb * kBlock; i < n; i++) one(i);
#else
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) one(i);
#endif
}

}  // namespace gpg
