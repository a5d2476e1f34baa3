// Rotary position embedding, rotate-half convention (HF apply_rotary_pos_emb, modeling_qwen2.py):
//   y = x * cos + rotate_half(x) * sin,   rotate_half(x) = cat(-x[D/2:], x[:D/2])
// i.e. for i < D/2, with angle a_i = pos * inv_freq[i]:
//   y[i]       = x[i] * cos a_i - x[i+D/2] * sin a_i
//   y[i+D/2]   = x[i+D/2] * cos a_i + x[i] * sin a_i
// inv_freq follows HF's default rope init in float32:
//   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
// and freqs = pos * inv_freq rounded to float32 (HF's float32 matmul of inv_freq by position_ids);
// cos/sin are taken in double of that float32 angle and rounded to float32.
//
// Legend: B = batch, T = tokens, H = heads, D = head dim (even). x, y, dx, dy are [B,T,H,D];
// positions are int32 [B,T] (left padding: position_ids = max(cumsum(mask)-1, 0)), 0 <= pos < 2^24
// (exact in float32). Nothing is saved: backward recomputes cos/sin and rotates by -angle.
// Backward writes dx with "=".
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels.h"

namespace gpg {

namespace {

constexpr int32_t kMaxPos = 1 << 24;

// inv_freq [D/2] exactly as HF computes it in float32.
std::vector<float> inv_freq(int64_t D, double theta) {
  std::vector<float> f(static_cast<size_t>(D / 2));
  const float base = static_cast<float>(theta);
  for (int64_t i = 0; i < D / 2; i++) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(D);
    const float p = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(e)));
    f[i] = 1.0f / p;
  }
  return f;
}

void check_positions(const int32_t* pos, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (pos[i] < 0 || pos[i] >= kMaxPos) {
      throw OpError("positions[" + std::to_string(i) + "] = " + std::to_string(pos[i]) + " is out of range [0, " +
                    std::to_string(kMaxPos) + "); position ids count real tokens from 0");
    }
  }
}

// cos/sin tables [npos, D/2] for positions 0..npos-1, cached across calls (every layer, q and k,
// forward and backward use the same ones). Values are a pure function of (D, theta, pos), so the
// cache never changes results. Positions at or beyond kMaxTable are computed on the fly.
constexpr int32_t kMaxTable = 1 << 16;

struct Table {
  int64_t D = 0;
  double theta = 0;
  int64_t npos = 0;
  std::vector<float> cs, sn;
};

inline void angles(float* cs, float* sn, int32_t p, const float* invf, int64_t h2) {
  const float pf = static_cast<float>(p);
  for (int64_t i = 0; i < h2; i++) {
    const float ang = pf * invf[i];  // float32, as HF's inv_freq @ position_ids
    cs[i] = static_cast<float>(std::cos(static_cast<double>(ang)));
    sn[i] = static_cast<float>(std::sin(static_cast<double>(ang)));
  }
}

// Returns an immutable table covering at least npos positions; a grown table replaces the old one
// (readers of the old one keep it alive through their shared_ptr, so worker threads are safe).
std::shared_ptr<const Table> table_for(int64_t D, double theta, int64_t npos, const std::vector<float>& invf) {
  static std::mutex mu;
  static std::shared_ptr<const Table> cur;
  std::lock_guard<std::mutex> lock(mu);
  if (cur && cur->D == D && cur->theta == theta && cur->npos >= npos) return cur;
  const int64_t h2 = D / 2;
  const bool same = cur && cur->D == D && cur->theta == theta;
  const int64_t old = same ? cur->npos : 0;
  auto tab = std::make_shared<Table>();
  tab->D = D;
  tab->theta = theta;
  tab->npos = std::min<int64_t>(kMaxTable, std::max<int64_t>(npos, 2 * old));
  tab->cs.resize(static_cast<size_t>(tab->npos * h2));
  tab->sn.resize(static_cast<size_t>(tab->npos * h2));
  if (same) {
    std::copy(cur->cs.begin(), cur->cs.end(), tab->cs.begin());
    std::copy(cur->sn.begin(), cur->sn.end(), tab->sn.begin());
  }
  const int64_t want = tab->npos;
#pragma omp parallel for schedule(static) if ((want - old) * h2 > 4096)
  for (int64_t p = old; p < want; p++)
    angles(tab->cs.data() + p * h2, tab->sn.data() + p * h2, static_cast<int32_t>(p), invf.data(), h2);
  cur = tab;
  return cur;
}

// Rotates every head of one token by the given cos/sin; sign = +1 (forward) or -1 (backward).
inline void rotate_token(float* out, const float* in, const float* cs, const float* sn, int64_t H, int64_t D,
                         float sign) {
  const int64_t h2 = D / 2;
  for (int64_t h = 0; h < H; h++) {
    const float* x1 = in + h * D;
    const float* x2 = x1 + h2;
    float* y1 = out + h * D;
    float* y2 = y1 + h2;
#pragma omp simd
    for (int64_t i = 0; i < h2; i++) {
      const float a = x1[i], b = x2[i], c = cs[i], s = sign * sn[i];
      y1[i] = a * c - b * s;
      y2[i] = b * c + a * s;
    }
  }
}

void rope_apply(float* out, const float* in, const int32_t* pos, int64_t B, int64_t T, int64_t H, int64_t D,
                double theta, float sign) {
  const int64_t n = B * T * H * D;
  check_positions(pos, B * T);
  const int64_t BT = B * T, h2 = D / 2;
  if (BT == 0) return;
  int32_t maxPos = 0;
  for (int64_t t = 0; t < BT; t++) maxPos = std::max(maxPos, pos[t]);
  const std::vector<float> invf = inv_freq(D, theta);
  const std::shared_ptr<const Table> tabp =
      table_for(D, theta, std::min<int64_t>(static_cast<int64_t>(maxPos) + 1, kMaxTable), invf);
  const Table& tab = *tabp;
#pragma omp parallel if (n > 16384)
  {
    std::vector<float> cs(static_cast<size_t>(h2)), sn(static_cast<size_t>(h2));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < BT; t++) {
      const float *c = cs.data(), *s = sn.data();
      if (pos[t] < tab.npos) {
        c = tab.cs.data() + pos[t] * h2;
        s = tab.sn.data() + pos[t] * h2;
      } else {
        angles(cs.data(), sn.data(), pos[t], invf.data(), h2);
      }
      rotate_token(out + t * H * D, in + t * H * D, c, s, H, D, sign);
    }
  }
}

}  // namespace

// y [B,T,H,D] from x [B,T,H,D], positions int32 [B,T]; D even, theta > 0 (checked by the binding)
void rope_forward(float* y, const float* x, const int32_t* positions, int64_t B, int64_t T, int64_t H, int64_t D,
                  double theta) {
  rope_apply(y, x, positions, B, T, H, D, theta, 1.0f);
}

// dx [B,T,H,D] ("=") from dy [B,T,H,D], positions int32 [B,T]: the rotation is orthogonal, so dx is
// dy rotated by -angle:
//   dx[i] = dy[i] cos + dy[i+D/2] sin,   dx[i+D/2] = dy[i+D/2] cos - dy[i] sin
void rope_backward(float* dx, const float* dy, const int32_t* positions, int64_t B, int64_t T, int64_t H, int64_t D,
                   double theta) {
  rope_apply(dx, dy, positions, B, T, H, D, theta, -1.0f);
}

}  // namespace gpg
