// Weight-packed products for generation (prefill and decode): y[M, N] = x[M, K] · Wᵀ (+ bias[N]),
// W [N, K] in the nn.Linear layout, for any M (1 … 512+ rows: one per running sequence, or a prompt).
//
// The weight is packed once per weight version (the CPU backend keeps the copy until the weight is
// written), in panels of NR = 16 outputs, zero-padded to a multiple of 16 outputs:
//   float32:  panel[k·16 + j]            = W[16p + j, k]                 (k-major)
//   bfloat16: panel[(k/2)·32 + 2j + k%2] = bf16(W[16p + j, k])           (k-pairs interleaved, K padded
//             to even with zeros: the layout of AVX512-BF16's vdpbf16ps, one dword = a k-pair)
// Float32 products are x · W in fp32 (fma over k = 0 … K−1 in order). Bfloat16 products are bf16 ×
// bf16 with fp32 accumulation, as llama.cpp's and PyTorch's bf16 CPU products: each row of x is
// rounded to bf16 (nearest even) and every k-pair is accumulated odd element first, then even —
// vdpbf16ps's order (products of bf16 values are exact in fp32, so each step is one rounding, as an
// fma); where the CPU lacks AVX512-BF16 the same sequence runs as two fmas on widened values
// (identical up to vdpbf16ps flushing denormals).
//
// Micro-kernels (BLIS style, FMA-bound from L2: the panel, ≤ 16·K values, stays in L2 while every
// row block of x passes over it):
//   AVX-512: 12 rows × 32 outputs (two panels), 24 zmm accumulators, x broadcast from memory;
//   AVX2 + FMA: 6 rows × 16 outputs, 12 ymm accumulators; otherwise scalar fmas;
//   bf16 on AMX (where the CPU has AMX-BF16 and K % 32 == 0): 32 rows × 32 outputs in four tiles,
//   2–7× the AVX512-BF16 kernel at 16–64 rows on a 2-vCPU Xeon with AMX (AMX section below).
// Threads take contiguous runs of panel pairs, so each streams its part of W once per call.
//
// Batch invariance: y[m, n] is one accumulator lane, the same sequence of roundings over k in
// order, then + bias — whatever M, the row's place in the call, the tile, the vector ISA path or
// the thread count (the AMX path sums each 32-k chunk in the tile unit's order: batch and thread
// invariant too, equal to the vector paths up to fp32 rounding). A sequence's logits therefore do
// not depend on which other sequences share its decode step (continuous batching and prefix
// sharing give the same tokens as one sequence alone).
// No backward: generation runs without gradients; nothing is saved. y is written with "=".
// Legend: M rows of x, N outputs, K inner dimension, P = ceil(N / 16) panels, Kh = ceil(K / 2).
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // (x86 only: the portable paths need no intrinsics, e.g. on arm64)
#endif
#include <omp.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <vector>

#include "common.h"
#include "kernels.h"

namespace gpg {

constexpr int64_t PNR = 16;  // outputs per panel

int64_t packed_panels(int64_t N) { return (N + PNR - 1) / PNR; }
int64_t packed_bf16_elems(int64_t N, int64_t K) { return packed_panels(N) * PNR * ((K + 1) / 2) * 2; }

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

// panels bf16 [P, Kh, 16, 2] (round to nearest even) from W [N, K]
void packed_pack_bf16(uint16_t* panels, const float* W, int64_t N, int64_t K) {
  const int64_t P = packed_panels(N), Kh = (K + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; p++) {
    uint16_t* dst = panels + p * Kh * PNR * 2;
    for (int64_t j = 0; j < PNR; j++) {
      const int64_t n = p * PNR + j;
      for (int64_t k = 0; k < 2 * Kh; k++)
        dst[(k / 2) * PNR * 2 + 2 * j + (k % 2)] = (n < N && k < K) ? f32_to_bf16(W[n * K + k]) : 0;
    }
  }
}

const char* packed_isa() {
#if defined(__AVX512F__) && defined(__AVX512BF16__)
  return packed_amx(-1) ? "avx512 + avx512_bf16 + amx_bf16" : "avx512 + avx512_bf16";
#elif defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "scalar";
#endif
}

namespace {

// y[i, j] = tmp[i·ld + j] + bias[j] for the tile's ROWS rows and its first nr outputs
template <int ROWS>
inline void write_tile(float* y, int64_t ldy, const float* tmp, int ld, const float* bias, int nr) {
  for (int i = 0; i < ROWS; i++)
    for (int j = 0; j < nr; j++) y[i * ldy + j] = tmp[i * ld + j] + (bias ? bias[j] : 0.f);
}

// Operand views. F32: x fp32 [M, K], panels fp32. BF16: x as bf16 k-pairs (dword [M, Kh]: low half
// x[2kk], high half x[2kk+1]) and as the same values widened to fp32 [M, 2·Kh] (for the fma paths).
struct Bf16X {
  const uint32_t* pairs;  // [M, Kh]
  const float* wide;      // [M, 2·Kh]
};

#if defined(__AVX512F__)
// stores with constant indices only, so the accumulators stay in registers through the k loop
template <int ROWS, int NP>
inline void finish(float* y, int64_t ldy, const __m512 (&c)[ROWS][NP], const float* bias, int nr) {
  alignas(64) float tmp[ROWS * NP * PNR];
#pragma GCC unroll 12
  for (int i = 0; i < ROWS; i++)
    for (int q = 0; q < NP; q++) _mm512_store_ps(tmp + (i * NP + q) * PNR, c[i][q]);
  write_tile<ROWS>(y, ldy, tmp, NP * PNR, bias, nr);
}

// y[ROWS, nr] = x[ROWS, K] · (panels p, p+1), NP = 1 or 2 panels (nr ≤ 16·NP)
template <int ROWS, int NP>
inline void micro_f32(float* y, int64_t ldy, const float* x, int64_t K, const float* p0, const float* p1,
                      const float* bias, int nr) {
  __m512 c[ROWS][NP];
#pragma GCC unroll 12
  for (int i = 0; i < ROWS; i++)
    for (int q = 0; q < NP; q++) c[i][q] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const __m512 b0 = _mm512_loadu_ps(p0 + k * PNR);
    const __m512 b1 = NP == 2 ? _mm512_loadu_ps(p1 + k * PNR) : b0;
#pragma GCC unroll 12
    for (int i = 0; i < ROWS; i++) {
      const __m512 a = _mm512_set1_ps(x[i * K + k]);
      c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
      if (NP == 2) c[i][NP - 1] = _mm512_fmadd_ps(a, b1, c[i][NP - 1]);
    }
  }
  finish(y, ldy, c, bias, nr);
}

template <int ROWS, int NP>
inline void micro_bf16(float* y, int64_t ldy, const Bf16X& x, int64_t m0, int64_t Kh, const uint16_t* p0,
                       const uint16_t* p1, const float* bias, int nr) {
  __m512 c[ROWS][NP];
#pragma GCC unroll 12
  for (int i = 0; i < ROWS; i++)
    for (int q = 0; q < NP; q++) c[i][q] = _mm512_setzero_ps();
#if defined(__AVX512BF16__)
  const uint32_t* xp = x.pairs + m0 * Kh;
  for (int64_t kk = 0; kk < Kh; kk++) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(p0 + kk * 2 * PNR);
    const __m512bh b1 = NP == 2 ? (__m512bh)_mm512_loadu_si512(p1 + kk * 2 * PNR) : b0;
#pragma GCC unroll 12
    for (int i = 0; i < ROWS; i++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(xp[i * Kh + kk]));
      c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
      if (NP == 2) c[i][NP - 1] = _mm512_dpbf16_ps(c[i][NP - 1], a, b1);
    }
  }
#else
  const float* xw = x.wide + m0 * 2 * Kh;
  const __m512i hi = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int64_t kk = 0; kk < Kh; kk++) {
    const __m512i w0 = _mm512_loadu_si512(p0 + kk * 2 * PNR);
    const __m512i w1 = NP == 2 ? _mm512_loadu_si512(p1 + kk * 2 * PNR) : w0;
    const __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)),
                 o0 = _mm512_castsi512_ps(_mm512_and_si512(w0, hi));
    const __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)),
                 o1 = _mm512_castsi512_ps(_mm512_and_si512(w1, hi));
#pragma GCC unroll 12
    for (int i = 0; i < ROWS; i++) {
      const __m512 ae = _mm512_set1_ps(xw[i * 2 * Kh + 2 * kk]), ao = _mm512_set1_ps(xw[i * 2 * Kh + 2 * kk + 1]);
      c[i][0] = _mm512_fmadd_ps(ae, e0, _mm512_fmadd_ps(ao, o0, c[i][0]));
      if (NP == 2) c[i][NP - 1] = _mm512_fmadd_ps(ae, e1, _mm512_fmadd_ps(ao, o1, c[i][NP - 1]));
    }
  }
#endif
  finish(y, ldy, c, bias, nr);
}
constexpr int PMR = 12;  // rows of x per micro-tile
constexpr int PNP = 2;   // panels per micro-tile

#elif defined(__AVX2__) && defined(__FMA__)
// stores with constant indices only, so the accumulators stay in registers through the k loop
template <int ROWS>
inline void finish(float* y, int64_t ldy, const __m256 (&c0)[ROWS], const __m256 (&c1)[ROWS], const float* bias,
                   int nr) {
  alignas(32) float tmp[ROWS * PNR];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; i++) {
    _mm256_store_ps(tmp + i * PNR, c0[i]);
    _mm256_store_ps(tmp + i * PNR + 8, c1[i]);
  }
  write_tile<ROWS>(y, ldy, tmp, PNR, bias, nr);
}

template <int ROWS, int NP>
inline void micro_f32(float* y, int64_t ldy, const float* x, int64_t K, const float* p0, const float*,
                      const float* bias, int nr) {
  __m256 c0[ROWS], c1[ROWS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const __m256 b0 = _mm256_loadu_ps(p0 + k * PNR), b1 = _mm256_loadu_ps(p0 + k * PNR + 8);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; i++) {
      const __m256 a = _mm256_broadcast_ss(x + i * K + k);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
  }
  finish(y, ldy, c0, c1, bias, nr);
}

template <int ROWS, int NP>
inline void micro_bf16(float* y, int64_t ldy, const Bf16X& x, int64_t m0, int64_t Kh, const uint16_t* p0,
                       const uint16_t*, const float* bias, int nr) {
  __m256 c0[ROWS], c1[ROWS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm256_setzero_ps();
  const float* xw = x.wide + m0 * 2 * Kh;
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int64_t kk = 0; kk < Kh; kk++) {
    // dwords j = 0…7 and 8…15: output j's (k even, k odd) pair
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0 + kk * 2 * PNR));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0 + kk * 2 * PNR + 16));
    const __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)),
                 o0 = _mm256_castsi256_ps(_mm256_and_si256(w0, hi));
    const __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16)),
                 o1 = _mm256_castsi256_ps(_mm256_and_si256(w1, hi));
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; i++) {
      const __m256 ae = _mm256_broadcast_ss(xw + i * 2 * Kh + 2 * kk),
                   ao = _mm256_broadcast_ss(xw + i * 2 * Kh + 2 * kk + 1);
      c0[i] = _mm256_fmadd_ps(ae, e0, _mm256_fmadd_ps(ao, o0, c0[i]));
      c1[i] = _mm256_fmadd_ps(ae, e1, _mm256_fmadd_ps(ao, o1, c1[i]));
    }
  }
  finish(y, ldy, c0, c1, bias, nr);
}
constexpr int PMR = 6;
constexpr int PNP = 1;

#else
template <int ROWS, int NP>
inline void micro_f32(float* y, int64_t ldy, const float* x, int64_t K, const float* p0, const float*,
                      const float* bias, int nr) {
  float acc[ROWS][PNR] = {};
  for (int64_t k = 0; k < K; k++)
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < PNR; j++) acc[i][j] = std::fma(x[i * K + k], p0[k * PNR + j], acc[i][j]);
  write_tile<ROWS>(y, ldy, &acc[0][0], PNR, bias, nr);
}
template <int ROWS, int NP>
inline void micro_bf16(float* y, int64_t ldy, const Bf16X& x, int64_t m0, int64_t Kh, const uint16_t* p0,
                       const uint16_t*, const float* bias, int nr) {
  float acc[ROWS][PNR] = {};
  const float* xw = x.wide + m0 * 2 * Kh;
  for (int64_t kk = 0; kk < Kh; kk++)
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < PNR; j++) {
        const float* xr = xw + i * 2 * Kh + 2 * kk;
        acc[i][j] = std::fma(xr[1], bf16_to_f32(p0[kk * 2 * PNR + 2 * j + 1]), acc[i][j]);
        acc[i][j] = std::fma(xr[0], bf16_to_f32(p0[kk * 2 * PNR + 2 * j]), acc[i][j]);
      }
  write_tile<ROWS>(y, ldy, &acc[0][0], PNR, bias, nr);
}
constexpr int PMR = 6;
constexpr int PNP = 1;
#endif

// One tile: rows m … m+ROWS−1 of panels p … p+np−1 (np ≤ PNP).
template <int ROWS>
inline void tile(float* y, const float* x, const Bf16X* xb, const float* pf, const uint16_t* pb, const float* bias,
                 int64_t m, int64_t p, int np, int64_t N, int64_t K) {
  const int64_t n0 = p * PNR;
  const int nr = static_cast<int>(std::min<int64_t>(PNR * np, N - n0));
  const float* bp = bias ? bias + n0 : nullptr;
  float* yt = y + m * N + n0;
  if (xb) {
    const int64_t Kh = (K + 1) / 2, ps = Kh * 2 * PNR;
    if (np == 2)
      micro_bf16<ROWS, 2>(yt, N, *xb, m, Kh, pb + p * ps, pb + (p + 1) * ps, bp, nr);
    else
      micro_bf16<ROWS, 1>(yt, N, *xb, m, Kh, pb + p * ps, nullptr, bp, nr);
  } else {
    const int64_t ps = K * PNR;
    if (np == 2)
      micro_f32<ROWS, 2>(yt, N, x + m * K, K, pf + p * ps, pf + (p + 1) * ps, bp, nr);
    else
      micro_f32<ROWS, 1>(yt, N, x + m * K, K, pf + p * ps, nullptr, bp, nr);
  }
}

template <int R>
inline void tail(int64_t rows, float* y, const float* x, const Bf16X* xb, const float* pf, const uint16_t* pb,
                 const float* bias, int64_t m, int64_t p, int np, int64_t N, int64_t K) {
  if constexpr (R > 0) {
    if (rows == R)
      tile<R>(y, x, xb, pf, pb, bias, m, p, np, N, K);
    else
      tail<R - 1>(rows, y, x, xb, pf, pb, bias, m, p, np, N, K);
  }
}

void run(float* y, const float* x, const Bf16X* xb, const float* pf, const uint16_t* pb, const float* bias, int64_t M,
         int64_t N, int64_t K) {
  const int64_t P = packed_panels(N), G = (P + PNP - 1) / PNP;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < G; g++) {
    const int64_t p = g * PNP;
    const int np = static_cast<int>(std::min<int64_t>(PNP, P - p));
    int64_t m = 0;
    for (; m + PMR <= M; m += PMR) tile<PMR>(y, x, xb, pf, pb, bias, m, p, np, N, K);
    if (m < M) tail<PMR - 1>(M - m, y, x, xb, pf, pb, bias, m, p, np, N, K);
  }
}

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BF16__)
#define GPG_PACKED_AMX 1
// ---- AMX (Intel Sapphire Rapids and later): the bf16 product on the tile unit.
// TDPBF16PS multiplies a tile A [16 rows, 32 bf16 of k] by a tile B [16 k-pairs, 16 outputs × 2]
// into C [16 rows, 16 fp32 outputs]; B's layout is exactly a bf16 panel's next 16 k-pairs (64 bytes
// per k-pair), A's is 16 rows of the rounded x (the k-pairs buffer read as bf16 [M, K]). A block is
// 32 rows × 32 outputs (tiles 0–3 accumulate C, 4–5 hold A, 6–7 hold B) over all of K, stored once.
// Used when the CPU has AMX-BF16, Linux grants the tile state (arch_prctl) and K % 32 == 0 (every
// Qwen/Llama width); x is padded with zero rows to a multiple of 16, so every row takes the same
// path whatever M: y[m, n] is C's lane (m, n) after the same K/32 tile products in order, + bias,
// and batch invariance holds as on the vector paths. Each tile product sums its 32 k's in the
// unit's own order, so AMX and vdpbf16ps results may differ in the last bits (test/native/packed).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// every tile 16 rows × 64 bytes. A constant in memory: _tile_loadconfig's asm names only the first 8
// bytes of its operand, so a config built on the stack could lose its other stores to the optimizer
constexpr TileConfig tiles16x64() {
  TileConfig c;
  for (int t = 0; t < 8; t++) {
    c.rows[t] = 16;
    c.colsb[t] = 64;
  }
  return c;
}
alignas(64) constexpr TileConfig kTiles = tiles16x64();

// -1: not probed yet; 0: unavailable; 1: available.  g_amx_on: the caller's switch (bench/tests).
std::atomic<int> g_amx_avail{-1};
std::atomic<bool> g_amx_on{true};

bool amx_available() {
  int v = g_amx_avail.load();
  if (v < 0) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 22) & 1) && ((d >> 24) & 1);  // AMX-BF16, AMX-TILE
    // Linux ≥ 5.16 hands out the 8 KB tile state per process on request (ARCH_REQ_XCOMP_PERM,
    // XFEATURE_XTILEDATA); refused (older kernel, seccomp) → the vector path
    if (ok) ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    const char* env = std::getenv("GPG_RL_AMX");
    if (env && env[0] == '0') ok = false;
    v = ok ? 1 : 0;
    g_amx_avail.store(v);
  }
  return v == 1;
}

// C tiles (rows m … m+16·TM−1, outputs of panels b0 and b1) over all of K: TM ≤ 2 row tiles × TN ≤ 2
// panels (tiles 0–3 accumulate, 4–5 hold A, 6–7 hold B)
template <int TM, int TN>
__attribute__((target("amx-tile,amx-bf16"))) inline void amx_block(const uint16_t* a0, int64_t lda, const uint16_t* b0,
                                                                   const uint16_t* b1, int64_t Kc, float* tmp) {
  _tile_zero(0);
  if (TN == 2) _tile_zero(1);
  if (TM == 2) _tile_zero(2);
  if (TM == 2 && TN == 2) _tile_zero(3);
  const uint16_t* a1 = a0 + 16 * lda / 2;
  for (int64_t c = 0; c < Kc; c++) {
    _tile_loadd(4, a0 + c * 32, lda);
    _tile_loadd(6, b0 + c * 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (TN == 2) {
      _tile_loadd(7, b1 + c * 512, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if (TM == 2) {
      _tile_loadd(5, a1 + c * 32, lda);
      _tile_dpbf16ps(2, 5, 6);
      if (TN == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, tmp, 64);
  if (TN == 2) _tile_stored(1, tmp + 256, 64);
  if (TM == 2) _tile_stored(2, tmp + 512, 64);
  if (TM == 2 && TN == 2) _tile_stored(3, tmp + 768, 64);
}

// y[rows, nr] (+ bias) from a C tile [16, 16] (row stride 16)
inline void amx_write(float* y, int64_t ldy, const float* t, int rows, const float* bias, int nr) {
  const __mmask16 mk = static_cast<__mmask16>((1u << nr) - 1u);
  const __m512 bv = bias ? _mm512_maskz_loadu_ps(mk, bias) : _mm512_setzero_ps();
  for (int i = 0; i < rows; i++) _mm512_mask_storeu_ps(y + i * ldy, mk, _mm512_add_ps(_mm512_load_ps(t + 16 * i), bv));
}

// x: bf16 [Mp, K] (Mp = M rounded up to 16, zero rows after M), panels bf16; K % 32 == 0
__attribute__((target("amx-tile,amx-bf16"))) void amx_run(float* y, const uint16_t* x, const uint16_t* pb,
                                                          const float* bias, int64_t M, int64_t N, int64_t K) {
  const int64_t P = packed_panels(N), G = (P + 1) / 2, Mp = (M + 15) / 16 * 16, Kc = K / 32, ps = K * PNR;
  const int64_t lda = K * 2;  // bytes per row of x
#pragma omp parallel
  {
    _tile_loadconfig(&kTiles);
    alignas(64) float tmp[4 * 256];
    // blocks of 32 rows × 2 panels; a thread's panel pair (≤ 2·16·K bf16) stays in L2 while the
    // row blocks pass over it
#pragma omp for schedule(static)
    for (int64_t g = 0; g < G; g++) {
      const int64_t p = 2 * g, n0 = p * PNR;
      const bool two_n = p + 1 < P;
      const uint16_t* b0 = pb + p * ps;
      const uint16_t* b1 = b0 + ps;
      const float* bb = bias ? bias + n0 : nullptr;
      const int nr0 = static_cast<int>(std::min<int64_t>(PNR, N - n0));
      const int nr1 = two_n ? static_cast<int>(std::min<int64_t>(PNR, N - n0 - PNR)) : 0;
      for (int64_t m = 0; m < Mp; m += 32) {
        const bool two_m = m + 16 < Mp;
        const uint16_t* a0 = x + m * K;
        if (two_m && two_n)
          amx_block<2, 2>(a0, lda, b0, b1, Kc, tmp);
        else if (two_m)
          amx_block<2, 1>(a0, lda, b0, b1, Kc, tmp);
        else if (two_n)
          amx_block<1, 2>(a0, lda, b0, b1, Kc, tmp);
        else
          amx_block<1, 1>(a0, lda, b0, b1, Kc, tmp);
        for (int h = 0; h < (two_m ? 2 : 1); h++) {
          const int rows = static_cast<int>(std::min<int64_t>(16, M - m - 16 * h));
          float* yr = y + (m + 16 * h) * N + n0;
          amx_write(yr, N, tmp + 512 * h, rows, bb, nr0);
          if (two_n) amx_write(yr + PNR, N, tmp + 512 * h + 256, rows, bb ? bb + PNR : nullptr, nr1);
        }
      }
    }
    _tile_release();
  }
}
#endif
}  // namespace

void packed_gemm(float* y, const float* x, const float* panels, const float* bias, int64_t M, int64_t N, int64_t K) {
  run(y, x, nullptr, panels, nullptr, bias, M, N, K);
}

void packed_gemm(float* y, const float* x, const uint16_t* panels, const float* bias, int64_t M, int64_t N, int64_t K) {
  // x rounded to bf16 once per call, in the form this build's kernel reads: k-pairs (vdpbf16ps)
  // or the rounded values widened back to fp32 (the fma paths)
  const int64_t Kh = (K + 1) / 2;
#if defined(GPG_PACKED_AMX)
  // the AMX path reads 16 rows at a time: zero rows pad x to a multiple of 16
  const bool amx = K % 32 == 0 && g_amx_on.load() && amx_available();
  std::vector<uint32_t> pairs(static_cast<size_t>((amx ? (M + 15) / 16 * 16 : M) * Kh));
  std::vector<float> wide;
#elif defined(__AVX512F__) && defined(__AVX512BF16__)
  std::vector<uint32_t> pairs(static_cast<size_t>(M * Kh));
  std::vector<float> wide;
#else
  std::vector<uint32_t> pairs;
  std::vector<float> wide(static_cast<size_t>(M * 2 * Kh));
#endif
  const bool as_pairs = !pairs.empty();
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; m++)
    for (int64_t kk = 0; kk < Kh; kk++) {
      const uint16_t lo = f32_to_bf16(x[m * K + 2 * kk]);
      const uint16_t hi = 2 * kk + 1 < K ? f32_to_bf16(x[m * K + 2 * kk + 1]) : 0;
      if (as_pairs)
        pairs[m * Kh + kk] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
      else {
        wide[m * 2 * Kh + 2 * kk] = bf16_to_f32(lo);
        wide[m * 2 * Kh + 2 * kk + 1] = bf16_to_f32(hi);
      }
    }
#if defined(GPG_PACKED_AMX)
  if (amx) {
    amx_run(y, reinterpret_cast<const uint16_t*>(pairs.data()), panels, bias, M, N, K);
    return;
  }
#endif
  const Bf16X xb{pairs.data(), wide.data()};
  run(y, x, &xb, nullptr, panels, bias, M, N, K);
}

#if defined(GPG_PACKED_AMX)
namespace {
__attribute__((target("amx-tile,amx-bf16"))) double amx_peak_run(int64_t iters) {
  const auto t0 = std::chrono::steady_clock::now();
  int threads = 1;
#pragma omp parallel
  {
#pragma omp single
    threads = omp_get_num_threads();
    _tile_loadconfig(&kTiles);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (int64_t i = 0; i < iters; i++) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_release();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // one TDPBF16PS: 16 × 16 outputs × 32 products, 2 FLOPs each
  return static_cast<double>(threads) * static_cast<double>(iters) * 4 * 16 * 16 * 32 * 2 / s / 1e9;
}
}  // namespace
#endif

double amx_peak_gflops(int64_t iters) {
#if defined(GPG_PACKED_AMX)
  if (!amx_available()) return 0;
  return amx_peak_run(iters);
#else
  (void)iters;
  return 0;
#endif
}

bool packed_amx(int mode) {
#if defined(GPG_PACKED_AMX)
  if (mode >= 0) g_amx_on.store(mode == 1);
  return g_amx_on.load() && amx_available();
#else
  (void)mode;
  return false;
#endif
}

}  // namespace gpg
