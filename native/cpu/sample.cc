// Token sampling for generation, one row per sequence (B rows of V logits), parallel over rows.
// Warpers in Hugging Face order: temperature, then top-k, then top-p (nucleus: the smallest set
// of most likely tokens whose probability mass reaches top_p; at least one token is kept).
// The returned log-prob is the sampling policy's log_softmax(logits / T)[token] over the FULL
// vocabulary — never truncated by top-k/top-p (DESIGN §4) — so it matches the training-side
// token log-probs at the same temperature. Randomness comes from the caller (uniforms in [0,1)),
// which keeps generation reproducible from a saved RNG state. No backward: sampling is not
// differentiated (the policy gradient flows through the log-prob kernels instead), nothing saved.
//
// Passes over a row (V = 151,936 for Qwen: the row is 0.6 MB, L2-resident):
//   1. the maximum (16 lanes, vectorised) and the first index holding it;
//   2. without top-k/top-p: e = exp((z − max)/T) summed in 16 float lanes per block of SB tokens
//      (the block sums kept in double); the inverse CDF walks the block sums and scans one block.
//      With top-k/top-p: the same exps binned by distance below the maximum (NBK buckets of 1/32
//      nat; the last bucket holds everything further). The sorted order (descending logit, ties by
//      index) is bucket by bucket, so counts and masses per bucket locate the k-th token, the
//      nucleus' end and the sampled token; only the buckets where one of those falls are sorted
//      (a few hundred tokens on a flat row, a handful on a peaked one) — never the vocabulary.
// Legend: B rows (sequences), V vocabulary. Outputs are written with "=".
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "kernels.h"

namespace gpg {

namespace {

constexpr int64_t SB = 2048;    // tokens per partial sum
constexpr int NBK = 1024;       // buckets below the maximum (+1 for everything further)
constexpr double BK_NATS = 32;  // buckets span [0, 32) nats below the maximum (at this temperature)
constexpr int LN = 16;          // float lanes

float row_max(const float* z, int64_t V) {
  float lane[LN];
  for (int l = 0; l < LN; l++) lane[l] = -INFINITY;
  int64_t j = 0;
  for (; j + LN <= V; j += LN)
    for (int l = 0; l < LN; l++) lane[l] = z[j + l] > lane[l] ? z[j + l] : lane[l];
  float mx = -INFINITY;
  for (; j < V; j++) mx = z[j] > mx ? z[j] : mx;
  for (int l = 0; l < LN; l++) mx = lane[l] > mx ? lane[l] : mx;
  return mx;
}

// Σ exp((z[j] − mx)·inv_t) over [j0, j1) in 16 float lanes, returned in double
double exp_sum(const float* z, int64_t j0, int64_t j1, float mx, float inv_t) {
  float lane[LN] = {};
  int64_t j = j0;
  for (; j + LN <= j1; j += LN)
    for (int l = 0; l < LN; l++) lane[l] += vexp((z[j + l] - mx) * inv_t);
  double s = 0;
  for (; j < j1; j++) s += vexp((z[j] - mx) * inv_t);
  for (int l = 0; l < LN; l++) s += lane[l];
  return s;
}

inline int bucket(float zj, float mx, float scale) {
  const float d = (mx - zj) * scale;  // ≥ 0; +inf for −inf logits; NaN compares false
  return d < static_cast<float>(NBK) ? static_cast<int>(d) : NBK;
}

}  // namespace

// ids int32 [B], lp [B] from logits [B, V], uniforms [B]; temperature > 0, top_k (0 = off), top_p in
// (0, 1] (1 = off), greedy. Throws when a row has no finite maximum (after writing every row).
void sample_tokens(int32_t* ids, float* lp, const float* logits, const float* u, int64_t B, int64_t V, double temp,
                   int64_t top_k, double top_p, bool greedy) {
  bool bad = false;
  const bool trunc = !greedy && ((top_k > 0 && top_k < V) || top_p < 1.0);
#pragma omp parallel for schedule(dynamic, 1) reduction(|| : bad)
  for (int64_t b = 0; b < B; b++) {
    const float* z = logits + b * V;
    const double inv_t = 1.0 / temp;
    const float inv_tf = static_cast<float>(inv_t);
    const float mx = row_max(z, V);
    if (!std::isfinite(mx)) {
      bad = true;
      ids[b] = 0;
      lp[b] = 0;
      continue;
    }
    int64_t arg = 0;
    while (z[arg] != mx) arg++;
    int64_t tok = arg;
    double sum = 0;
    if (!trunc) {
      const int64_t nb = (V + SB - 1) / SB;
      std::vector<double> bs(static_cast<size_t>(nb));
      for (int64_t q = 0; q < nb; q++) {
        bs[q] = exp_sum(z, q * SB, std::min(V, (q + 1) * SB), mx, inv_tf);
        sum += bs[q];
      }
      if (!greedy) {
        // inverse CDF over the whole vocabulary, in index order
        const double goal = static_cast<double>(u[b]) * sum;
        double acc = 0;
        int64_t q = 0;
        while (q < nb - 1 && acc + bs[q] <= goal) acc += bs[q++];
        tok = -1;
        int64_t last = -1;  // the block's last token with probability > 0 (rounding at the block's end)
        for (int64_t j = q * SB, j1 = std::min(V, (q + 1) * SB); j < j1; j++) {
          const float e = vexp((z[j] - mx) * inv_tf);
          if (e > 0) last = j;
          acc += e;
          if (acc > goal) {
            tok = j;
            break;
          }
        }
        if (tok < 0) tok = last >= 0 ? last : arg;
      }
    } else {
      // one pass: exps binned by distance below the maximum (bucket 0 holds the maximum)
      const float scale = static_cast<float>(inv_t * (NBK / BK_NATS));
      std::vector<int64_t> count(NBK + 1, 0);
      std::vector<double> mass(NBK + 1, 0.0);
      for (int64_t j = 0; j < V; j++) {
        const int q = bucket(z[j], mx, scale);
        count[q]++;
        mass[q] += vexp((z[j] - mx) * inv_tf);
      }
      for (int q = 0; q <= NBK; q++) sum += mass[q];
      // Sorted order (descending logit, ties by index) is bucket by bucket, each bucket sorted:
      // only the buckets where a cut falls are sorted.
      auto desc = [&](int32_t x, int32_t y) { return z[x] > z[y] || (z[x] == z[y] && x < y); };
      int have = -1;
      std::vector<int32_t> mem;
      std::vector<double> pm;
      auto members = [&](int q) {
        if (have == q) return;
        mem.clear();
        for (int64_t j = 0; j < V; j++)
          if (bucket(z[j], mx, scale) == q) mem.push_back(static_cast<int32_t>(j));
        std::sort(mem.begin(), mem.end(), desc);
        pm.resize(mem.size());
        for (size_t i = 0; i < mem.size(); i++) pm[i] = vexp((z[mem[i]] - mx) * inv_tf);
        have = q;
      };
      // top-k: buckets [0, ck) whole and the first rk members of bucket ck
      const bool topk = top_k > 0 && top_k < V;
      int ck = NBK;
      int64_t rk = count[NBK];
      double s = sum;
      if (topk) {
        int64_t c = 0;
        double m = 0;
        for (int q = 0; q <= NBK; q++) {
          if (c + count[q] >= top_k) {
            ck = q;
            rk = top_k - c;
            break;
          }
          c += count[q];
          m += mass[q];
        }
        members(ck);
        for (int64_t i = 0; i < rk; i++) m += pm[i];
        s = m;  // HF applies top-p to the renormalised top-k distribution
      }
      // top-p: the nucleus = buckets [0, cq) whole and the first rq members of bucket cq
      int cq = ck;
      int64_t rq = rk;
      if (top_p < 1.0) {
        double acc = 0;
        for (int q = 0; q <= ck; q++) {
          const int64_t nq = q < ck ? count[q] : rk;
          if (nq == 0) continue;
          if (q < ck && acc + mass[q] / s < top_p) {
            acc += mass[q] / s;
            continue;
          }
          members(q);
          int64_t i = 0;
          for (; i < nq; i++) {
            acc += pm[i] / s;
            if (acc >= top_p) break;
          }
          if (i < nq) {
            cq = q;
            rq = i + 1;
            break;
          }
        }
      }
      // inverse CDF over the kept set in sorted order
      double s2 = 0;
      for (int q = 0; q < cq; q++) s2 += mass[q];  // cq ≤ ck: whole buckets
      members(cq);
      for (int64_t i = 0; i < rq; i++) s2 += pm[i];
      const double goal = static_cast<double>(u[b]) * s2;
      double acc = 0;
      tok = -1;
      for (int q = 0; q <= cq && tok < 0; q++) {
        const int64_t nq = q < cq ? count[q] : rq;
        if (nq == 0) continue;
        if (q < cq && acc + mass[q] <= goal) {
          acc += mass[q];
          continue;
        }
        members(q);
        for (int64_t i = 0; i < nq; i++) {
          acc += pm[i];
          if (acc > goal) {
            tok = mem[i];
            break;
          }
        }
        if (tok < 0 && q == cq) tok = mem[nq - 1];
      }
      if (tok < 0) {
        members(cq);
        tok = mem[rq - 1];
      }
    }
    const double lse = static_cast<double>(mx) * inv_t + std::log(sum);
    ids[b] = static_cast<int32_t>(tok);
    lp[b] = static_cast<float>(z[tok] * inv_t - lse);
  }
  if (bad) throw OpError("logits contain no finite maximum (NaN or -inf everywhere) in at least one row");
}

}  // namespace gpg
