// Weight-packed products for generation (prefill and decode): y[M, N] = x[M, K] · Wᵀ (+ bias[N]),
// W [N, K] in the nn.Linear layout, for any M (1 … 512+ rows: one per running sequence, or a prompt).
//
// The weight is packed once per weight version (the CPU backend keeps the copy until the weight is
// written): panels of NR = 16 outputs, k-major (panel[k·16 + j] = W[16p + j, k]), zero-padded to a
// multiple of 16 outputs, in float32 or bfloat16 (half the bytes streamed; widened to fp32 in
// registers: bf16 is the top half of an fp32). The micro-kernel is the BLIS Haswell shape: 6 rows
// of x × 16 outputs, 12 ymm accumulators, per k two panel vectors and six broadcasts of x — FMA-bound
// from L2 (the panel, ≤ 16·K floats, stays in L2 while every row block of x passes over it).
// Threads take contiguous runs of panels, so each streams its part of W once per call.
//
// Batch invariance: y[m, n] is one accumulator lane, fma over k = 0 … K−1 in order, then + bias —
// the same sequence of roundings whatever M, the row's place in the call, the tile or the thread
// count. A sequence's logits therefore do not depend on which other sequences share its decode step
// (continuous batching and prefix sharing give the same tokens as one sequence alone).
// No backward: generation runs without gradients; nothing is saved. y is written with "=".
// Legend: M rows of x, N outputs, K inner dimension, P = ceil(N / 16) panels.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common.h"
#include "kernels.h"

namespace gpg {

constexpr int64_t PNR = 16;  // outputs per panel
constexpr int PMR = 6;       // rows of x per micro-tile

int64_t packed_panels(int64_t N) { return (N + PNR - 1) / PNR; }

// panels f32 [P, K, 16] from W [N, K]
void packed_pack_f32(float* panels, const float* W, int64_t N, int64_t K) {
  const int64_t P = packed_panels(N);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; p++) {
    float* dst = panels + p * K * PNR;
    for (int64_t j = 0; j < PNR; j++) {
      const int64_t n = p * PNR + j;
      if (n < N)
        for (int64_t k = 0; k < K; k++) dst[k * PNR + j] = W[n * K + k];
      else
        for (int64_t k = 0; k < K; k++) dst[k * PNR + j] = 0.f;
    }
  }
}

// panels bf16 [P, K, 16] (round to nearest even) from W [N, K]
void packed_pack_bf16(uint16_t* panels, const float* W, int64_t N, int64_t K) {
  const int64_t P = packed_panels(N);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; p++) {
    uint16_t* dst = panels + p * K * PNR;
    for (int64_t j = 0; j < PNR; j++) {
      const int64_t n = p * PNR + j;
      for (int64_t k = 0; k < K; k++) dst[k * PNR + j] = n < N ? f32_to_bf16(W[n * K + k]) : 0;
    }
  }
}

namespace {

#if defined(__AVX2__) && defined(__FMA__)
inline void load16(const float* p, __m256& b0, __m256& b1) {
  b0 = _mm256_loadu_ps(p);
  b1 = _mm256_loadu_ps(p + 8);
}
inline void load16(const uint16_t* p, __m256& b0, __m256& b1) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  b0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(w)), 16));
  b1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(w, 1)), 16));
}

// y[ROWS, nr ≤ 16] = x[ROWS, K] · panel
template <int ROWS, typename T>
inline void micro(float* y, int64_t ldy, const float* x, int64_t K, const T* panel, const float* bias, int nr) {
  __m256 c0[ROWS], c1[ROWS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    __m256 b0, b1;
    load16(panel + k * PNR, b0, b1);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; i++) {
      const __m256 a = _mm256_broadcast_ss(x + i * K + k);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
  }
  // stores with constant indices only, so the accumulators stay in registers through the k loop
  alignas(32) float tmp[ROWS * PNR];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; i++) {
    _mm256_store_ps(tmp + i * PNR, c0[i]);
    _mm256_store_ps(tmp + i * PNR + 8, c1[i]);
  }
  for (int i = 0; i < ROWS; i++)
    for (int j = 0; j < nr; j++) y[i * ldy + j] = tmp[i * PNR + j] + (bias ? bias[j] : 0.f);
}
#else
template <int ROWS, typename T>
inline void micro(float* y, int64_t ldy, const float* x, int64_t K, const T* panel, const float* bias, int nr) {
  float acc[ROWS][PNR] = {};
  for (int64_t k = 0; k < K; k++)
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < PNR; j++) {
        if constexpr (sizeof(T) == 2)
          acc[i][j] = std::fma(x[i * K + k], bf16_to_f32(panel[k * PNR + j]), acc[i][j]);
        else
          acc[i][j] = std::fma(x[i * K + k], panel[k * PNR + j], acc[i][j]);
      }
  for (int i = 0; i < ROWS; i++)
    for (int j = 0; j < nr; j++) y[i * ldy + j] = acc[i][j] + (bias ? bias[j] : 0.f);
}
#endif

template <typename T>
void run(float* y, const float* x, const T* panels, const float* bias, int64_t M, int64_t N, int64_t K) {
  const int64_t P = packed_panels(N);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; p++) {
    const T* panel = panels + p * K * PNR;
    const int64_t n0 = p * PNR;
    const int nr = static_cast<int>(std::min<int64_t>(PNR, N - n0));
    const float* bp = bias ? bias + n0 : nullptr;
    int64_t m = 0;
    for (; m + PMR <= M; m += PMR) micro<PMR>(y + m * N + n0, N, x + m * K, K, panel, bp, nr);
    switch (M - m) {
      case 5:
        micro<5>(y + m * N + n0, N, x + m * K, K, panel, bp, nr);
        break;
      case 4:
        micro<4>(y + m * N + n0, N, x + m * K, K, panel, bp, nr);
        break;
      case 3:
        micro<3>(y + m * N + n0, N, x + m * K, K, panel, bp, nr);
        break;
      case 2:
        micro<2>(y + m * N + n0, N, x + m * K, K, panel, bp, nr);
        break;
      case 1:
        micro<1>(y + m * N + n0, N, x + m * K, K, panel, bp, nr);
        break;
      default:
        break;
    }
  }
}

}  // namespace

void packed_gemm(float* y, const float* x, const float* panels, const float* bias, int64_t M, int64_t N, int64_t K) {
  run(y, x, panels, bias, M, N, K);
}
void packed_gemm(float* y, const float* x, const uint16_t* panels, const float* bias, int64_t M, int64_t N, int64_t K) {
  run(y, x, panels, bias, M, N, K);
}

}  // namespace gpg
