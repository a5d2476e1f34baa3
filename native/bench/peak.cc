// The machine's fp32 FMA peak: every OpenMP thread runs a register-only AVX-512 (AVX2, or portable) FMA loop
// with enough independent accumulators to hide FMA latency. No memory traffic, so the result is
// cores x clock x FMA width x 2, which `gpg-rl bench` uses as the denominator for MFU and GEMM ratios.
// And the memory bandwidth: all threads stream-read a buffer far larger than the caches, the bound
// for weight-streaming decode. Benchmark-only (addon.bench); no tensors, nothing saved.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // (x86 only: the portable paths need no intrinsics, e.g. on arm64)
#endif
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "bench.h"

namespace gpg {

#if defined(__AVX512F__)
__attribute__((noinline)) static float fma_loop(int64_t iters) {
  // distinct starting values: identical chains would be merged by the compiler into one
  __m512 a0 = _mm512_set1_ps(1.00f), a1 = _mm512_set1_ps(1.01f), a2 = _mm512_set1_ps(1.02f), a3 = _mm512_set1_ps(1.03f),
         a4 = _mm512_set1_ps(1.04f), a5 = _mm512_set1_ps(1.05f), a6 = _mm512_set1_ps(1.06f), a7 = _mm512_set1_ps(1.07f),
         a8 = _mm512_set1_ps(1.08f), a9 = _mm512_set1_ps(1.09f), a10 = _mm512_set1_ps(1.10f),
         a11 = _mm512_set1_ps(1.11f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; i++) {
    a0 = _mm512_fmadd_ps(a0, m, c);
    a1 = _mm512_fmadd_ps(a1, m, c);
    a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c);
    a4 = _mm512_fmadd_ps(a4, m, c);
    a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c);
    a7 = _mm512_fmadd_ps(a7, m, c);
    a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c);
    a10 = _mm512_fmadd_ps(a10, m, c);
    a11 = _mm512_fmadd_ps(a11, m, c);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  return _mm512_reduce_add_ps(s);
}
static constexpr int kLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
__attribute__((noinline)) static float fma_loop(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(1.00f), a1 = _mm256_set1_ps(1.01f), a2 = _mm256_set1_ps(1.02f), a3 = _mm256_set1_ps(1.03f),
         a4 = _mm256_set1_ps(1.04f), a5 = _mm256_set1_ps(1.05f), a6 = _mm256_set1_ps(1.06f), a7 = _mm256_set1_ps(1.07f),
         a8 = _mm256_set1_ps(1.08f), a9 = _mm256_set1_ps(1.09f), a10 = _mm256_set1_ps(1.10f),
         a11 = _mm256_set1_ps(1.11f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; i++) {
    a0 = _mm256_fmadd_ps(a0, m, c);
    a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c);
    a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c);
    a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    a10 = _mm256_fmadd_ps(a10, m, c);
    a11 = _mm256_fmadd_ps(a11, m, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float o[8];
  _mm256_storeu_ps(o, s);
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}
static constexpr int kLanes = 8;
#else
// Portable (arm64 NEON, any other target): GCC vector extensions, 4 lanes, 12 accumulators; the
// compiler contracts a * m + c into one FMA per lane (fmla on arm64).
typedef float v4f __attribute__((vector_size(16)));
__attribute__((noinline)) static float fma_loop(int64_t iters) {
  v4f a[12];
  for (int j = 0; j < 12; j++) a[j] = v4f{} + (1.0f + 0.01f * j);
  const v4f m = v4f{} + 0.999999f, c = v4f{} + 1e-7f;
  for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = a[j] * m + c;
  v4f s = v4f{};
  for (int j = 0; j < 12; j++) s += a[j];
  return s[0] + s[1] + s[2] + s[3];
}
static constexpr int kLanes = 4;
#endif

// { gflops, threads, lanes } of `iters` iterations per thread
FmaPeak fma_peak(int64_t iters) {
  int threads = omp_get_max_threads();
  volatile float sink = 0;
  fma_loop(iters / 10);  // warm up clocks
  auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : sink)
  { sink += fma_loop(iters); }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double flops = 2.0 * 12 * kLanes * static_cast<double>(iters) * threads;
  return FmaPeak{flops / s / 1e9, threads, kLanes};
}

// GB/s: all threads stream-read a buffer far larger than the caches (4 independent vector
// accumulators per thread), best of `reps`: the bound for weight-streaming decode.
double mem_bandwidth(int64_t bytes, int64_t reps) {
  int64_t n = (bytes / 4 / 64) * 64;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * 4));
  if (!buf) throw OpError("out of memory");
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) buf[i] = 1.0f;  // first touch by the threads that read it
  double best = 0;
  volatile float sink = 0;
  for (int64_t r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
#if defined(__AVX512F__)
      __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(buf + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(buf + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(buf + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(buf + i + 48));
      }
      total += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#else
      float t = 0;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i++) t += buf[i];
      total += t;
#endif
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    best = std::max(best, n * 4.0 / s / 1e9);
  }
  std::free(buf);
  return best;
}

}  // namespace gpg
