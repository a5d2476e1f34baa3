// GEMM: float32 through our AVX-512 kernel (native/kernels/sgemm.cc), bf16 operands with fp32
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
// beta = 1 accumulates gradients in place ("+=" convention).
// Primitives are created once per (shape, transposes, dtype, alpha, beta, bias) and cached.
#include <dnnl.hpp>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "addon.h"

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
  dnnl::matmul::desc d = has_bias ? dnnl::matmul::desc(p->a, p->b, p->bias, p->c) : dnnl::matmul::desc(p->a, p->b, p->c);
  dnnl::matmul::primitive_desc pd(d, attr, cpu_engine());
  p->prim = dnnl::matmul(pd);
  c.emplace(key.str(), p);
  return p;
}

}  // namespace

// gemm(C, A, B, bias|null, batch, batchB, M, N, K, transA, transB, alpha, beta, aOff, bOff, cOff)
// Offsets are element offsets into the storages (views such as KV-cache slices).
GPG_OP(gemm) {
  Args a(info, "gemm");
  int64_t batch = a.integer(4, "batch", 1), batchB = a.integer(5, "batchB", 1);
  int64_t M = a.integer(6, "M", 1), N = a.integer(7, "N", 1), K = a.integer(8, "K", 1);
  bool tA = a.boolean(9, "transA"), tB = a.boolean(10, "transB");
  float alpha = static_cast<float>(a.number(11, "alpha"));
  float beta = static_cast<float>(a.number(12, "beta"));
  int64_t aOff = a.present(13) ? a.integer(13, "aOff") : 0;
  int64_t bOff = a.present(14) ? a.integer(14, "bOff") : 0;
  int64_t cOff = a.present(15) ? a.integer(15, "cOff") : 0;
  if (batchB != batch && batchB != 1) a.fail("batchB must equal batch or 1, got " + std::to_string(batchB));
  Storage* sA = a.storage(1, "A");
  Storage* sB = a.storage(2, "B");
  if (sA->dtype != sB->dtype) a.fail(std::string("A is ") + dtype_name(sA->dtype) + " but B is " + dtype_name(sB->dtype));
  if (sA->dtype == DType::I32) a.fail("int32 operands are not supported");
  bool bf16 = sA->dtype == DType::BF16;
  if ((int64_t)sA->numel < aOff + batch * M * K) a.fail("A holds " + std::to_string(sA->numel) + " elements, needs " + std::to_string(aOff + batch * M * K));
  if ((int64_t)sB->numel < bOff + batchB * K * N) a.fail("B holds " + std::to_string(sB->numel) + " elements, needs " + std::to_string(bOff + batchB * K * N));
  float* C = a.f32(0, "C", cOff + batch * M * N);
  float* bias = nullptr;
  if (a.present(3)) {
    bias = a.f32(3, "bias", N);
    if (alpha != 1.0f) a.fail("bias with alpha != 1 is not supported");
  }
  if (!bf16) {
    const float* A = static_cast<const float*>(sA->data) + aOff;
    const float* B = static_cast<const float*>(sB->data) + bOff;
    bool done = true;
    for (int64_t b = 0; b < batch && done; b++)
      done = sgemm_f32(tA, tB, M, N, K, alpha, A + b * M * K, B + (batchB == 1 ? 0 : b * K * N), beta, C + cOff + b * M * N, bias);
    if (done) return info.Env().Undefined();
  }
  auto p = get_prim(batch, batchB, M, N, K, tA, tB, bf16, bias != nullptr, alpha, beta);
  size_t es = bf16 ? 2 : 4;
  dnnl::engine& eng = cpu_engine();
  dnnl::memory ma(p->a, eng, static_cast<char*>(sA->data) + aOff * es);
  dnnl::memory mb(p->b, eng, static_cast<char*>(sB->data) + bOff * es);
  dnnl::memory mc(p->c, eng, C + cOff);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p->bias, eng, bias));
  p->prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  return info.Env().Undefined();
}

GPG_OP(gemm_cache_size) { return Napi::Number::New(info.Env(), (double)cache().size()); }

}  // namespace gpg
