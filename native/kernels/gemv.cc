// Skinny matrix products for decoding: y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) (+ beta·y) for small
// M (≤ 32 rows: one new token per sequence). This is the shape of every Linear layer during
// KV-cache decoding; it is bound by streaming W from memory once. oneDNN's brgemm packs W into a
// blocked copy on every call for this layout (reading and writing all weights again), which
// measured 8 GB/s effective on small-50m decode; here each thread streams its own rows of W once
// and keeps them in L1 while all M rows of x use them. No backward: decode runs without
// gradients (training products go through oneDNN, native/gemm.cc).
// M rows of x, N outputs, K inner dimension.
#include <immintrin.h>
#include <omp.h>

#include "../addon.h"

namespace gpg {

#if defined(__AVX512F__)
static inline float dot_avx512(const float* a, const float* b, int64_t K) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), s1);
  }
  for (; k + 16 <= K; k += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
  if (k < K) {
    __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#else
static inline float dot_avx512(const float* a, const float* b, int64_t K) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < K; k++) s += a[k] * b[k];
  return s;
}
#endif

#if defined(__AVX512F__)
// y[m0..m0+MB, n0..n0+NB] for NB ∈ {1,4} W rows and MB ≤ 4 x rows: NB·MB independent accumulator
// chains hide the FMA latency, and each loaded W vector is used MB times, each x vector NB times.
template <int NB, int MB>
static inline void block(float* y, const float* x, const float* W, const float* bias, float beta, int64_t n0, int64_t m0, int64_t N, int64_t K) {
  __m512 acc[NB][MB];
  for (int i = 0; i < NB; i++)
    for (int j = 0; j < MB; j++) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 w[NB];
    for (int i = 0; i < NB; i++) w[i] = _mm512_loadu_ps(W + (n0 + i) * K + k);
    for (int j = 0; j < MB; j++) {
      __m512 xv = _mm512_loadu_ps(x + (m0 + j) * K + k);
      for (int i = 0; i < NB; i++) acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
    }
  }
  if (k < K) {
    __mmask16 mk = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 w[NB];
    for (int i = 0; i < NB; i++) w[i] = _mm512_maskz_loadu_ps(mk, W + (n0 + i) * K + k);
    for (int j = 0; j < MB; j++) {
      __m512 xv = _mm512_maskz_loadu_ps(mk, x + (m0 + j) * K + k);
      for (int i = 0; i < NB; i++) acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
    }
  }
  for (int i = 0; i < NB; i++)
    for (int j = 0; j < MB; j++) {
      float v = _mm512_reduce_add_ps(acc[i][j]) + (bias ? bias[n0 + i] : 0.0f);
      float& out = y[(m0 + j) * N + n0 + i];
      out = beta == 0.0f ? v : beta * out + v;
    }
}

template <int NB>
static inline void rows(float* y, const float* x, const float* W, const float* bias, float beta, int64_t n0, int64_t M, int64_t N, int64_t K) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) block<NB, 4>(y, x, W, bias, beta, n0, m, N, K);
  switch (M - m) {
    case 3: block<NB, 3>(y, x, W, bias, beta, n0, m, N, K); break;
    case 2: block<NB, 2>(y, x, W, bias, beta, n0, m, N, K); break;
    case 1: block<NB, 1>(y, x, W, bias, beta, n0, m, N, K); break;
    default: break;
  }
}
#endif

// gemm_small_m(y [M,N], x [M,K], W [N,K], bias [N] | null, M, N, K, beta)
GPG_OP(gemm_small_m) {
  Args a(info, "gemm_small_m");
  int64_t M = a.integer(4, "M", 1), N = a.integer(5, "N", 1), K = a.integer(6, "K", 1);
  float beta = static_cast<float>(a.number(7, "beta"));
  if (M > 64) a.fail("M must be ≤ 64 (got " + std::to_string(M) + "); use gemm");
  float* y = a.f32(0, "y", M * N);
  const float* x = a.f32(1, "x", M * K);
  const float* W = a.f32(2, "W", N * K);
  const float* bias = a.present(3) ? a.f32(3, "bias", N) : nullptr;
  // Static blocks of 4 W rows: each thread streams a contiguous slice of W exactly once.
  const int64_t quads = N / 4;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < quads; p++) {
#if defined(__AVX512F__)
    rows<4>(y, x, W, bias, beta, 4 * p, M, N, K);
#else
    for (int64_t n = 4 * p; n < 4 * p + 4; n++)
      for (int64_t m = 0; m < M; m++) {
        float v = dot_avx512(x + m * K, W + n * K, K) + (bias ? bias[n] : 0.0f);
        y[m * N + n] = beta == 0.0f ? v : beta * y[m * N + n] + v;
      }
#endif
  }
  for (int64_t n = quads * 4; n < N; n++) {
#if defined(__AVX512F__)
    rows<1>(y, x, W, bias, beta, n, M, N, K);
#else
    for (int64_t m = 0; m < M; m++) {
      float v = dot_avx512(x + m * K, W + n * K, K) + (bias ? bias[n] : 0.0f);
      y[m * N + n] = beta == 0.0f ? v : beta * y[m * N + n] + v;
    }
#endif
  }
  return info.Env().Undefined();
}

}  // namespace gpg
