// Fused log-softmax + gather of token log-probs, and token entropy, over a chunk of logit rows.
//
// Dimension legend: N token rows in all, `rows` rows in this chunk (logit row r is token
// rowOff + r), V vocabulary. z = logits / temperature.
//   lp[n]      = z[n, target[n]] - lse[n]          (target < 0: "ignore", lp = 0, no gradient)
//   lse[n]     = log Σ_v exp z[n, v]               (saved for backward)
//   entropy[n] = -Σ_v p log p = log S1 - Σ_v e^{z-m} (z-m) / S1,  S1 = Σ_v e^{z-m}, m = max z
// Backward kernels write "=" (dlogits may be the logits buffer itself: the chunked TS op
// overwrites each recomputed logits chunk with its gradient so no second [N, V] buffer exists):
//   d lp / d logits  = dlp (onehot(target) - softmax(z)) / temperature
//   d H / d logits   = dH (-p (log p + H)) / temperature
// Rows are independent: OpenMP over rows; each row is a deterministic serial reduction (float
// partial sums over 512-element blocks, vectorised, combined in double).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels.h"

namespace gpg {
namespace {

constexpr int64_t BLK = 512;

// Checks targets[rowOff .. rowOff+rows) against V (ids out of range are an error naming them).
void check_targets(const int32_t* tg, int64_t rowOff, int64_t rows, int64_t V) {
  for (int64_t r = 0; r < rows; r++) {
    const int32_t t = tg[rowOff + r];
    if (t >= V)
      throw OpError("target " + std::to_string(t) + " at row " + std::to_string(rowOff + r) +
                    " is out of range for vocabulary size " + std::to_string(V));
  }
}

}  // namespace

// lp [N] | null, lse [N], entropy [N] | null (written at rows rowOff..rowOff+rows), logits [rows, V],
// targets int32 [N] | null (given exactly when lp is).
void logprobs_forward(float* lp, float* lse, float* ent, const float* x, const int32_t* tg, int64_t rows, int64_t V,
                      double temp, int64_t rowOff) {
  if (tg) check_targets(tg, rowOff, rows, V);
  const float invT = static_cast<float>(1.0 / temp);
#pragma omp parallel for schedule(static) if (rows * V > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * V;
    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; v++) mx = std::max(mx, xr[v]);
    const float m = mx * invT;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t v0 = 0; v0 < V; v0 += BLK) {
      const int64_t v1 = std::min(V, v0 + BLK);
      float b1 = 0.0f, b2 = 0.0f;
      if (ent) {
#pragma omp simd reduction(+ : b1, b2)
        for (int64_t v = v0; v < v1; v++) {
          const float zm = xr[v] * invT - m;
          const float e = vexp(zm);
          b1 += e;
          b2 += e == 0.0f ? 0.0f : e * zm;  // e = 0 where zm = -inf: avoid 0 · inf
        }
      } else {
#pragma omp simd reduction(+ : b1)
        for (int64_t v = v0; v < v1; v++) b1 += vexp(xr[v] * invT - m);
      }
      s1 += b1;
      s2 += b2;
    }
    const double l = static_cast<double>(m) + std::log(s1);
    lse[rowOff + r] = static_cast<float>(l);
    if (ent) ent[rowOff + r] = static_cast<float>(std::log(s1) - s2 / s1);
    if (lp) {
      const int32_t t = tg[rowOff + r];
      lp[rowOff + r] = t < 0 ? 0.0f : static_cast<float>(static_cast<double>(xr[t]) * invT - l);
    }
  }
}

// dlogits [rows, V] ("="), logits [rows, V] (may be the same buffer), dlp [N], lse [N], targets int32 [N].
void logprobs_backward(float* dx, const float* x, const float* dlp, const float* lse, const int32_t* tg, int64_t rows,
                       int64_t V, double temp, int64_t rowOff) {
  check_targets(tg, rowOff, rows, V);
  const float invT = static_cast<float>(1.0 / temp);
#pragma omp parallel for schedule(static) if (rows * V > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const int32_t t = tg[rowOff + r];
    float* dr = dx + r * V;
    const float* xr = x + r * V;
    if (t < 0) {
      std::fill(dr, dr + V, 0.0f);
      continue;
    }
    const float g = dlp[rowOff + r] * invT, L = lse[rowOff + r];
#pragma omp simd
    for (int64_t v = 0; v < V; v++) dr[v] = -g * vexp(xr[v] * invT - L);
    dr[t] += g;  // dr[t] was computed from xr[t] before being overwritten (in place is safe)
  }
}

// dlogits [rows, V] ("="), logits [rows, V] (may alias), dH [N], lse [N], entropy [N]:
// dz = dH · (-p (log p + H)) / temperature.
void logprobs_entropy_backward(float* dx, const float* x, const float* dH, const float* lse, const float* ent,
                               int64_t rows, int64_t V, double temp, int64_t rowOff) {
  const float invT = static_cast<float>(1.0 / temp);
#pragma omp parallel for schedule(static) if (rows * V > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float g = dH[rowOff + r] * invT, L = lse[rowOff + r], Hr = ent[rowOff + r];
    float* dr = dx + r * V;
    const float* xr = x + r * V;
#pragma omp simd
    for (int64_t v = 0; v < V; v++) {
      const float lp = xr[v] * invT - L;
      const float p = vexp(lp);
      dr[v] = p == 0.0f ? 0.0f : -g * p * (lp + Hr);
    }
  }
}

}  // namespace gpg
