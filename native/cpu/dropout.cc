// Inverted dropout with a counter-based mask (LoRA's lora_dropout on the adapter input, see
// src/tensor/ops/dropout.ts). Legend: n = elements, p = drop probability in [0, 1), seed = the
// call's 53-bit seed. Element i is kept when the top 32 bits of splitmix64(seed, i) are ≥ p·2³²,
// and a kept value is scaled by 1/(1 − p), so E[out] = x. The mask is a pure function of
// (seed, i): forward saves nothing, backward recomputes it, and results do not depend on the
// thread count or schedule. Outputs are written with "="; out may alias x (and dx may alias dy).
#include <omp.h>

#include <cmath>

#include "kernels.h"

namespace gpg {

namespace {

// splitmix64 finaliser of seed + i·golden (Steele et al. 2014): a stateless per-element stream.
inline uint32_t dropout_bits(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<uint32_t>(z >> 32);
}

inline uint64_t dropout_threshold(float p) { return static_cast<uint64_t>(std::ldexp(static_cast<double>(p), 32)); }

}  // namespace

// out [n] = mask(seed) ⊙ x [n] / (1 − p)
void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed) {
  const uint64_t thr = dropout_threshold(p);
  const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) out[i] = dropout_bits(seed, i) >= thr ? x[i] * keep_scale : 0.0f;
}

// dx [n] = mask(seed) ⊙ dy [n] / (1 − p): the same mask as the forward with this seed
void dropout_backward(float* dx, const float* dy, int64_t n, float p, uint64_t seed) {
  dropout_forward(dx, dy, n, p, seed);
}

}  // namespace gpg
