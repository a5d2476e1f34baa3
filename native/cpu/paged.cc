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
// Every output element is computed by one thread in a fixed key order, so a row's result does not
// depend on which other rows share the call, nor on the thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

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
  const int64_t group = H / Hkv, row = Hkv * D;
  constexpr int64_t CHUNK = 64;  // keys scored per pass of the online softmax
#pragma omp parallel
  {
    std::vector<float> acc(static_cast<size_t>(D)), sc(CHUNK);
#pragma omp for collapse(3) schedule(dynamic, 4)
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < Tq; i++)
        for (int64_t h = 0; h < H; h++) {
          const float* qv = q + ((b * Tq + i) * H + h) * D;
          float* o = out + ((b * Tq + i) * H + h) * D;
          const int64_t nk = ctx[b] - Tq + i + 1;  // keys 0 .. position
          const int64_t kh = h / group;
          const int32_t* tb = table + b * max_blocks;
          float m = -INFINITY, l = 0.f;
          std::fill(acc.begin(), acc.end(), 0.f);
          for (int64_t s0 = 0; s0 < nk; s0 += CHUNK) {
            const int64_t n = std::min(CHUNK, nk - s0);
            float cm = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
              const int64_t s = s0 + j;
              const float* kv = kpool + (static_cast<int64_t>(tb[s / bs]) * bs + s % bs) * row + kh * D;
              float d = 0.f;
#pragma omp simd reduction(+ : d)
              for (int64_t e = 0; e < D; e++) d += qv[e] * kv[e];
              sc[j] = d * scale;
              cm = std::max(cm, sc[j]);
            }
            const float mn = std::max(m, cm);
            const float corr = std::exp(m - mn);  // 0 on the first chunk (m = -inf)
            l *= corr;
#pragma omp simd
            for (int64_t e = 0; e < D; e++) acc[e] *= corr;
            for (int64_t j = 0; j < n; j++) {
              const int64_t s = s0 + j;
              const float p = std::exp(sc[j] - mn);
              l += p;
              const float* vv = vpool + (static_cast<int64_t>(tb[s / bs]) * bs + s % bs) * row + kh * D;
#pragma omp simd
              for (int64_t e = 0; e < D; e++) acc[e] += p * vv[e];
            }
            m = mn;
          }
          const float inv = 1.f / l;
#pragma omp simd
          for (int64_t e = 0; e < D; e++) o[e] = acc[e] * inv;
        }
  }
}

}  // namespace gpg
