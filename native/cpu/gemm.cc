// GEMM: float32 through our AVX-512 kernel (sgemm.cc), bf16 operands with fp32
// accumulation/output through oneDNN matmul primitives (and float32 too when the build has no
// AVX-512).
//
//   C[b] = alpha * op(A[b]) @ op(B[b or 0]) (+ bias) + beta * C[b]
//   A: [batch, M, K]  (transA: stored [batch, K, M])
//   B: [batchB, K, N] (transB: stored [batchB, N, K]; HF Linear weights are [out, in] = transB)
//   C: [batch, M, N] float32.  batchB is batch or 1 (broadcast weights).
//
// Backward of a product is itself a product with other transposes, so there is no separate
// gemm_backward: the TypeScript `matmul`/`linear` ops call gemm three times (forward, dA, dB);
// beta = 1 accumulates gradients in place ("+=" convention); beta = 0 writes "=" (C is not read).
// Nothing is saved. Legend: batch, batchB (batch or 1), M, N, K as above; pointers arrive already
// offset to the first element of the view (the binding applies aOff, bOff, cOff).
// Primitives are created once per (shape, transposes, dtype, alpha, beta, bias) and cached.
#include <dnnl.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels.h"

namespace gpg {
namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}
dnnl::stream& cpu_stream() {
  static dnnl::stream s(cpu_engine());
  return s;
}

struct Prim {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, bias, c;
};

std::unordered_map<std::string, std::shared_ptr<Prim>>& cache() {
  static std::unordered_map<std::string, std::shared_ptr<Prim>> c;
  return c;
}

std::shared_ptr<Prim> get_prim(int64_t batch, int64_t batchB, int64_t M, int64_t N, int64_t K, bool tA, bool tB,
                               bool bf16, bool has_bias, float alpha, float beta) {
  std::ostringstream key;
  key << batch << ',' << batchB << ',' << M << ',' << N << ',' << K << ',' << tA << tB << bf16 << has_bias << ','
      << alpha << ',' << beta;
  auto& c = cache();
  auto it = c.find(key.str());
  if (it != c.end()) return it->second;
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  dt in = bf16 ? dt::bf16 : dt::f32;
  auto p = std::make_shared<Prim>();
  p->a = dnnl::memory::desc({batch, M, K}, in, tA ? dims{M * K, 1, M} : dims{M * K, K, 1});
  p->b = dnnl::memory::desc({batchB, K, N}, in, tB ? dims{K * N, 1, K} : dims{K * N, N, 1});
  p->c = dnnl::memory::desc({batch, M, N}, dt::f32, dims{M * N, N, 1});
  if (has_bias) p->bias = dnnl::memory::desc({1, 1, N}, dt::f32, dims{N, N, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  dnnl::matmul::desc d =
      has_bias ? dnnl::matmul::desc(p->a, p->b, p->bias, p->c) : dnnl::matmul::desc(p->a, p->b, p->c);
  dnnl::matmul::primitive_desc pd(d, attr, cpu_engine());
  p->prim = dnnl::matmul(pd);
  c.emplace(key.str(), p);
  return p;
}

// oneDNN matmul on A/B of either input dtype (bf16: uint16_t storage), float32 C and bias.
void onednn_gemm(float* C, const void* A, const void* B, const float* bias, bool bf16, int64_t batch, int64_t batchB,
                 int64_t M, int64_t N, int64_t K, bool tA, bool tB, float alpha, float beta) {
  auto p = get_prim(batch, batchB, M, N, K, tA, tB, bf16, bias != nullptr, alpha, beta);
  dnnl::engine& eng = cpu_engine();
  dnnl::memory ma(p->a, eng, const_cast<void*>(A));
  dnnl::memory mb(p->b, eng, const_cast<void*>(B));
  dnnl::memory mc(p->c, eng, C);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p->bias, eng, const_cast<float*>(bias)));
  p->prim.execute(cpu_stream(), args);
  cpu_stream().wait();
}

}  // namespace

// float32: our sgemm per batch item (oneDNN when the build has no AVX-512).
void gemm(float* C, const float* A, const float* B, const float* bias, int64_t batch, int64_t batchB, int64_t M,
          int64_t N, int64_t K, bool transA, bool transB, float alpha, float beta) {
  bool done = true;
  for (int64_t b = 0; b < batch && done; b++)
    done = sgemm_f32(transA, transB, M, N, K, alpha, A + b * M * K, B + (batchB == 1 ? 0 : b * K * N), beta,
                     C + b * M * N, bias);
  if (!done) onednn_gemm(C, A, B, bias, false, batch, batchB, M, N, K, transA, transB, alpha, beta);
}

// bf16 operands (uint16_t bit patterns), float32 accumulation and C: oneDNN where the CPU has bf16
// matmul kernels (AVX-512 BF16 / AMX); on CPUs without them (AVX2: oneDNN 2.6 cannot create a bf16
// matmul there) the operands are widened to fp32 (exact) and go through the fp32 GEMM, so the
// result is the same product of bf16-rounded operands, accumulated in fp32. The first refusal is
// remembered, so later calls go straight to the fallback.
void gemm(float* C, const uint16_t* A, const uint16_t* B, const float* bias, int64_t batch, int64_t batchB, int64_t M,
          int64_t N, int64_t K, bool transA, bool transB, float alpha, float beta) {
  static std::atomic<bool> no_bf16{false};
  if (!no_bf16.load(std::memory_order_relaxed)) {
    try {
      onednn_gemm(C, A, B, bias, true, batch, batchB, M, N, K, transA, transB, alpha, beta);
      return;
    } catch (const dnnl::error&) {
      no_bf16.store(true, std::memory_order_relaxed);
    }
  }
  std::vector<float> a(static_cast<size_t>(batch * M * K)), b(static_cast<size_t>(batchB * K * N));
  cast_bf16_f32(a.data(), A, batch * M * K);
  cast_bf16_f32(b.data(), B, batchB * K * N);
  gemm(C, a.data(), b.data(), bias, batch, batchB, M, N, K, transA, transB, alpha, beta);
}

int64_t gemm_cache_size() { return static_cast<int64_t>(cache().size()); }

}  // namespace gpg
