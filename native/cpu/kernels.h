// gpg-rl native core: every compute function in native/cpu/, pure C++ (no N-API).
//
// Arguments go outputs first (written, or updated in place), then inputs, then sizes and scalars;
// a null pointer is an output that is not wanted or an absent optional input where the comment
// says "| null". Pointers arrive already offset to the first element of the view. Functions
// throw gpg::OpError only for bad data (ids, positions, targets out of range; no finite logit);
// argument checks (dtypes, element counts, scalar ranges) are the binding's (native/binding.cc).
// Each .cc file opens with its dimension legend, what forward saves and "=" / "+=" for gradients.
#pragma once

#include <cstdint>

#include "common.h"

namespace gpg {

// ---- adamw.cc: fused AdamW step (torch.optim.AdamW single-tensor path); p, m, v updated in place
void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step);

// ---- attention.cc: causal GQA flash attention with key-padding mask
// out [B,Tq,H,D], lse [B,H,Tq] | null; q [B,Tq,H,D], k, v [B,Tkmax,Hkv,D], mask int32 [B,Tkmax] | null.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* mask,
                       int64_t B, int64_t Tq, int64_t Tk, int64_t Tkmax, int64_t H, int64_t Hkv, int64_t D,
                       float scale);
// dq [B,T,H,D], dk, dv [B,T,Hkv,D] ("="); dout, q, out [B,T,H,D], k, v [B,T,Hkv,D], lse [B,H,T], mask [B,T] | null.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* mask, int64_t B, int64_t T,
                        int64_t H, int64_t Hkv, int64_t D, float scale);

// ---- cast.cc: float32 <-> bfloat16 (bf16 as uint16_t bit patterns)
void cast_f32_bf16(uint16_t* out, const float* x, int64_t n);
void cast_bf16_f32(float* out, const uint16_t* x, int64_t n);

// ---- packed.cc: weight-packed products for generation (panels of 16 outputs, k-major; f32 or bf16)
int64_t packed_panels(int64_t N);
// bf16 panels hold K padded to even (k-pairs): packed_panels(N)·16·2·ceil(K/2) values
int64_t packed_bf16_elems(int64_t N, int64_t K);
// the micro-kernel this build runs ("avx512 + avx512_bf16", "avx512", "avx2", "scalar")
const char* packed_isa();
// The AMX bf16 path of packed_gemm: mode 1 on (where the CPU and OS allow), 0 off (the vector
// path), -1 unchanged; returns whether bf16 products now run on AMX. Benchmarks and tests only.
bool packed_amx(int mode);
// The tile unit's bf16 peak: every thread runs `iters` × 4 register-only TDPBF16PS; GFLOP/s, 0
// without AMX. Benchmark only.
double amx_peak_gflops(int64_t iters);
void packed_pack_f32(float* panels, const float* W, int64_t N, int64_t K);
void packed_pack_bf16(uint16_t* panels, const float* W, int64_t N, int64_t K);
void packed_gemm(float* y, const float* x, const float* panels, const float* bias, int64_t M, int64_t N, int64_t K);
void packed_gemm(float* y, const float* x, const uint16_t* panels, const float* bias, int64_t M, int64_t N, int64_t K);

// ---- paged.cc: paged KV cache (block tables) for the rollout engine
void paged_kv_write(float* kpool, float* vpool, const float* k, const float* v, const int32_t* slots, int64_t n,
                    int64_t S, int64_t row);
void paged_attention_forward(float* out, const float* q, const float* kpool, const float* vpool, const int32_t* table,
                             const int32_t* ctx, int64_t B, int64_t Tq, int64_t H, int64_t Hkv, int64_t D, int64_t bs,
                             int64_t max_blocks, int64_t num_blocks, float scale);

// ---- copy.cc
void copy(void* dst, const void* src, int64_t nbytes);  // memmove
void copy_rows(float* dst, const float* src, int64_t rows, int64_t cols, int64_t dstStride, int64_t srcStride);

// ---- fill.cc, add.cc, axpy.cc, scale.cc, sum_rows.cc: elementwise and reductions over n elements
void fill(float* x, float value, int64_t n);
void add_forward(float* out, const float* a, const float* b, int64_t n);
void axpy(float* y, const float* x, float alpha, int64_t n);                  // y += alpha x
void scale(float* x, float s, int64_t n);                                     // x *= s
void sum_rows(float* out, const float* x, int64_t M, int64_t N, float beta);  // out [N] = beta out + Σ rows of x [M,N]

// ---- dropout.cc: inverted dropout, mask a pure function of (seed, i); backward recomputes it ("=", may alias)
void dropout_forward(float* out, const float* x, int64_t n, float p, uint64_t seed);
void dropout_backward(float* dx, const float* dy, int64_t n, float p, uint64_t seed);

// ---- embedding.cc: gather rows of weight [V,C] by ids [N]; backward scatter-adds ("=" into dweight)
void embedding_forward(float* out, const float* weight, const int32_t* ids, int64_t N, int64_t V, int64_t C);
void embedding_backward(float* dweight, const float* dout, const int32_t* ids, int64_t N, int64_t V, int64_t C,
                        bool accumulate);

// ---- gemm.cc: C [batch,M,N] = alpha op(A) op(B) (+ bias [N] | null) + beta C; B batched (batchB = batch) or shared
// (1). float32 operands go to our sgemm (oneDNN without AVX-512); bf16 operands (uint16_t) to oneDNN.
void gemm(float* C, const float* A, const float* B, const float* bias, int64_t batch, int64_t batchB, int64_t M,
          int64_t N, int64_t K, bool transA, bool transB, float alpha, float beta);
void gemm(float* C, const uint16_t* A, const uint16_t* B, const float* bias, int64_t batch, int64_t batchB, int64_t M,
          int64_t N, int64_t K, bool transA, bool transB, float alpha, float beta);
int64_t gemm_cache_size();  // oneDNN primitives created so far

// ---- sgemm.cc: one float32 product C = alpha op(A) op(B) (+ bias) + beta C (called by gemm.cc).
// Returns false when this build has no AVX-512 kernel (the caller falls back to oneDNN).
bool sgemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
               float beta, float* C, const float* bias);

// ---- gemv.cc: decode-shaped products, y [M,N] = x [M,K] W [N,K]^T (+ bias [N] | null) (+ beta y), M <= 64
void gemv(float* y, const float* x, const float* W, const float* bias, int64_t M, int64_t N, int64_t K, float beta);

// ---- gradnorm.cc: Σ x^2 in double, deterministic for any thread count
double gradnorm_sumsq(const float* x, int64_t n);

// ---- kl.cc: per-row KL(softmax(p/τ) ‖ softmax(q/τ)) and the softmax Fisher (diag(p) − p pᵀ) u (TRPO)
void kl_forward(float* out, const float* p_logits, const float* q_logits, int64_t N, int64_t V, float temperature);
void kl_hvp(float* out, const float* logits, const float* u, int64_t N, int64_t V, float temperature);

// ---- logprobs.cc: log-softmax + gather of token log-probs and token entropy over `rows` logit rows
// (rows rowOff.. of the [N] outputs); backward kernels write "=" and dlogits may alias logits.
void logprobs_forward(float* lp, float* lse, float* entropy, const float* logits, const int32_t* targets, int64_t rows,
                      int64_t V, double temperature, int64_t rowOff);
void logprobs_backward(float* dlogits, const float* logits, const float* dlp, const float* lse, const int32_t* targets,
                       int64_t rows, int64_t V, double temperature, int64_t rowOff);
void logprobs_entropy_backward(float* dlogits, const float* logits, const float* dH, const float* lse,
                               const float* entropy, int64_t rows, int64_t V, double temperature, int64_t rowOff);

// ---- rmsnorm.cc: y [N,C], rstd [N] (saved); backward writes dx [N,C] | null, dw [C] | null with "="
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t C, double eps);
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      int64_t N, int64_t C);

// ---- rope.cc: rotate-half RoPE over [B,T,H,D] with positions int32 [B,T]; backward rotates by -angle ("=")
void rope_forward(float* y, const float* x, const int32_t* positions, int64_t B, int64_t T, int64_t H, int64_t D,
                  double theta);
void rope_backward(float* dx, const float* dy, const int32_t* positions, int64_t B, int64_t T, int64_t H, int64_t D,
                   double theta);

// ---- sample.cc: one token per row of logits [B,V] (temperature, top-k, top-p), log-prob over the full vocabulary
void sample_tokens(int32_t* ids, float* lp, const float* logits, const float* uniforms, int64_t B, int64_t V,
                   double temperature, int64_t top_k, double top_p, bool greedy);

// ---- swiglu.cc: out = silu(gate) up over n; backward writes dgate | null, dup | null with "="
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

}  // namespace gpg
