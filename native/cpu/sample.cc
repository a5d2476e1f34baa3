// Token sampling for generation, one row per sequence (B rows of V logits), parallel over rows.
// Warpers in Hugging Face order: temperature, then top-k, then top-p (nucleus: the smallest set
// of most likely tokens whose probability mass reaches top_p; at least one token is kept).
// The returned log-prob is the sampling policy's log_softmax(logits / T)[token] over the FULL
// vocabulary — never truncated by top-k/top-p (DESIGN §4) — so it matches the training-side
// token log-probs at the same temperature. Randomness comes from the caller (uniforms in [0,1)),
// which keeps generation reproducible from a saved RNG state. No backward: sampling is not
// differentiated (the policy gradient flows through the log-prob kernels instead), nothing saved.
// Legend: B rows (sequences), V vocabulary. Outputs are written with "=".
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels.h"

namespace gpg {

// ids int32 [B], lp [B] from logits [B, V], uniforms [B]; temperature > 0, top_k (0 = off), top_p in
// (0, 1] (1 = off), greedy. Throws when a row has no finite maximum (after writing every row).
void sample_tokens(int32_t* ids, float* lp, const float* logits, const float* u, int64_t B, int64_t V, double temp,
                   int64_t top_k, double top_p, bool greedy) {
  bool bad = false;
#pragma omp parallel for schedule(dynamic, 1) reduction(|| : bad)
  for (int64_t b = 0; b < B; b++) {
    const float* z = logits + b * V;
    const double inv_t = 1.0 / temp;
    double mx = -INFINITY;
    int64_t arg = 0;
    for (int64_t j = 0; j < V; j++)
      if (z[j] > mx) {
        mx = z[j];
        arg = j;
      }
    if (!std::isfinite(mx)) {
      bad = true;
      ids[b] = 0;
      lp[b] = 0;
      continue;
    }
    double sum = 0;
    for (int64_t j = 0; j < V; j++) sum += std::exp((z[j] - mx) * inv_t);
    const double lse = mx * inv_t + std::log(sum);
    int64_t tok = arg;
    if (!greedy) {
      const bool trunc = (top_k > 0 && top_k < V) || top_p < 1.0;
      double target = static_cast<double>(u[b]);
      if (!trunc) {
        // inverse CDF over the whole vocabulary, in index order
        double acc = 0, goal = target * sum;
        tok = V - 1;
        for (int64_t j = 0; j < V; j++) {
          acc += std::exp((z[j] - mx) * inv_t);
          if (acc > goal) {
            tok = j;
            break;
          }
        }
      } else {
        auto desc = [&](int32_t x, int32_t y) { return z[x] > z[y] || (z[x] == z[y] && x < y); };
        int64_t k = (top_k > 0 && top_k < V) ? top_k : V;
        // Candidates: only the tokens within `gap` nats (at this temperature) of the maximum are
        // sorted. They hold the warped distribution's head whenever there are at least k of them
        // (top-k) and their mass reaches top_p (top-p: the nucleus is a prefix of the sorted order);
        // otherwise the gap widens, up to the whole vocabulary. The kept set and its order are those
        // of sorting everything (top-p alone measures against the total in index order).
        std::vector<int32_t> idx;
        for (double gap = 16.0;; gap *= 2) {
          const double cut = mx - gap * temp;
          idx.clear();
          double mass = 0;
          for (int64_t j = 0; j < V; j++)
            if (z[j] >= cut) {
              idx.push_back(static_cast<int32_t>(j));
              mass += std::exp((z[j] - mx) * inv_t);
            }
          const int64_t nc = static_cast<int64_t>(idx.size());
          if (nc == V || (k < V ? nc >= k : mass >= top_p * sum)) break;
        }
        const bool topk = k < V;
        if (topk)
          std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), desc);
        else {
          std::sort(idx.begin(), idx.end(), desc);
          k = static_cast<int64_t>(idx.size());
        }
        // probabilities of the k candidates, renormalised after top-k (HF applies top-p to the top-k distribution)
        std::vector<double> p(k);
        double s = 0;
        for (int64_t j = 0; j < k; j++) {
          p[j] = std::exp((z[idx[j]] - mx) * inv_t);
          s += p[j];
        }
        if (!topk) s = sum;  // top-p alone: the nucleus is measured against the whole vocabulary
        int64_t keep = k;
        if (top_p < 1.0) {
          double acc = 0;
          for (int64_t j = 0; j < k; j++) {
            acc += p[j] / s;
            if (acc >= top_p) {
              keep = j + 1;
              break;
            }
          }
        }
        double s2 = 0;
        for (int64_t j = 0; j < keep; j++) s2 += p[j];
        double goal = target * s2, acc = 0;
        tok = idx[keep - 1];
        for (int64_t j = 0; j < keep; j++) {
          acc += p[j];
          if (acc > goal) {
            tok = idx[j];
            break;
          }
        }
      }
    }
    ids[b] = static_cast<int32_t>(tok);
    lp[b] = static_cast<float>(z[tok] * inv_t - lse);
  }
  if (bad) throw OpError("logits contain no finite maximum (NaN or -inf everywhere) in at least one row");
}

}  // namespace gpg
