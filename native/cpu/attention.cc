// Causal grouped-query attention with key-padding masks, flash style (FlashAttention-2,
// Dao 2023, arXiv:2307.08691): scores are computed tile by tile (BK keys at a time) with an
// online softmax, so the T×T score matrix is never materialised; backward recomputes them.
//
// Dimension legend:
//   B     batch                      H    query heads          Hkv  key/value heads (H % Hkv == 0)
//   Tq    query rows per item        Tk   keys in use          Tkmax  key rows allocated (KV cache)
//   D     head dim                   qpos0 = Tk - Tq: position of query row 0 (decode with a cache)
// Layouts (row-major): q/out [B, Tq, H, D], k/v [B, Tkmax, Hkv, D], mask int32 [B, Tkmax] (1 real,
// 0 padding; null = all real), lse [B, H, Tq]. Query head h reads kv head h / (H / Hkv).
// Query i (position p = qpos0 + i) attends keys s <= p with mask[b, s] != 0. A query with no such
// key outputs 0 and has lse = +inf (no gradient). Hugging Face gives such rows uniform attention,
// an artefact that DESIGN §4 excludes from comparisons.
//
// Forward saves lse = m + log(l) (natural log of the softmax normaliser of scale·q·k) per
// (b, h, i). Backward (training only: Tq = Tk = Tkmax = T) writes fresh dq, dk, dv with "=" in
// two deterministic passes: (1) one task per (b, kv head, key tile) owns its dk/dv rows and sums
// over every query head of the group; (2) one task per (b, h, query tile) owns its dq rows.
// Recomputing S and dP in both passes costs ~40% more backward FLOPs than FA2 with atomics, but
// needs no float atomics and no O(T²) partial buffers.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define GPG_ATTN_AVX512 1
#endif

namespace gpg {
namespace {

constexpr int64_t BK = 64;  // keys per tile
constexpr int64_t BQ = 32;  // query rows per task (forward and dq)
constexpr int64_t RB = 8;   // query rows per outer-product block (dk/dv)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Dims {
  int64_t B, Tq, Tk, Tkmax, H, Hkv, D, qpos0;
  float scale;
};

// Per key tile: additive bias (0 or -inf for padding / beyond Tk). Returns false if all masked.
inline bool tile_bias(float* bias, const int32_t* mrow, int64_t s0, int64_t nk) {
  bool any = false;
  for (int64_t j = 0; j < BK; j++) {
    bool ok = j < nk && (!mrow || mrow[s0 + j] != 0);
    bias[j] = ok ? 0.0f : kNegInf;
    any = any || ok;
  }
  return any;
}

// dst [D][BK] = transpose of nk rows (stride `stride`) of src, zero-padded to BK columns.
inline void transpose_tile(float* dst, const float* src, int64_t stride, int64_t nk, int64_t D) {
  for (int64_t j = 0; j < nk; j++)
    for (int64_t d = 0; d < D; d++) dst[d * BK + j] = src[j * stride + d];
  for (int64_t d = 0; d < D; d++)
    for (int64_t j = nk; j < BK; j++) dst[d * BK + j] = 0.0f;
}

// s[0..BK) = Σ_d x[d] · Mt[d][0..BK) (vectorised over keys; Mt is a transposed tile). With AVX-512
// the 64 sums live in 4 zmm registers (plain loops would keep them in memory: store-bound).
template <int DT>
inline void row_scores(float* __restrict s, const float* __restrict x, const float* __restrict Mt, int64_t Drt) {
  const int64_t D = DT > 0 ? DT : Drt;
#if GPG_ATTN_AVX512
  static_assert(BK == 64, "the AVX-512 path holds 64 scores in 4 registers");
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t d = 0; d < D; d++) {
    const __m512 xd = _mm512_set1_ps(x[d]);
    const float* m = Mt + d * BK;
    a0 = _mm512_fmadd_ps(xd, _mm512_loadu_ps(m), a0);
    a1 = _mm512_fmadd_ps(xd, _mm512_loadu_ps(m + 16), a1);
    a2 = _mm512_fmadd_ps(xd, _mm512_loadu_ps(m + 32), a2);
    a3 = _mm512_fmadd_ps(xd, _mm512_loadu_ps(m + 48), a3);
  }
  _mm512_storeu_ps(s, a0);
  _mm512_storeu_ps(s + 16, a1);
  _mm512_storeu_ps(s + 32, a2);
  _mm512_storeu_ps(s + 48, a3);
#else
  float acc[BK];
  for (int64_t j = 0; j < BK; j++) acc[j] = 0.0f;
  for (int64_t d = 0; d < D; d++) {
    const float xd = x[d];
    const float* m = Mt + d * BK;
#pragma omp simd
    for (int64_t j = 0; j < BK; j++) acc[j] += xd * m[j];
  }
  for (int64_t j = 0; j < BK; j++) s[j] = acc[j];
#endif
}

// acc[0..D) = alpha·acc + Σ_{j<n} p[j] · rows[j·stride + 0..D)
template <int DT>
inline void accum_rows(float* __restrict acc, float alpha, const float* __restrict p, const float* __restrict rows,
                       int64_t stride, int64_t n, int64_t Drt) {
  const int64_t D = DT > 0 ? DT : Drt;
#if GPG_ATTN_AVX512
  if constexpr (DT > 0 && DT % 16 == 0) {
    // accumulator in DT/16 registers, two interleaved chains (even / odd keys) for FMA throughput
    constexpr int U = DT / 16;
    __m512 ae[U], ao[U];
    const __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
    for (int u = 0; u < U; u++) ae[u] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * u), al), ao[u] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 1 < n; j += 2) {
      const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
      const float *r0 = rows + j * stride, *r1 = r0 + stride;
#pragma GCC unroll 8
      for (int u = 0; u < U; u++) {
        ae[u] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(r0 + 16 * u), ae[u]);
        ao[u] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(r1 + 16 * u), ao[u]);
      }
    }
    if (j < n) {
      const __m512 p0 = _mm512_set1_ps(p[j]);
#pragma GCC unroll 8
      for (int u = 0; u < U; u++) ae[u] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(rows + j * stride + 16 * u), ae[u]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < U; u++) _mm512_storeu_ps(acc + 16 * u, _mm512_add_ps(ae[u], ao[u]));
    return;
  }
#endif
  if constexpr (DT > 0) {
    float a[DT];
    for (int64_t d = 0; d < DT; d++) a[d] = acc[d] * alpha;
    for (int64_t j = 0; j < n; j++) {
      const float pj = p[j];
      const float* r = rows + j * stride;
#pragma omp simd
      for (int64_t d = 0; d < DT; d++) a[d] += pj * r[d];
    }
    for (int64_t d = 0; d < DT; d++) acc[d] = a[d];
  } else {
    for (int64_t d = 0; d < D; d++) acc[d] *= alpha;
    for (int64_t j = 0; j < n; j++) {
      const float pj = p[j];
      const float* r = rows + j * stride;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) acc[d] += pj * r[d];
    }
  }
}

// Forward for query rows [i0, i1) of head h of item b. ws: D*BK + 2*BQ*D floats.
template <int DT>
void fwd_task(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask,
              const Dims& a, int64_t b, int64_t h, int64_t i0, int64_t i1, float* ws) {
  const int64_t D = DT > 0 ? DT : a.D;
  const int64_t kvh = h / (a.H / a.Hkv), kvrow = a.Hkv * D, nq = i1 - i0;
  const float* kb = k + b * a.Tkmax * kvrow + kvh * D;
  const float* vb = v + b * a.Tkmax * kvrow + kvh * D;
  const int32_t* mrow = mask ? mask + b * a.Tkmax : nullptr;
  float *Kt = ws, *Qs = Kt + D * BK, *Acc = Qs + BQ * D;
  float m[BQ], l[BQ];
  alignas(64) float bias[BK], s[BK];
  for (int64_t r = 0; r < nq; r++) {
    const float* qr = q + ((b * a.Tq + i0 + r) * a.H + h) * D;
    for (int64_t d = 0; d < D; d++) Qs[r * D + d] = qr[d] * a.scale, Acc[r * D + d] = 0.0f;
    m[r] = kNegInf, l[r] = 0.0f;
  }
  const int64_t kend = std::min(a.qpos0 + i1, a.Tk);  // last row sees keys < qpos0 + i1
  // Batch invariance: key tiles start at the item's first real key, so a left-padded row sums its
  // keys in the same tiles and SIMD lanes as the same row unpadded (the skipped keys are padding).
  int64_t kstart = 0;
  if (mrow)
    while (kstart < kend && mrow[kstart] == 0) kstart++;
  // Few query rows in the call (decode, Tq = 1): direct dot products beat transposing the tile for
  // each head. Chosen by the call, not the task, so a row's arithmetic never depends on its tile.
  const bool direct = a.Tq <= 2;
  for (int64_t s0 = kstart; s0 < kend; s0 += BK) {
    const int64_t nk = std::min(BK, kend - s0);
    if (!tile_bias(bias, mrow, s0, nk)) continue;
    if (!direct) transpose_tile(Kt, kb + s0 * kvrow, kvrow, nk, D);
    for (int64_t r = 0; r < nq; r++) {
      const int64_t lim = a.qpos0 + i0 + r - s0 + 1;  // causal: keys j < lim visible
      if (lim <= 0) continue;
      if (direct) {
        const float* x = Qs + r * D;
        for (int64_t j = 0; j < BK; j++) {
          float dot = 0.0f;
          if (j < nk) {
            const float* kr = kb + (s0 + j) * kvrow;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < D; d++) dot += x[d] * kr[d];
          }
          s[j] = dot;
        }
      } else {
        row_scores<DT>(s, Qs + r * D, Kt, D);
      }
      float mx = m[r];
#pragma omp simd reduction(max : mx)
      for (int64_t j = 0; j < BK; j++) {
        s[j] = j < lim ? s[j] + bias[j] : kNegInf;
        mx = std::max(mx, s[j]);
      }
      if (mx == kNegInf) continue;
      float psum = 0.0f;
#pragma omp simd reduction(+ : psum)
      for (int64_t j = 0; j < BK; j++) {
        s[j] = vexp(s[j] - mx);
        psum += s[j];
      }
      const float alpha = vexp(m[r] - mx);
      l[r] = l[r] * alpha + psum;
      m[r] = mx;
      accum_rows<DT>(Acc + r * D, alpha, s, vb + s0 * kvrow, kvrow, std::min(lim, nk), D);
    }
  }
  for (int64_t r = 0; r < nq; r++) {
    float* o = out + ((b * a.Tq + i0 + r) * a.H + h) * D;
    const bool any = l[r] > 0.0f;
    const float inv = any ? 1.0f / l[r] : 0.0f;
    for (int64_t d = 0; d < D; d++) o[d] = Acc[r * D + d] * inv;
    if (lse) lse[(b * a.H + h) * a.Tq + i0 + r] = any ? m[r] + std::log(l[r]) : std::numeric_limits<float>::infinity();
  }
}

// Recomputes, for query row x (unscaled q) / dO row g, the tile's p[j] and ds[j] = p (dp - Di).
template <int DT>
inline void p_ds(float* p, float* ds, const float* x, const float* g, const float* Kt, const float* Vt,
                 const float* bias, int64_t lim, float lse, float Di, float scale, int64_t D) {
  row_scores<DT>(p, x, Kt, D);
  row_scores<DT>(ds, g, Vt, D);
#pragma omp simd
  for (int64_t j = 0; j < BK; j++) {
    float pj = j < lim ? vexp(p[j] * scale + bias[j] - lse) : 0.0f;
    p[j] = pj;
    ds[j] = pj * (ds[j] - Di);
  }
}

// dk/dv for keys [s0, s0+nk) of kv head kvh of item b (all query heads of the group).
// ws: 4*D*BK + 2*RB*BK floats.
template <int DT>
void bwd_kv_task(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                 const float* lse, const float* Dl, const int32_t* mask, const Dims& a, int64_t b, int64_t kvh,
                 int64_t s0, float* ws) {
  const int64_t D = DT > 0 ? DT : a.D, T = a.Tq, G = a.H / a.Hkv, kvrow = a.Hkv * D;
  const int64_t nk = std::min(BK, T - s0);
  float *Kt = ws, *Vt = Kt + D * BK, *dK = Vt + D * BK, *dV = dK + BK * D, *P = dV + BK * D, *DS = P + RB * BK;
  alignas(64) float bias[BK];
  const int64_t koff = b * a.Tkmax * kvrow + kvh * D;
  for (int64_t i = 0; i < BK * D; i++) dK[i] = 0.0f, dV[i] = 0.0f;
  if (tile_bias(bias, mask ? mask + b * a.Tkmax : nullptr, s0, nk)) {
    transpose_tile(Kt, k + koff + s0 * kvrow, kvrow, nk, D);
    transpose_tile(Vt, v + koff + s0 * kvrow, kvrow, nk, D);
    for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
      for (int64_t ib = s0; ib < T; ib += RB) {
        const int64_t nr = std::min(RB, T - ib);
        const float *xs[RB], *gs[RB];
        for (int64_t r = 0; r < nr; r++) {
          const int64_t i = ib + r;
          xs[r] = q + ((b * T + i) * a.H + h) * D;
          gs[r] = dout + ((b * T + i) * a.H + h) * D;
          const float L = lse[(b * a.H + h) * T + i];
          if (std::isinf(L)) {
            for (int64_t j = 0; j < BK; j++) P[r * BK + j] = 0.0f, DS[r * BK + j] = 0.0f;
            continue;
          }
          p_ds<DT>(P + r * BK, DS + r * BK, xs[r], gs[r], Kt, Vt, bias, i - s0 + 1, L, Dl[(b * a.H + h) * T + i],
                   a.scale, D);
        }
        for (int64_t j = 0; j < nk; j++) {
          float* dvj = dV + j * D;
          float* dkj = dK + j * D;
#if GPG_ATTN_AVX512
          if constexpr (DT > 0 && DT % 16 == 0) {
            // dV[j] += Σ_r P[r][j] dO_r, dK[j] += Σ_r dS[r][j] q_r with the rows of dV/dK in registers
            constexpr int U = DT / 16;
            __m512 av[U], ak[U];
#pragma GCC unroll 8
            for (int u = 0; u < U; u++) av[u] = _mm512_loadu_ps(dvj + 16 * u), ak[u] = _mm512_loadu_ps(dkj + 16 * u);
            for (int64_t r = 0; r < nr; r++) {
              const float pr = P[r * BK + j], sr = DS[r * BK + j];
              if (pr == 0.0f && sr == 0.0f) continue;
              const __m512 pv = _mm512_set1_ps(pr), sv = _mm512_set1_ps(sr);
#pragma GCC unroll 8
              for (int u = 0; u < U; u++) {
                av[u] = _mm512_fmadd_ps(pv, _mm512_loadu_ps(gs[r] + 16 * u), av[u]);
                ak[u] = _mm512_fmadd_ps(sv, _mm512_loadu_ps(xs[r] + 16 * u), ak[u]);
              }
            }
#pragma GCC unroll 8
            for (int u = 0; u < U; u++) _mm512_storeu_ps(dvj + 16 * u, av[u]), _mm512_storeu_ps(dkj + 16 * u, ak[u]);
            continue;
          }
#endif
          for (int64_t r = 0; r < nr; r++) {
            const float pr = P[r * BK + j], sr = DS[r * BK + j];
            if (pr == 0.0f && sr == 0.0f) continue;
            const float *g = gs[r], *x = xs[r];
#pragma omp simd
            for (int64_t d = 0; d < D; d++) {
              dvj[d] += pr * g[d];
              dkj[d] += sr * x[d];
            }
          }
        }
      }
    }
  }
  for (int64_t j = 0; j < nk; j++) {
    float* dko = dk + koff + (s0 + j) * kvrow;
    float* dvo = dv + koff + (s0 + j) * kvrow;
    for (int64_t d = 0; d < D; d++) dko[d] = dK[j * D + d] * a.scale, dvo[d] = dV[j * D + d];
  }
}

// dq for query rows [i0, i1) of head h of item b. ws: 2*D*BK + BQ*D floats.
template <int DT>
void bwd_q_task(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse,
                const float* Dl, const int32_t* mask, const Dims& a, int64_t b, int64_t h, int64_t i0, int64_t i1,
                float* ws) {
  const int64_t D = DT > 0 ? DT : a.D, T = a.Tq, kvrow = a.Hkv * D, nq = i1 - i0;
  const int64_t kvh = h / (a.H / a.Hkv), koff = b * a.Tkmax * kvrow + kvh * D;
  float *Kt = ws, *Vt = Kt + D * BK, *Acc = Vt + D * BK;
  alignas(64) float bias[BK], p[BK], ds[BK];
  for (int64_t i = 0; i < nq * D; i++) Acc[i] = 0.0f;
  for (int64_t s0 = 0; s0 < i1; s0 += BK) {
    const int64_t nk = std::min(BK, i1 - s0);
    if (!tile_bias(bias, mask ? mask + b * a.Tkmax : nullptr, s0, nk)) continue;
    transpose_tile(Kt, k + koff + s0 * kvrow, kvrow, nk, D);
    transpose_tile(Vt, v + koff + s0 * kvrow, kvrow, nk, D);
    for (int64_t r = 0; r < nq; r++) {
      const int64_t i = i0 + r, lim = i - s0 + 1;
      const float L = lse[(b * a.H + h) * T + i];
      if (lim <= 0 || std::isinf(L)) continue;
      const float* x = q + ((b * T + i) * a.H + h) * D;
      const float* g = dout + ((b * T + i) * a.H + h) * D;
      p_ds<DT>(p, ds, x, g, Kt, Vt, bias, lim, L, Dl[(b * a.H + h) * T + i], a.scale, D);
      accum_rows<DT>(Acc + r * D, 1.0f, ds, k + koff + s0 * kvrow, kvrow, std::min(lim, nk), D);
    }
  }
  for (int64_t r = 0; r < nq; r++) {
    float* o = dq + ((b * T + i0 + r) * a.H + h) * D;
    for (int64_t d = 0; d < D; d++) o[d] = Acc[r * D + d] * a.scale;
  }
}

template <typename F>
void dispatch_d(int64_t D, F&& f) {
  if (D == 64)
    f(std::integral_constant<int, 64>());
  else if (D == 128)
    f(std::integral_constant<int, 128>());
  else if (D == 32)
    f(std::integral_constant<int, 32>());
  else
    f(std::integral_constant<int, 0>());
}

}  // namespace

// out [B,Tq,H,D], lse [B,H,Tq] | null, q [B,Tq,H,D], k/v [B,Tkmax,Hkv,D], mask int32 [B,Tkmax] | null.
// Needs H % Hkv == 0 and Tq <= Tk <= Tkmax (checked by the binding).
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask,
                       int64_t B, int64_t Tq, int64_t Tk, int64_t Tkmax, int64_t H, int64_t Hkv, int64_t D,
                       float scale) {
  const Dims d{B, Tq, Tk, Tkmax, H, Hkv, D, Tk - Tq, scale};
  const int64_t nqt = (d.Tq + BQ - 1) / BQ, ntask = d.B * d.H * nqt;
  dispatch_d(d.D, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
#pragma omp parallel
    {
      std::vector<float> ws(d.D * BK + 2 * BQ * d.D);
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < ntask; t++) {
        const int64_t qt = nqt - 1 - t / (d.B * d.H), bh = t % (d.B * d.H);  // longest (last) query tiles first
        const int64_t i0 = qt * BQ;
        fwd_task<DT>(out, lse, q, k, v, mask, d, bh / d.H, bh % d.H, i0, std::min(i0 + BQ, d.Tq), ws.data());
      }
    }
  });
}

// Training only (Tq = Tk = Tkmax = T): "=" into dq, dk, dv. Needs H % Hkv == 0 (checked by the binding).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* mask, int64_t B, int64_t T,
                        int64_t H, int64_t Hkv, int64_t D, float scale) {
  const Dims d{B, T, T, T, H, Hkv, D, 0, scale};
  const int64_t nl = d.B * d.H * T;
  // Di = Σ_d dO·O per (b, h, i): the softmax-backward row term.
  std::vector<float> Dl(nl);
#pragma omp parallel for schedule(static) if (nl > 1024)
  for (int64_t x = 0; x < nl; x++) {
    const int64_t i = x % T, bh = x / T, b = bh / d.H, h = bh % d.H;
    const float* g = dout + ((b * T + i) * d.H + h) * d.D;
    const float* o = out + ((b * T + i) * d.H + h) * d.D;
    float s = 0.0f;
    for (int64_t e = 0; e < d.D; e++) s += g[e] * o[e];
    Dl[x] = s;
  }
  const int64_t nkt = (T + BK - 1) / BK, nqt = (T + BQ - 1) / BQ;
  dispatch_d(d.D, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
#pragma omp parallel
    {
      std::vector<float> ws(4 * d.D * BK + 2 * RB * BK + BQ * d.D);
      // pass 1: dk, dv (first key tiles see the most queries: schedule them first)
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t t = 0; t < d.B * d.Hkv * nkt; t++) {
        const int64_t kt = t / (d.B * d.Hkv), bk = t % (d.B * d.Hkv);
        bwd_kv_task<DT>(dk, dv, dout, q, k, v, lse, Dl.data(), mask, d, bk / d.Hkv, bk % d.Hkv, kt * BK, ws.data());
      }
      // pass 2: dq (independent outputs, so no barrier is needed between the passes)
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < d.B * d.H * nqt; t++) {
        const int64_t qt = nqt - 1 - t / (d.B * d.H), bh = t % (d.B * d.H), i0 = qt * BQ;
        bwd_q_task<DT>(dq, dout, q, k, v, lse, Dl.data(), mask, d, bh / d.H, bh % d.H, i0, std::min(i0 + BQ, T),
                       ws.data());
      }
    }
  });
}

}  // namespace gpg
