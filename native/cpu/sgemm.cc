// fp32 GEMM for AVX-512, ours (the training and prefill products; gemm.cc dispatches here
// for float32 and keeps oneDNN for bf16 and for builds without AVX-512).
//
//   C = alpha * op(A) @ op(B) (+ bias) + beta * C      op(A) [M, K], op(B) [K, N], C [M, N]
//   A stored [M, K] (transA: [K, M]), B stored [K, N] (transB: [N, K] — the nn.Linear layout).
//
// Why not oneDNN here: oneDNN 2.6's brgemm measured 80–84% of this machine's FMA peak at 2048³
// (Zen 5, 2 cores) whatever the weight format; this kernel measures 87–95% (npm run bench, peak
// and GEMM measured in alternation).
//
// The Goto/BLIS algorithm, llm.c-sized:
//   for jc (nc columns) · for pc (kc depth): pack op(B)[pc, jc] into NR-wide panels (threads share)
//     for ic (row blocks of ≤ mc, claimed by the threads as they ask): pack op(A)[ic, pc] into
//                                      MR-tall panels (once per call when it fits, see A_KEEP)
//       for each B panel · for each A panel: 14×32 micro-kernel, 28 zmm accumulators.
// The micro-kernel broadcasts one A value per row and multiplies two B vectors: 28 FMAs per two
// 512-bit loads and 14 scalar broadcasts, which keeps both FMA pipes busy (a 512-bit load per
// FMA caps at half the peak here). Packing uses in-register 16×16 transposes, so every layout
// (all four transposes) packs at load/store speed. No backward: the backward of a product is
// products (gemm.cc). The first depth block writes C (alpha, bias, beta·C; C is not read
// when beta = 0) and later depth blocks (K > 2048) accumulate into it.
//
// Threads share out the row blocks (or, for short wide products, the columns) of C; each C element
// is computed by one thread in a fixed k order, so results are bitwise identical for any thread
// count and any schedule.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // (x86 only: the portable paths need no intrinsics, e.g. on arm64)
#endif
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <utility>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernels.h"

namespace gpg {

#if defined(__AVX512F__)
namespace {

constexpr int MR = 14, NR = 32;  // micro-tile: 14 rows × 2 zmm
// Depth blocks of up to KC: a deep block means C is read and written once per KC of depth (C
// tiles streaming from L3 cost ~20% at KC = 512; with KC = K, never read at all when beta = 0).
// The A block (mc × kc, ~256 KB) and one B panel (kc × 32, ≤ 256 KB) sit in L2; the packed B
// block (kc × nc) is kept near 4 MB (L3): mc and nc follow from kc.
constexpr int64_t KC = 2048, A_BLOCK = int64_t{1} << 16, NC_MIN = 512, NC_MAX = 4096, B_BLOCK = int64_t{1} << 20;
// When N spans several nc blocks, all of packed A (rows × K; up to 32 MB in all) is kept instead
// of packing the same A blocks again for every column block.
constexpr int64_t A_KEEP = int64_t{1} << 23;

struct Gemm {
  bool tA, tB;
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  const float* bias;
};

inline __mmask16 lanes(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1); }

// acc = Ap (ROWS × kc of an MR-row panel, k-major) · Bp (kc × NR);
// C = alpha·acc + (first ? bias + beta·C : C) on ROWS rows and the first nr columns (FULLN: all 32).
// ROWS < MR is the last, partial row panel: it costs ROWS/MR of a full tile, not a full tile.
// Meanwhile the pf_lines cache lines from pf on (≤ kc/16) are fetched into L2, one per 16 k.
template <int ROWS, bool FULLN>
inline void micro(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int64_t ldc, int nr,
                  float alpha, float beta, bool first, const float* bias, const char* pf, int64_t pf_lines) {
  __m512 c0[ROWS], c1[ROWS];
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; i++) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
  }
  // C is needed at the end: fetch it into L2 now and into L1 shortly before the end (fetched into
  // L1 at the start, it is evicted by the A and B streams; measured +7% at 2048³).
  for (int i = 0; i < ROWS; i++) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 16), _MM_HINT_T1);
  }
  for (int64_t k = 0; k < kc; k++) {
    if (k == kc - 48)
      for (int i = 0; i < ROWS; i++) {
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 16), _MM_HINT_T0);
      }
    if ((k & 15) == 0 && (k >> 4) < pf_lines) _mm_prefetch(pf + (k >> 4) * 64, _MM_HINT_T1);
    const __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
    _mm_prefetch(reinterpret_cast<const char*>(Bp + 16 * NR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
      const __m512 a = _mm512_set1_ps(Ap[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    Ap += MR;
    Bp += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __mmask16 m0 = FULLN ? 0xffff : lanes(nr), m1 = FULLN ? 0xffff : lanes(nr - 16);
  const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; i++) {
    float* c = C + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, c0[i]), r1 = _mm512_mul_ps(va, c1[i]);
    if (!first) {
      r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, c));
      r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, c + 16));
    } else {
      r0 = _mm512_add_ps(r0, bias0);
      r1 = _mm512_add_ps(r1, bias1);
      if (beta != 0.0f) {
        r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
        r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
      }
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    _mm512_mask_storeu_ps(c + 16, m1, r1);
  }
}

using MicroFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int, float, float, bool, const float*,
                         const char*, int64_t);
template <int... R>
constexpr std::array<MicroFn, 2 * MR> micro_table(std::integer_sequence<int, R...>) {
  return {&micro<R + 1, true>..., &micro<R + 1, false>...};
}
// micros[(rows - 1) + (full columns ? 0 : MR)]
constexpr std::array<MicroFn, 2 * MR> micros = micro_table(std::make_integer_sequence<int, MR>{});

// In-register 16×16 transpose: r[i] holds row i on entry and column i on exit.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // u[4q + c], 128-bit lane L = rows 4q..4q+3 of column 4L + c
  for (int c = 0; c < 4; c++) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88),
                 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

// n ≤ 16 rows of kc contiguous values (row i at src + i·ld) → dst[k·dst_ld + i] for the lanes in
// `keep`; rows ≥ n read as zero.
inline void pack_transposed(const float* src, int64_t ld, int n, int64_t kc, float* dst, int64_t dst_ld,
                            __mmask16 keep) {
  __m512 r[16];
  for (int64_t k = 0; k < kc; k += 16) {
    const int rem = static_cast<int>(std::min<int64_t>(16, kc - k));
    const __mmask16 lm = lanes(rem);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = i < n ? _mm512_maskz_loadu_ps(lm, src + i * ld + k) : _mm512_setzero_ps();
    transpose16(r);
    for (int kk = 0; kk < rem; kk++) _mm512_mask_storeu_ps(dst + (k + kk) * dst_ld, keep, r[kk]);
  }
}

// Rows [i0, i0+mc) × depth [p0, p0+kc) of op(A) → MR-row panels, Ap[panel][k][row], zero-padded.
void pack_A(const Gemm& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* Ap) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    float* dst = Ap + ir * kc;
    if (g.tA) {  // (i, k) at A[k·lda + i]: each k holds the panel's rows contiguously
      const __mmask16 lm = lanes(mr);
      const float* src = g.A + p0 * g.lda + i0 + ir;
      for (int64_t k = 0; k < kc; k++)
        _mm512_mask_storeu_ps(dst + k * MR, lanes(MR), _mm512_maskz_loadu_ps(lm, src + k * g.lda));
    } else {  // (i, k) at A[i·lda + k]: transpose
      pack_transposed(g.A + (i0 + ir) * g.lda + p0, g.lda, mr, kc, dst, MR, lanes(MR));
    }
  }
}

// Columns [j0, j0+nr) × depth [p0, p0+kc) of op(B) → one NR-wide panel, Bp[k][col], zero-padded.
void pack_B(const Gemm& g, int64_t j0, int nr, int64_t p0, int64_t kc, float* dst) {
  if (!g.tB) {  // (k, j) at B[k·ldb + j]: rows copy straight in
    const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
    const float* src = g.B + p0 * g.ldb + j0;
    for (int64_t k = 0; k < kc; k++) {
      _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src + k * g.ldb));
      _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + k * g.ldb + 16));
    }
  } else {  // (k, j) at B[j·ldb + k]: two 16-column transposes
    const float* src = g.B + j0 * g.ldb + p0;
    pack_transposed(src, g.ldb, std::min(nr, 16), kc, dst, NR, 0xffff);
    pack_transposed(src + 16 * g.ldb, g.ldb, std::max(nr - 16, 0), kc, dst + 16, NR, 0xffff);
  }
}

// Packing buffers of the calling thread: the packed B block shared by its OpenMP team, the kept
// packed A (see A_KEEP), also shared, and one A block per team member otherwise; all allocated
// before the parallel region (an allocation failure is an OpError here, never an exception
// inside OpenMP).
thread_local Scratch tl_B, tl_Akept;
thread_local std::vector<std::unique_ptr<Scratch>> tl_A;

// C rows [ic, ic+mc) × B panels [q0, q1) of column block jc and depth block pc, with op(A)'s
// block packed at Ap (packed here first when `pack`). Meanwhile the next_lines cache lines from
// next_A on (the packed A of the block this thread takes next) are fetched into L2, spread over
// the tiles.
void block(const Gemm& g, int64_t ic, int64_t mc, int64_t jc, int64_t nc, int64_t q0, int64_t q1, int64_t pc,
           int64_t kc, float* Ap, bool pack, const float* Bp, const char* next_A, int64_t next_lines) {
  if (pack) pack_A(g, ic, mc, pc, kc, Ap);
  const bool first = pc == 0;
  for (int64_t q = q0; q < q1; q++) {
    const int nr = static_cast<int>(std::min<int64_t>(NR, nc - q * NR));
    const float* bp = Bp + q * NR * kc;
    const float* bias = g.bias && first ? g.bias + jc + q * NR : nullptr;
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
      float* c = g.C + (ic + ir) * g.ldc + jc + q * NR;
      const int64_t pf_lines = std::min(kc / 16, next_lines);
      if (mr == MR && nr == NR)
        micro<MR, true>(kc, Ap + ir * kc, bp, c, g.ldc, nr, g.alpha, g.beta, first, bias, next_A, pf_lines);
      else
        micros[(mr - 1) + (nr == NR ? 0 : MR)](kc, Ap + ir * kc, bp, c, g.ldc, nr, g.alpha, g.beta, first, bias, next_A,
                                               pf_lines);
      next_A += pf_lines * 64;
      next_lines -= pf_lines;
    }
  }
}

void run(const Gemm& g) {
  const int64_t mpanels = (g.M + MR - 1) / MR;
  const int64_t work = g.M * g.N * g.K;
  const int T = work < (int64_t{1} << 18) ? 1 : omp_get_max_threads();
  // Equal depth blocks (K = 2100 is two blocks of 1056, not 2048 + 52), multiples of 16.
  const int64_t kblocks = (g.K + KC - 1) / KC;
  const int64_t kcmax = std::min<int64_t>(g.K, ((g.K + kblocks - 1) / kblocks + 15) / 16 * 16);
  const int64_t NC = std::clamp<int64_t>(B_BLOCK / kcmax / NR * NR, NC_MIN, NC_MAX);
  const int64_t ncmax = std::min<int64_t>(NC, g.N);
  const int64_t MC = std::clamp<int64_t>(A_BLOCK / kcmax / MR * MR, MR, 12 * MR);
  float* Bp = tl_B.get(static_cast<size_t>(kcmax) * ((ncmax + NR - 1) / NR) * NR, "gemm");
  // Row blocks are handed out to threads as they ask (so they finish together whatever their
  // cores' neighbours do: a static split left one thread waiting 1–4% of the time at 2048³),
  // unless there are too few rows for every thread: then the columns are split.
  const bool split_rows = mpanels >= 2 * T || T == 1;
  const int64_t rows_pad = mpanels * MR;
  const bool keepA = g.N > NC && rows_pad * g.K * (split_rows ? 1 : T) <= A_KEEP;
  float* Akept = keepA && split_rows ? tl_Akept.get(static_cast<size_t>(rows_pad * g.K), "gemm") : nullptr;
  while (static_cast<int>(tl_A.size()) < T) tl_A.push_back(std::make_unique<Scratch>());
  std::vector<float*> Aps(T);
  if (!keepA || !split_rows)
    for (int t = 0; t < T; t++) Aps[t] = tl_A[t]->get(static_cast<size_t>(keepA ? rows_pad * g.K : MC * kcmax), "gemm");
  // Row blocks: runs of up to MC/MR panels, claimed from a counter that runs on over all
  // (jc, pc) phases (phase ph owns [ph·mpanels, (ph+1)·mpanels)); a claim takes
  // remaining/(2·threads) panels, so the last blocks of a phase shrink to one panel.
  std::atomic<int64_t> claimed{0};
  const int64_t block_panels = MC / MR;
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t phase = 0;
    // first panel and number of panels of a claimed row block ({·, 0}: the phase is done)
    auto claim = [&]() -> std::pair<int64_t, int64_t> {
      const int64_t base = phase * mpanels;
      int64_t v = claimed.load(std::memory_order_relaxed);
      for (;;) {
        const int64_t rem = base + mpanels - v;
        if (rem <= 0) return {0, 0};
        const int64_t n = std::clamp<int64_t>(rem / (2 * nt), 1, block_panels);
        if (claimed.compare_exchange_weak(v, v + n, std::memory_order_relaxed)) return {v - base, n};
      }
    };
    for (int64_t jc = 0; jc < g.N; jc += NC) {
      const int64_t nc = std::min<int64_t>(NC, g.N - jc), npan = (nc + NR - 1) / NR;
      for (int64_t pc = 0; pc < g.K; pc += kcmax) {
        const int64_t kc = std::min<int64_t>(kcmax, g.K - pc);
#pragma omp for schedule(static)
        for (int64_t q = 0; q < npan; q++)
          pack_B(g, jc + q * NR, static_cast<int>(std::min<int64_t>(NR, nc - q * NR)), pc, kc, Bp + q * NR * kc);
        // Kept A: the panel starting at row i of depth block pc lies at Akept + pc·rows_pad + i·kc
        // whatever the row blocks, packed at jc = 0 by the thread that computes it then and read
        // by any thread after (in column-split mode each thread keeps its own copy of the few rows).
        auto A_of = [&](int64_t ic) {
          return keepA ? (split_rows ? Akept : Aps[t]) + pc * rows_pad + ic * kc : Aps[t];
        };
        if (split_rows) {
          // The next block is claimed before this one is computed, so that a kept A block can be
          // fetched while this one computes.
          for (auto cur = claim(); cur.second > 0;) {
            const auto next = claim();
            const int64_t ic = cur.first * MR, mc = std::min(cur.second * MR, g.M - ic);
            const bool prefetch = keepA && jc > 0 && next.second > 0;
            block(g, ic, mc, jc, nc, 0, npan, pc, kc, A_of(ic), !keepA || jc == 0, Bp,
                  prefetch ? reinterpret_cast<const char*>(A_of(next.first * MR)) : nullptr,
                  prefetch ? next.second * MR * kc / 16 : 0);
            cur = next;
          }
          phase++;
        } else {
          const int64_t q0 = npan * t / nt, q1 = npan * (t + 1) / nt;
          for (int64_t ic = 0; ic < g.M; ic += MC) {
            const int64_t mc = std::min<int64_t>(MC, g.M - ic);
            const bool pack = keepA ? jc == 0 : q0 < q1;
            block(g, ic, mc, jc, nc, q0, q1, pc, kc, A_of(ic), pack, Bp, nullptr, 0);
          }
        }
#pragma omp barrier
      }
    }
  }
}

}  // namespace

bool sgemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
               float beta, float* C, const float* bias) {
  Gemm g{transA, transB, M, N, K, alpha, beta, A, transA ? M : K, B, transB ? K : N, C, N, bias};
  run(g);
  return true;
}
#else
bool sgemm_f32(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*, const float*) {
  return false;  // no AVX-512 in this build: gemm.cc uses oneDNN
}
#endif

}  // namespace gpg
