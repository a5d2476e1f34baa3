// Token embedding: gather rows of a [V, C] table (HF nn.Embedding / embed_tokens), and its
// backward, a scatter-add of the output gradient into a [V, C] weight gradient.
//
// Legend: N = number of ids (B*T), V = vocabulary size, C = channels.
// Nothing is saved beyond the ids. Backward writes dweight with "=" (every row, untouched rows 0),
// or with accumulate with "+=" (rows without tokens untouched): a parameter's existing gradient
// takes the scatter-add in place, so no second [V, C] buffer is needed.
// Determinism without float atomics: the ids are counting-sorted (stable, so each id's tokens stay
// in ascending token order), then each vocabulary row is owned by one thread, which sums its
// tokens' gradient rows in that fixed order. The bits do not depend on the thread count.
#include <string>
#include <vector>

#include "kernels.h"

namespace gpg {

namespace {

void check_ids(const int32_t* ids, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++) {
    if (ids[i] < 0 || ids[i] >= V) {
      throw OpError("ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                    " is out of range for vocabulary size V = " + std::to_string(V) + " (valid ids are 0.." +
                    std::to_string(V - 1) + ")");
    }
  }
}

}  // namespace

// out [N,C] = weight[ids[n]] for weight [V,C], ids int32 [N]
void embedding_forward(float* out, const float* w, const int32_t* ids, int64_t N, int64_t V, int64_t C) {
  check_ids(ids, N, V);
#pragma omp parallel for schedule(static) if (N * C > 65536)
  for (int64_t i = 0; i < N; i++)
    std::memcpy(out + i * C, w + static_cast<int64_t>(ids[i]) * C, static_cast<size_t>(C) * 4);
}

// dweight [V,C] = (or += with accumulate) scatter-add of dout [N,C] by ids int32 [N]
void embedding_backward(float* dw, const float* dy, const int32_t* ids, int64_t N, int64_t V, int64_t C,
                        bool accumulate) {
  check_ids(ids, N, V);
  // Counting sort of token indices by id: start[v]..start[v+1] lists id v's tokens, ascending.
  std::vector<int64_t> start(static_cast<size_t>(V + 1), 0);
  for (int64_t i = 0; i < N; i++) start[ids[i] + 1]++;
  for (int64_t v = 0; v < V; v++) start[v + 1] += start[v];
  std::vector<int64_t> order(static_cast<size_t>(N));
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < N; i++) order[fill[ids[i]]++] = i;
  }
  // One pass over dweight: zero rows without tokens, sum the others (float accumulation in token
  // order, as torch's CPU embedding_backward does with index_add).
#pragma omp parallel for schedule(dynamic, 256) if (V * C > 65536)
  for (int64_t v = 0; v < V; v++) {
    float* row = dw + v * C;
    const int64_t s = start[v], e = start[v + 1];
    if (s == e) {
      if (!accumulate) std::memset(row, 0, static_cast<size_t>(C) * 4);
      continue;
    }
    if (!accumulate) std::memcpy(row, dy + order[s] * C, static_cast<size_t>(C) * 4);
    for (int64_t k = accumulate ? s : s + 1; k < e; k++) {
      const float* src = dy + order[k] * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) row[c] += src[c];
    }
  }
}

}  // namespace gpg
