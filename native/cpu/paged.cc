// Paged KV cache for the rollout engine (vLLM's PagedAttention layout, arXiv:2309.06180): keys and
// values of every sequence live in fixed-size blocks of one pool per layer, and a sequence's block
// table maps its positions to blocks, so sequences that share a prompt share its blocks (no copy)
// and a finished sequence's blocks go straight back to the pool.
//
//   pool (k or v)  [S, Hkv, D]        S = blocks · bs slots; slot = table[b, s / bs] · bs + s % bs
//   table          int32 [B, max_blocks]
//   ctx            int32 [B]          number of keys of row b (its positions 0 .. ctx[b]-1 are filled)
//   q, out         [B, Tq, H, D]      query i of row b sits at position ctx[b] - Tq + i
//
// paged_kv_write scatters n new key/value rows into their slots (written with "="); paged_attention_forward
// is causal GQA attention of each query over its own row's keys s <= its position (head h reads kv
// head h / (H / Hkv)), with an online softmax over keys (scores never whole). No padding: each row
// has its own length. No backward: decoding runs without gradients, nothing is saved.
// A task takes every query vector of one row that reads one kv head (GQA: the group's heads, and
// for prefill several positions), ≤ 16 vectors, so each key and value row is loaded once for all of
// them; scores are lane-parallel dot products over D (AVX-512 for D = 64 and 128), exp the
// vectorisable vexp. Every output element is still computed by one thread in a fixed key order,
// alone (see paged_task), so a row's result does not depend on which other rows share the call,
// nor on the thread count.
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common.h"
#include "kernels.h"

namespace gpg {

// kpool/vpool [S, row] = k/v [n, row] at slots int32 [n] (row = Hkv·D); throws on a slot outside [0, S).
void paged_kv_write(float* kpool, float* vpool, const float* k, const float* v, const int32_t* slots, int64_t n,
                    int64_t S, int64_t row) {
  for (int64_t i = 0; i < n; i++)
    if (slots[i] < 0 || slots[i] >= S)
      throw OpError("slot " + std::to_string(slots[i]) + " of row " + std::to_string(i) + " is outside the pool of " +
                    std::to_string(S) + " slots");
#pragma omp parallel for schedule(static) if (n * row > 65536)
  for (int64_t i = 0; i < n; i++) {
    std::memcpy(kpool + slots[i] * row, k + i * row, static_cast<size_t>(row) * sizeof(float));
    std::memcpy(vpool + slots[i] * row, v + i * row, static_cast<size_t>(row) * sizeof(float));
  }
}

namespace {

constexpr int64_t CHUNK = 64;  // keys scored per pass of the online softmax (fixed key positions 0, 64, …)
constexpr int64_t RMAX = 16;   // query vectors (heads × positions of one kv head) per task

// One task: the R = ni · nh query vectors of row b that read kv head g — heads h0 … h0 + nh − 1 of
// query positions i0 … i0 + ni − 1 — against that row's keys, one key chunk at a time: each
// chunk's K and V rows are read once for all R vectors (from L1), not once per head. Vector r still
// runs alone in a fixed order over its own keys 0 … nk_r − 1: its scores, its chunk maxima, its
// running max m, normaliser l and accumulator, exactly as if no other vector were in the task (a
// chunk past its last key is skipped, keys past it inside its last chunk get p = 0 exactly), so
// the output does not depend on the task's other vectors, the batch or the thread count.
template <int DT>
void paged_task(float* out, const float* q, const float* kpool, const float* vpool, const int32_t* tb, int64_t ctxb,
                int64_t b, int64_t g, int64_t h0, int64_t nh, int64_t i0, int64_t ni, int64_t Tq, int64_t H,
                int64_t Hkv, int64_t Drt, int64_t bs, float scale, float* ws) {
  const int64_t D = DT > 0 ? DT : Drt, row = Hkv * D, R = ni * nh;
  float* sc = ws;                  // [R, CHUNK] scores, then probabilities
  float* acc = ws + RMAX * CHUNK;  // [R, D]
  const float* kbase = kpool + g * D;
  const float* vbase = vpool + g * D;
  float m[RMAX], l[RMAX];
  int64_t nk[RMAX];
  const float* qv[RMAX];
  for (int64_t r = 0; r < R; r++) {
    const int64_t i = i0 + r / nh, h = h0 + r % nh;
    nk[r] = ctxb - Tq + i + 1;  // keys 0 .. position
    qv[r] = q + ((b * Tq + i) * H + h) * D;
    m[r] = -INFINITY;
    l[r] = 0.f;
  }
  std::fill(acc, acc + R * D, 0.f);
  const int64_t maxnk = nk[R - 1];
  const float* krow[CHUNK];
  const float* vrow[CHUNK];
  // the next chunk's K and V rows are fetched while this one is computed (its blocks are scattered
  // in the pool, so the hardware prefetcher would restart at every block)
  auto prefetch = [&](int64_t s0) {
    const int64_t n = std::min(CHUNK, maxnk - s0);
    for (int64_t j = 0; j < n; j++) {
      const int64_t s = s0 + j, slot = static_cast<int64_t>(tb[s / bs]) * bs + s % bs;
      const char* kp = reinterpret_cast<const char*>(kbase + slot * row);
      const char* vp = reinterpret_cast<const char*>(vbase + slot * row);
      for (int64_t c = 0; c < D * 4; c += 64) {
        __builtin_prefetch(kp + c);
        __builtin_prefetch(vp + c);
      }
    }
  };
  prefetch(0);
  for (int64_t s0 = 0; s0 < maxnk; s0 += CHUNK) {
    const int64_t n = std::min(CHUNK, maxnk - s0);
    for (int64_t j = 0; j < n; j++) {
      const int64_t s = s0 + j, slot = static_cast<int64_t>(tb[s / bs]) * bs + s % bs;
      krow[j] = kbase + slot * row;
      vrow[j] = vbase + slot * row;
    }
    if (s0 + CHUNK < maxnk) prefetch(s0 + CHUNK);
    for (int64_t r = 0; r < R; r++) {
      if (nk[r] <= s0) continue;  // this vector's keys ended before the chunk
      const int64_t nr = std::min(n, nk[r] - s0);
      float* sr = sc + r * CHUNK;
      float* ar = acc + r * D;
      const float* x = qv[r];
      // scores of keys s0 … s0 + nr − 1
#if defined(__AVX512F__)
      if constexpr (DT > 0 && DT % 16 == 0) {
        constexpr int U = DT / 16;
        __m512 xq[U];
#pragma GCC unroll 8
        for (int u = 0; u < U; u++) xq[u] = _mm512_loadu_ps(x + 16 * u);
        for (int64_t j = 0; j < nr; j++) {
          __m512 t = _mm512_mul_ps(xq[0], _mm512_loadu_ps(krow[j]));
#pragma GCC unroll 8
          for (int u = 1; u < U; u++) t = _mm512_fmadd_ps(xq[u], _mm512_loadu_ps(krow[j] + 16 * u), t);
          sr[j] = _mm512_reduce_add_ps(t) * scale;
        }
      } else
#endif
      {
        for (int64_t j = 0; j < nr; j++) {
          const float* kv = krow[j];
          float d = 0.f;
#pragma omp simd reduction(+ : d)
          for (int64_t e = 0; e < D; e++) d += x[e] * kv[e];
          sr[j] = d * scale;
        }
      }
      float cm = -INFINITY;
      for (int64_t j = 0; j < nr; j++) cm = std::max(cm, sr[j]);
      const float mn = std::max(m[r], cm);
      const float corr = vexp(m[r] - mn);  // 0 on the first chunk (m = -inf)
      m[r] = mn;
#pragma omp simd
      for (int64_t j = 0; j < nr; j++) sr[j] = vexp(sr[j] - mn);
      float ps = 0.f;
      for (int64_t j = 0; j < nr; j++) ps += sr[j];
      l[r] = l[r] * corr + ps;
      // acc = corr · acc + Σ_j p_j · v_j
#if defined(__AVX512F__)
      if constexpr (DT > 0 && DT % 16 == 0) {
        constexpr int U = DT / 16;
        __m512 a[U];
        const __m512 c = _mm512_set1_ps(corr);
#pragma GCC unroll 8
        for (int u = 0; u < U; u++) a[u] = _mm512_mul_ps(_mm512_loadu_ps(ar + 16 * u), c);
        for (int64_t j = 0; j < nr; j++) {
          const __m512 p = _mm512_set1_ps(sr[j]);
#pragma GCC unroll 8
          for (int u = 0; u < U; u++) a[u] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vrow[j] + 16 * u), a[u]);
        }
#pragma GCC unroll 8
        for (int u = 0; u < U; u++) _mm512_storeu_ps(ar + 16 * u, a[u]);
      } else
#endif
      {
#pragma omp simd
        for (int64_t e = 0; e < D; e++) ar[e] *= corr;
        for (int64_t j = 0; j < nr; j++) {
          const float p = sr[j];
          const float* vv = vrow[j];
#pragma omp simd
          for (int64_t e = 0; e < D; e++) ar[e] += p * vv[e];
        }
      }
    }
  }
  for (int64_t r = 0; r < R; r++) {
    const int64_t i = i0 + r / nh, h = h0 + r % nh;
    float* o = out + ((b * Tq + i) * H + h) * D;
    const float inv = 1.f / l[r];
    for (int64_t e = 0; e < D; e++) o[e] = acc[r * D + e] * inv;
  }
}

}  // namespace

void paged_attention_forward(float* out, const float* q, const float* kpool, const float* vpool, const int32_t* table,
                             const int32_t* ctx, int64_t B, int64_t Tq, int64_t H, int64_t Hkv, int64_t D, int64_t bs,
                             int64_t max_blocks, int64_t num_blocks, float scale) {
  for (int64_t b = 0; b < B; b++) {
    if (ctx[b] < Tq || ctx[b] > max_blocks * bs)
      throw OpError("row " + std::to_string(b) + " has " + std::to_string(ctx[b]) + " keys; need " +
                    std::to_string(Tq) + " <= keys <= max_blocks·block_size = " + std::to_string(max_blocks * bs));
    const int64_t used = (ctx[b] + bs - 1) / bs;
    for (int64_t j = 0; j < used; j++) {
      const int32_t blk = table[b * max_blocks + j];
      if (blk < 0 || blk >= num_blocks)
        throw OpError("block table row " + std::to_string(b) + " entry " + std::to_string(j) + " = " +
                      std::to_string(blk) + " is outside the pool of " + std::to_string(num_blocks) + " blocks");
    }
  }
  // tasks: (row b, kv head g, slice of ≤ RMAX of its group's heads, positions): as many positions as
  // keep R = positions · heads ≤ RMAX
  const int64_t group = H / Hkv, hs = std::min(group, RMAX), ns = (group + hs - 1) / hs;
  const int64_t per = std::max<int64_t>(1, RMAX / hs), pt = (Tq + per - 1) / per, ntask = B * Hkv * ns * pt;
  auto body = [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
#pragma omp parallel
    {
      std::vector<float> ws(static_cast<size_t>(RMAX * CHUNK + RMAX * D));
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < ntask; t++) {
        const int64_t it = pt - 1 - t / (B * Hkv * ns), rest = t % (B * Hkv * ns);  // last (longest) positions first
        const int64_t b = rest / (Hkv * ns), g = (rest / ns) % Hkv, sl = rest % ns;
        const int64_t i0 = it * per, ni = std::min(per, Tq - i0);
        const int64_t h0 = g * group + sl * hs, nh = std::min(hs, group - sl * hs);
        paged_task<DT>(out, q, kpool, vpool, table + b * max_blocks, ctx[b], b, g, h0, nh, i0, ni, Tq, H, Hkv, D, bs,
                       scale, ws.data());
      }
    }
  };
  if (D == 64)
    body(std::integral_constant<int, 64>());
  else if (D == 128)
    body(std::integral_constant<int, 128>());
  else
    body(std::integral_constant<int, 0>());
}

}  // namespace gpg
