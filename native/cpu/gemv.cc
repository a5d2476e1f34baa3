// Skinny matrix products for decoding: y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]) (+ beta·y) for small
// M (≤ 32 rows: one new token per sequence). This is the shape of every Linear layer during
// KV-cache decoding: every weight is used M times only, so the packed GEMM (which would copy all
// of W into panels on every call) is the wrong tool. Here each thread streams its own rows of W
// exactly once, three rows at a time, against all rows of x in blocks of eight: 24 accumulators,
// 11 vector loads per 24 FMAs, which keeps the FMA pipes ~80% busy while W streams from L3
// (from DRAM, streaming W is the limit). Dot products run along K, so each output ends with a
// horizontal sum, done eight at a time by a transpose-and-add tree. No backward: decode runs
// without gradients (training products go through gemm.cc), so nothing is saved. y is written with
// "=" (beta = 0: y is not read) or "+=" scaled (beta·y + x·Wᵀ).
// Legend: M rows of x (≤ 64, checked by the binding), N outputs, K inner dimension.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // (x86 only: the portable paths need no intrinsics, e.g. on arm64)
#endif
#include <omp.h>

#include <algorithm>

#include "kernels.h"

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
// The 8 horizontal sums of a[0..7], in lanes 0..7 (a transpose-and-add tree: 17 shuffles and adds
// instead of 8 separate reductions of ~8 instructions each).
static inline __m256 hsum8(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m512 a4, __m512 a5, __m512 a6, __m512 a7) {
  const __m512 a[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
  __m512 c[4];
  for (int i = 0; i < 4; i++)  // c[i]: 256-bit halves of a[2i] (lanes 0-1) and a[2i+1] (lanes 2-3), folded
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
  // d0 128-bit lane L: 4 partial sums of a[L]; d1: of a[4 + L]
  const __m512 d0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xdd));
  const __m512 d1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x88), _mm512_shuffle_f32x4(c[2], c[3], 0xdd));
  const __m512 e = _mm512_add_ps(_mm512_unpacklo_ps(d0, d1), _mm512_unpackhi_ps(d0, d1));
  const __m512 f = _mm512_add_ps(e, _mm512_permute_ps(e, 0x4e));  // lane L: [Σa[L], Σa[4+L], ...]
  const __m512i order = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0);
  return _mm512_castps512_ps256(_mm512_permutexvar_ps(order, f));
}

// One 16-wide k step of block(): NB W vectors and MB x vectors, each loaded once.
template <int NB, int MB>
__attribute__((always_inline)) static inline void step(__m512 (&acc)[NB][MB], const float* x, const float* W,
                                                       int64_t n0, int64_t m0, int64_t K, int64_t k, __mmask16 mk) {
  __m512 w[NB];
#pragma GCC unroll 8
  for (int i = 0; i < NB; i++) {
    w[i] = _mm512_maskz_loadu_ps(mk, W + (n0 + i) * K + k);
    asm volatile("" : "+v"(w[i]));
    _mm_prefetch(reinterpret_cast<const char*>(W + (n0 + i) * K + k + 128), _MM_HINT_T0);
  }
#pragma GCC unroll 8
  for (int j = 0; j < MB; j++) {
    __m512 xv = _mm512_maskz_loadu_ps(mk, x + (m0 + j) * K + k);
    asm volatile("" : "+v"(xv));
#pragma GCC unroll 8
    for (int i = 0; i < NB; i++) acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
  }
}

// y[m0..m0+MB, n0..n0+NB] for NB ≤ 3 W rows and MB ≤ 8 x rows: NB·MB accumulator chains hide the
// FMA latency. Each loaded vector is pinned in a register (the empty asm) so it is loaded once
// and used NB or MB times: left alone, the compiler folds the x load into every FMA, and one
// 512-bit load per FMA caps this machine at half its FMA peak.
template <int NB, int MB>
static inline void block(float* y, const float* x, const float* W, const float* bias, float beta, int64_t n0,
                         int64_t m0, int64_t N, int64_t K) {
  __m512 acc[NB][MB];
#pragma GCC unroll 8
  for (int i = 0; i < NB; i++)
#pragma GCC unroll 8
    for (int j = 0; j < MB; j++) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) step<NB, MB>(acc, x, W, n0, m0, K, k, 0xffff);
  if (k < K) step<NB, MB>(acc, x, W, n0, m0, K, k, static_cast<__mmask16>((1u << (K - k)) - 1));
#pragma GCC unroll 8
  for (int i = 0; i < NB; i++) {
    float sums[MB];
    if constexpr (MB == 8) {
      _mm256_storeu_ps(sums,
                       hsum8(acc[i][0], acc[i][1], acc[i][2], acc[i][3], acc[i][4], acc[i][5], acc[i][6], acc[i][7]));
    } else {
#pragma GCC unroll 8
      for (int j = 0; j < MB; j++) sums[j] = _mm512_reduce_add_ps(acc[i][j]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < MB; j++) {
      const float v = sums[j] + (bias ? bias[n0 + i] : 0.0f);
      float& out = y[(m0 + j) * N + n0 + i];
      out = beta == 0.0f ? v : beta * out + v;
    }
  }
}

// All M rows of x against W rows n0..n0+NB (x in chunks of 8 rows; W rows stay in L1 meanwhile).
// The first 8 lines of the next NB rows are fetched into L2 first: the hardware prefetcher runs on
// from the end of one row into the next, but the other rows of the next group start cold, which
// cost 13–32% whenever W streamed from DRAM (paired A/B at the decode shape in noisy minutes and
// with W larger than the L3; neutral when W is in L3; more than 8 lines per row measured slower).
template <int NB>
static inline void rows(float* y, const float* x, const float* W, const float* bias, float beta, int64_t n0, int64_t M,
                        int64_t N, int64_t K) {
  for (int64_t n = n0 + NB; n < std::min<int64_t>(n0 + 2 * NB, N); n++)
    for (int64_t k = 0; k < std::min<int64_t>(8 * 16, K); k += 16)
      _mm_prefetch(reinterpret_cast<const char*>(W + n * K + k), _MM_HINT_T1);
  int64_t m = 0;
  for (; m + 8 <= M; m += 8) block<NB, 8>(y, x, W, bias, beta, n0, m, N, K);
  switch (M - m) {
    case 7:
      block<NB, 7>(y, x, W, bias, beta, n0, m, N, K);
      break;
    case 6:
      block<NB, 6>(y, x, W, bias, beta, n0, m, N, K);
      break;
    case 5:
      block<NB, 5>(y, x, W, bias, beta, n0, m, N, K);
      break;
    case 4:
      block<NB, 4>(y, x, W, bias, beta, n0, m, N, K);
      break;
    case 3:
      block<NB, 3>(y, x, W, bias, beta, n0, m, N, K);
      break;
    case 2:
      block<NB, 2>(y, x, W, bias, beta, n0, m, N, K);
      break;
    case 1:
      block<NB, 1>(y, x, W, bias, beta, n0, m, N, K);
      break;
    default:
      break;
  }
}
#endif

// y [M,N] = x [M,K] · W [N,K]ᵀ (+ bias [N] | null) (+ beta·y)
void gemv(float* y, const float* x, const float* W, const float* bias, int64_t M, int64_t N, int64_t K, float beta) {
  // Static blocks of 3 W rows: each thread streams a contiguous slice of W exactly once.
  const int64_t groups = N / 3;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < groups; p++) {
#if defined(__AVX512F__)
    rows<3>(y, x, W, bias, beta, 3 * p, M, N, K);
#else
    for (int64_t n = 3 * p; n < 3 * p + 3; n++)
      for (int64_t m = 0; m < M; m++) {
        float v = dot_avx512(x + m * K, W + n * K, K) + (bias ? bias[n] : 0.0f);
        y[m * N + n] = beta == 0.0f ? v : beta * y[m * N + n] + v;
      }
#endif
  }
  for (int64_t n = groups * 3; n < N; n++) {
#if defined(__AVX512F__)
    rows<1>(y, x, W, bias, beta, n, M, N, K);
#else
    for (int64_t m = 0; m < M; m++) {
      float v = dot_avx512(x + m * K, W + n * K, K) + (bias ? bias[n] : 0.0f);
      y[m * N + n] = beta == 0.0f ? v : beta * y[m * N + n] + v;
    }
#endif
  }
}

}  // namespace gpg
