// gpg-rl native core: the N-API surface for ops. One binding table (kOps, exported as addon.ops;
// kBench, exported as addon.bench): one entry per op that reads its arguments with Args, checks
// them, and calls the pure compute function of native/cpu/ (native/bench/ for kBench). The
// trampoline below is the only place C++ exceptions are caught: each becomes the TypeScript
// NativeOpError "<op>: <message>", so nothing aborts. Storage and Args: binding.h / storage.cc.
#include <malloc.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>

#include "bench/bench.h"
#include "binding.h"
#include "cpu/kernels.h"

namespace gpg {
namespace {

// ---------------------------------------------------------------------------------------------
// Shared argument groups

// logprobs_*(..., rows, V, temperature, rowOff = 0) at arguments 5..8
struct LogprobDims {
  int64_t rows, V;
  double temp;
  int64_t rowOff;
};
LogprobDims logprob_dims(const Args& a) {
  LogprobDims d{};
  d.rows = a.integer(5, "rows");
  d.V = a.integer(6, "V", 1);
  d.temp = a.number(7, "temperature");
  d.rowOff = a.present(8) ? a.integer(8, "rowOff") : 0;
  REQUIRE(d.temp > 0 && std::isfinite(d.temp), "temperature must be a positive finite number, got " << d.temp);
  return d;
}

// rope_*(out, in, positions, B, T, H, D, theta): y, x going forward; dx, dy going backward
template <void (*F)(float*, const float*, const int32_t*, int64_t, int64_t, int64_t, int64_t, double)>
Napi::Value rope_entry(const Args& a, const char* out_name, const char* in_name) {
  const int64_t B = a.integer(3, "B"), T = a.integer(4, "T"), H = a.integer(5, "H"), D = a.integer(6, "D", 2);
  const double theta = a.number(7, "theta");
  REQUIRE(D % 2 == 0, "head dim D must be even, got " << D);
  REQUIRE(theta > 0 && std::isfinite(theta), "theta must be finite and > 0, got " << theta);
  const int64_t n = B * T * H * D;
  float* out = a.f32(0, out_name, n);
  const float* in = a.f32(1, in_name, n);
  const int32_t* pos = a.i32(2, "positions", B * T);
  F(out, in, pos, B, T, H, D, theta);
  return a.undefined();
}

// ---------------------------------------------------------------------------------------------
// The binding table: addon.ops.<name>(...) and addon.bench.<name>(...). Each entry reads its
// arguments in the order of the comment above it (outputs first, as the compute functions take
// them), checks them, and calls native/cpu/<file>.cc. Entries return undefined unless noted.
struct OpEntry {
  const char* name;
  Napi::Value (*fn)(const Args&);
};

const OpEntry kOps[] = {
    // adamw_step(p [n], g [n], m [n], v [n], n, lr, beta1, beta2, eps, weight_decay, step)
    {"adamw_step",
     [](const Args& a) {
       const int64_t n = a.integer(4, "n");
       const double lr = a.number(5, "lr"), b1 = a.number(6, "beta1"), b2 = a.number(7, "beta2");
       const double eps = a.number(8, "eps"), wd = a.number(9, "weight_decay");
       const int64_t step = a.integer(10, "step", 1);
       REQUIRE(std::isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got " << lr);
       REQUIRE(b1 >= 0 && b1 < 1, "beta1 must be in [0, 1), got " << b1);
       REQUIRE(b2 >= 0 && b2 < 1, "beta2 must be in [0, 1), got " << b2);
       REQUIRE(std::isfinite(eps) && eps >= 0, "eps must be finite and >= 0, got " << eps);
       REQUIRE(std::isfinite(wd) && wd >= 0, "weight_decay must be finite and >= 0, got " << wd);
       float* p = a.f32(0, "param", n);
       const float* g = a.f32(1, "grad", n);
       float* m = a.f32(2, "exp_avg", n);
       float* v = a.f32(3, "exp_avg_sq", n);
       adamw_step(p, m, v, g, n, lr, b1, b2, eps, wd, step);
       return a.undefined();
     }},
    // add_forward(out [n], a [n], b [n], n): out = a + b
    {"add_forward",
     [](const Args& a) {
       const int64_t n = a.integer(3, "n");
       float* out = a.f32(0, "out", n);
       const float* x = a.f32(1, "a", n);
       const float* y = a.f32(2, "b", n);
       add_forward(out, x, y, n);
       return a.undefined();
     }},
    // attention_forward(out [B,Tq,H,D], lse [B,H,Tq] | null, q [B,Tq,H,D], k [B,Tkmax,Hkv,D], v, mask int32 [B,Tkmax] |
    // null,
    //                   B, Tq, Tk, Tkmax, H, Hkv, D, scale)
    {"attention_forward",
     [](const Args& a) {
       const int64_t B = a.integer(6, "B"), Tq = a.integer(7, "Tq"), Tk = a.integer(8, "Tk"),
                     Tkmax = a.integer(9, "Tkmax");
       const int64_t H = a.integer(10, "H", 1), Hkv = a.integer(11, "Hkv", 1), D = a.integer(12, "D", 1);
       const float scale = static_cast<float>(a.number(13, "scale"));
       REQUIRE(H % Hkv == 0, "H = " << H << " is not a multiple of Hkv = " << Hkv);
       REQUIRE(Tq <= Tk && Tk <= Tkmax,
               "need Tq <= Tk <= Tkmax, got Tq = " << Tq << ", Tk = " << Tk << ", Tkmax = " << Tkmax);
       REQUIRE(std::isfinite(scale), "scale must be finite, got " << scale);
       const int64_t nqe = B * Tq * H * D, nkv = B * Tkmax * Hkv * D;
       float* out = a.f32(0, "out", nqe);
       float* lse = a.present(1) ? a.f32(1, "lse", B * H * Tq) : nullptr;
       const float* q = a.f32(2, "q", nqe);
       const float* k = a.f32(3, "k", nkv);
       const float* v = a.f32(4, "v", nkv);
       const int32_t* mask = a.present(5) ? a.i32(5, "mask", B * Tkmax) : nullptr;
       attention_forward(out, lse, q, k, v, mask, B, Tq, Tk, Tkmax, H, Hkv, D, scale);
       return a.undefined();
     }},
    // attention_backward(dq, dk, dv, dout, q, k, v, out, lse, mask | null, B, T, H, Hkv, D, scale): "=" into dq, dk, dv
    {"attention_backward",
     [](const Args& a) {
       const int64_t T = a.integer(11, "T"), B = a.integer(10, "B");
       const int64_t H = a.integer(12, "H", 1), Hkv = a.integer(13, "Hkv", 1), D = a.integer(14, "D", 1);
       const float scale = static_cast<float>(a.number(15, "scale"));
       REQUIRE(H % Hkv == 0, "H = " << H << " is not a multiple of Hkv = " << Hkv);
       const int64_t nqe = B * T * H * D, nkv = B * T * Hkv * D, nl = B * H * T;
       float* dq = a.f32(0, "dq", nqe);
       float* dk = a.f32(1, "dk", nkv);
       float* dv = a.f32(2, "dv", nkv);
       const float* dout = a.f32(3, "dout", nqe);
       const float* q = a.f32(4, "q", nqe);
       const float* k = a.f32(5, "k", nkv);
       const float* v = a.f32(6, "v", nkv);
       const float* out = a.f32(7, "out", nqe);
       const float* lse = a.f32(8, "lse", nl);
       const int32_t* mask = a.present(9) ? a.i32(9, "mask", B * T) : nullptr;
       attention_backward(dq, dk, dv, dout, q, k, v, out, lse, mask, B, T, H, Hkv, D, scale);
       return a.undefined();
     }},
    // axpy(y [n], x [n], alpha, n): y += alpha * x
    {"axpy",
     [](const Args& a) {
       const int64_t n = a.integer(3, "n");
       float* y = a.f32(0, "y", n);
       const float* x = a.f32(1, "x", n);
       axpy(y, x, static_cast<float>(a.number(2, "alpha")), n);
       return a.undefined();
     }},
    // cast_f32_bf16(out bf16 [n], x f32 [n], n)
    {"cast_f32_bf16",
     [](const Args& a) {
       const int64_t n = a.integer(2, "n");
       uint16_t* out = a.bf16(0, "out", n);
       const float* x = a.f32(1, "x", n);
       cast_f32_bf16(out, x, n);
       return a.undefined();
     }},
    // cast_bf16_f32(out f32 [n], x bf16 [n], n)
    {"cast_bf16_f32",
     [](const Args& a) {
       const int64_t n = a.integer(2, "n");
       float* out = a.f32(0, "out", n);
       const uint16_t* x = a.bf16(1, "x", n);
       cast_bf16_f32(out, x, n);
       return a.undefined();
     }},
    // copy(dst, dstOff, src, srcOff, n): same dtype (any), element offsets (slices, KV-cache writes)
    {"copy",
     [](const Args& a) {
       Storage* d = a.storage(0, "dst");
       const int64_t dOff = a.integer(1, "dstOff");
       Storage* s = a.storage(2, "src");
       const int64_t sOff = a.integer(3, "srcOff"), n = a.integer(4, "n");
       if (d->dtype != s->dtype)
         a.fail(std::string("dst is ") + dtype_name(d->dtype) + ", src is " + dtype_name(s->dtype));
       if ((int64_t)d->numel < dOff + n || (int64_t)s->numel < sOff + n) a.fail("range out of bounds");
       const int64_t es = static_cast<int64_t>(dtype_size(d->dtype));
       copy(static_cast<char*>(d->data) + dOff * es, static_cast<const char*>(s->data) + sOff * es, n * es);
       return a.undefined();
     }},
    // packed_pack_f32 / packed_pack_bf16(panels f32 [ceil(N/16)·16·K] | bf16 [ceil(N/16)·16·2·ceil(K/2)], W f32 [N,K],
    // N, K): pack a weight for packed_gemm
    {"packed_pack_f32",
     [](const Args& a) {
       const int64_t N = a.integer(2, "N", 1), K = a.integer(3, "K", 1);
       packed_pack_f32(a.f32(0, "panels", packed_panels(N) * 16 * K), a.f32(1, "W", N * K), N, K);
       return a.undefined();
     }},
    {"packed_pack_bf16",
     [](const Args& a) {
       const int64_t N = a.integer(2, "N", 1), K = a.integer(3, "K", 1);
       packed_pack_bf16(a.bf16(0, "panels", packed_bf16_elems(N, K)), a.f32(1, "W", N * K), N, K);
       return a.undefined();
     }},
    // packed_gemm(y f32 [M,N], x f32 [M,K], panels f32|bf16, bias f32 [N] | null, M, N, K): y = x·Wᵀ (+ bias)
    {"packed_gemm",
     [](const Args& a) {
       const int64_t M = a.integer(4, "M"), N = a.integer(5, "N", 1), K = a.integer(6, "K", 1);
       float* y = a.f32(0, "y", M * N);
       const float* x = a.f32(1, "x", M * K);
       const float* bias = a.present(3) ? a.f32(3, "bias", N) : nullptr;
       if (a.storage(2, "panels")->dtype == DType::BF16)
         packed_gemm(y, x, a.bf16(2, "panels", packed_bf16_elems(N, K)), bias, M, N, K);
       else
         packed_gemm(y, x, a.f32(2, "panels", packed_panels(N) * 16 * K), bias, M, N, K);
       return a.undefined();
     }},
    // paged_kv_write(kpool [S,row], vpool, k [n,row], v, slots i32 [n], n, S, row): scatter rows into slots
    {"paged_kv_write",
     [](const Args& a) {
       const int64_t n = a.integer(5, "n"), S = a.integer(6, "S", 1), row = a.integer(7, "row", 1);
       float* kp = a.f32(0, "kpool", S * row);
       float* vp = a.f32(1, "vpool", S * row);
       const float* k = a.f32(2, "k", n * row);
       const float* v = a.f32(3, "v", n * row);
       const int32_t* slots = a.i32(4, "slots", n);
       paged_kv_write(kp, vp, k, v, slots, n, S, row);
       return a.undefined();
     }},
    // paged_attention_forward(out [B,Tq,H,D], q, kpool [NB*bs,Hkv,D], vpool, table i32 [B,maxBlocks], ctx i32 [B],
    //                         B, Tq, H, Hkv, D, bs, maxBlocks, NB, scale)
    {"paged_attention_forward",
     [](const Args& a) {
       const int64_t B = a.integer(6, "B"), Tq = a.integer(7, "Tq", 1);
       const int64_t H = a.integer(8, "H", 1), Hkv = a.integer(9, "Hkv", 1), D = a.integer(10, "D", 1);
       const int64_t bs = a.integer(11, "blockSize", 1), mb = a.integer(12, "maxBlocks", 1),
                     nb = a.integer(13, "numBlocks", 1);
       const float scale = static_cast<float>(a.number(14, "scale"));
       REQUIRE(H % Hkv == 0, "H = " << H << " is not a multiple of Hkv = " << Hkv);
       REQUIRE(std::isfinite(scale), "scale must be finite, got " << scale);
       const int64_t nq = B * Tq * H * D, np = nb * bs * Hkv * D;
       float* out = a.f32(0, "out", nq);
       const float* q = a.f32(1, "q", nq);
       const float* kp = a.f32(2, "kpool", np);
       const float* vp = a.f32(3, "vpool", np);
       const int32_t* table = a.i32(4, "table", B * mb);
       const int32_t* ctx = a.i32(5, "ctx", B);
       paged_attention_forward(out, q, kp, vp, table, ctx, B, Tq, H, Hkv, D, bs, mb, nb, scale);
       return a.undefined();
     }},
    // copy_rows(dst, src, rows, cols, dstStride, srcStride, dstOff, srcOff): f32 2-D block copy
    {"copy_rows",
     [](const Args& a) {
       const int64_t rows = a.integer(2, "rows"), cols = a.integer(3, "cols");
       const int64_t ds = a.integer(4, "dstStride"), ss = a.integer(5, "srcStride");
       const int64_t dOff = a.integer(6, "dstOff"), sOff = a.integer(7, "srcOff");
       if (rows == 0 || cols == 0) return a.undefined();
       float* d = a.f32(0, "dst", dOff + (rows - 1) * ds + cols);
       const float* s = a.f32(1, "src", sOff + (rows - 1) * ss + cols);
       copy_rows(d + dOff, s + sOff, rows, cols, ds, ss);
       return a.undefined();
     }},
    // dropout_forward(out [n], x [n], n, p, seed) / dropout_backward(dx [n], dy [n], n, p, seed): "=", may alias;
    // seed an integer < 2^53 (the mask of element i is a function of seed and i only)
    {"dropout_forward",
     [](const Args& a) {
       const int64_t n = a.integer(2, "n");
       const double p = a.number(3, "p");
       REQUIRE(p >= 0 && p < 1, "p must be in [0, 1), got " << p);
       const uint64_t seed = static_cast<uint64_t>(a.integer(4, "seed"));
       dropout_forward(a.f32(0, "out", n), a.f32(1, "x", n), n, static_cast<float>(p), seed);
       return a.undefined();
     }},
    {"dropout_backward",
     [](const Args& a) {
       const int64_t n = a.integer(2, "n");
       const double p = a.number(3, "p");
       REQUIRE(p >= 0 && p < 1, "p must be in [0, 1), got " << p);
       const uint64_t seed = static_cast<uint64_t>(a.integer(4, "seed"));
       dropout_backward(a.f32(0, "dx", n), a.f32(1, "dy", n), n, static_cast<float>(p), seed);
       return a.undefined();
     }},
    // embedding_forward(out [N,C], weight [V,C], ids i32 [N], N, V, C)
    {"embedding_forward",
     [](const Args& a) {
       const int64_t N = a.integer(3, "N"), V = a.integer(4, "V"), C = a.integer(5, "C");
       float* out = a.f32(0, "out", N * C);
       const float* w = a.f32(1, "weight", V * C);
       const int32_t* ids = a.i32(2, "ids", N);
       embedding_forward(out, w, ids, N, V, C);
       return a.undefined();
     }},
    // embedding_backward(dweight [V,C], dout [N,C], ids i32 [N], N, V, C, accumulate): dweight = (+=) scatter-add of
    // dout
    {"embedding_backward",
     [](const Args& a) {
       const int64_t N = a.integer(3, "N"), V = a.integer(4, "V"), C = a.integer(5, "C");
       float* dw = a.f32(0, "dweight", V * C);
       const float* dy = a.f32(1, "dout", N * C);
       const int32_t* ids = a.i32(2, "ids", N);
       embedding_backward(dw, dy, ids, N, V, C, a.boolean(6, "accumulate"));
       return a.undefined();
     }},
    // fill(x f32, value, n)
    {"fill",
     [](const Args& a) {
       const int64_t n = a.integer(2, "n");
       float* x = a.f32(0, "x", n);
       fill(x, static_cast<float>(a.number(1, "value")), n);
       return a.undefined();
     }},
    // gemm(C, A, B, bias | null, batch, batchB, M, N, K, transA, transB, alpha, beta, aOff, bOff, cOff): A and B both
    // float32 or both bfloat16, C and bias float32. Offsets are element offsets into the storages (KV-cache slices).
    {"gemm",
     [](const Args& a) {
       const int64_t batch = a.integer(4, "batch", 1), batchB = a.integer(5, "batchB", 1);
       const int64_t M = a.integer(6, "M", 1), N = a.integer(7, "N", 1), K = a.integer(8, "K", 1);
       const bool tA = a.boolean(9, "transA"), tB = a.boolean(10, "transB");
       const float alpha = static_cast<float>(a.number(11, "alpha")), beta = static_cast<float>(a.number(12, "beta"));
       const int64_t aOff = a.present(13) ? a.integer(13, "aOff") : 0;
       const int64_t bOff = a.present(14) ? a.integer(14, "bOff") : 0;
       const int64_t cOff = a.present(15) ? a.integer(15, "cOff") : 0;
       if (batchB != batch && batchB != 1) a.fail("batchB must equal batch or 1, got " + std::to_string(batchB));
       Storage* sA = a.storage(1, "A");
       Storage* sB = a.storage(2, "B");
       if (sA->dtype != sB->dtype)
         a.fail(std::string("A is ") + dtype_name(sA->dtype) + " but B is " + dtype_name(sB->dtype));
       if (sA->dtype == DType::I32) a.fail("int32 operands are not supported");
       if ((int64_t)sA->numel < aOff + batch * M * K)
         a.fail("A holds " + std::to_string(sA->numel) + " elements, needs " + std::to_string(aOff + batch * M * K));
       if ((int64_t)sB->numel < bOff + batchB * K * N)
         a.fail("B holds " + std::to_string(sB->numel) + " elements, needs " + std::to_string(bOff + batchB * K * N));
       float* C = a.f32(0, "C", cOff + batch * M * N) + cOff;
       const float* bias = nullptr;
       if (a.present(3)) {
         bias = a.f32(3, "bias", N);
         if (alpha != 1.0f) a.fail("bias with alpha != 1 is not supported");
       }
       if (sA->dtype == DType::BF16)
         gemm(C, static_cast<const uint16_t*>(sA->data) + aOff, static_cast<const uint16_t*>(sB->data) + bOff, bias,
              batch, batchB, M, N, K, tA, tB, alpha, beta);
       else
         gemm(C, static_cast<const float*>(sA->data) + aOff, static_cast<const float*>(sB->data) + bOff, bias, batch,
              batchB, M, N, K, tA, tB, alpha, beta);
       return a.undefined();
     }},
    // gemm_cache_size() -> number of cached oneDNN primitives
    {"gemm_cache_size",
     [](const Args& a) {
       return Napi::Number::New(a.env(), static_cast<double>(gemm_cache_size())).As<Napi::Value>();
     }},
    // gemv(y [M,N], x [M,K], W [N,K], bias [N] | null, M, N, K, beta): decode-shaped y = x Wᵀ (+ bias) (+ beta y)
    {"gemv",
     [](const Args& a) {
       const int64_t M = a.integer(4, "M", 1), N = a.integer(5, "N", 1), K = a.integer(6, "K", 1);
       const float beta = static_cast<float>(a.number(7, "beta"));
       if (M > 64) a.fail("M must be ≤ 64 (got " + std::to_string(M) + "); use gemm");
       float* y = a.f32(0, "y", M * N);
       const float* x = a.f32(1, "x", M * K);
       const float* W = a.f32(2, "W", N * K);
       const float* bias = a.present(3) ? a.f32(3, "bias", N) : nullptr;
       gemv(y, x, W, bias, M, N, K, beta);
       return a.undefined();
     }},
    // gradnorm_sumsq(x [n], n) -> number (double): sum over i of x[i]^2
    {"gradnorm_sumsq",
     [](const Args& a) {
       const int64_t n = a.integer(1, "n");
       const float* x = a.f32(0, "x", n);
       return Napi::Number::New(a.env(), gradnorm_sumsq(x, n)).As<Napi::Value>();
     }},
    // kl_forward(out [N], p_logits [N, V], q_logits [N, V], N, V, temperature): KL(p ‖ q) per row
    {"kl_forward",
     [](const Args& a) {
       const int64_t N = a.integer(3, "N"), V = a.integer(4, "V");
       const double temp = a.number(5, "temperature");
       if (!(temp > 0)) a.fail("temperature must be > 0, got " + std::to_string(temp));
       float* out = a.f32(0, "out", N);
       const float* p = a.f32(1, "p_logits", N * V);
       const float* q = a.f32(2, "q_logits", N * V);
       kl_forward(out, p, q, N, V, static_cast<float>(temp));
       return a.undefined();
     }},
    // kl_hvp(out [N, V], logits [N, V], u [N, V], N, V, temperature): out = (diag(p) − p pᵀ) u per row
    {"kl_hvp",
     [](const Args& a) {
       const int64_t N = a.integer(3, "N"), V = a.integer(4, "V");
       const double temp = a.number(5, "temperature");
       if (!(temp > 0)) a.fail("temperature must be > 0, got " + std::to_string(temp));
       float* out = a.f32(0, "out", N * V);
       const float* x = a.f32(1, "logits", N * V);
       const float* u = a.f32(2, "u", N * V);
       kl_hvp(out, x, u, N, V, static_cast<float>(temp));
       return a.undefined();
     }},
    // logprobs_forward(lp [N] | null, lse [N], entropy [N] | null, logits [rows, V], targets int32 [N] | null,
    //                  rows, V, temperature, rowOff = 0)
    {"logprobs_forward",
     [](const Args& a) {
       const LogprobDims d = logprob_dims(a);
       const bool wantLp = a.present(0);
       REQUIRE(wantLp == a.present(4), "lp and targets must be given together");
       float* lp = wantLp ? a.f32(0, "lp", d.rowOff + d.rows) : nullptr;
       float* lse = a.f32(1, "lse", d.rowOff + d.rows);
       float* ent = a.present(2) ? a.f32(2, "entropy", d.rowOff + d.rows) : nullptr;
       const float* x = a.f32(3, "logits", d.rows * d.V);
       const int32_t* tg = wantLp ? a.i32(4, "targets", d.rowOff + d.rows) : nullptr;
       logprobs_forward(lp, lse, ent, x, tg, d.rows, d.V, d.temp, d.rowOff);
       return a.undefined();
     }},
    // logprobs_backward(dlogits [rows, V], logits [rows, V] (may be the same storage), dlp [N], lse [N], targets [N],
    //                   rows, V, temperature, rowOff = 0): "=" into dlogits
    {"logprobs_backward",
     [](const Args& a) {
       const LogprobDims d = logprob_dims(a);
       float* dx = a.f32(0, "dlogits", d.rows * d.V);
       const float* x = a.f32(1, "logits", d.rows * d.V);
       const float* dlp = a.f32(2, "dlp", d.rowOff + d.rows);
       const float* lse = a.f32(3, "lse", d.rowOff + d.rows);
       const int32_t* tg = a.i32(4, "targets", d.rowOff + d.rows);
       logprobs_backward(dx, x, dlp, lse, tg, d.rows, d.V, d.temp, d.rowOff);
       return a.undefined();
     }},
    // logprobs_entropy_backward(dlogits [rows, V], logits [rows, V] (may alias), dH [N], lse [N], entropy [N],
    //                           rows, V, temperature, rowOff = 0): "=" into dlogits
    {"logprobs_entropy_backward",
     [](const Args& a) {
       const LogprobDims d = logprob_dims(a);
       float* dx = a.f32(0, "dlogits", d.rows * d.V);
       const float* x = a.f32(1, "logits", d.rows * d.V);
       const float* dH = a.f32(2, "dH", d.rowOff + d.rows);
       const float* lse = a.f32(3, "lse", d.rowOff + d.rows);
       const float* ent = a.f32(4, "entropy", d.rowOff + d.rows);
       logprobs_entropy_backward(dx, x, dH, lse, ent, d.rows, d.V, d.temp, d.rowOff);
       return a.undefined();
     }},
    // rmsnorm_forward(y [N,C], rstd [N], x [N,C], w [C], N, C, eps)
    {"rmsnorm_forward",
     [](const Args& a) {
       const int64_t N = a.integer(4, "N"), C = a.integer(5, "C", 1);
       const double eps = a.number(6, "eps");
       REQUIRE(eps >= 0 && std::isfinite(eps), "eps must be finite and >= 0, got " << eps);
       float* y = a.f32(0, "y", N * C);
       float* rstd = a.f32(1, "rstd", N);
       const float* x = a.f32(2, "x", N * C);
       const float* w = a.f32(3, "w", C);
       rmsnorm_forward(y, rstd, x, w, N, C, eps);
       return a.undefined();
     }},
    // rmsnorm_backward(dx [N,C] | null, dw [C] | null, dy [N,C], x [N,C], w [C], rstd [N], N, C)
    {"rmsnorm_backward",
     [](const Args& a) {
       const int64_t N = a.integer(6, "N"), C = a.integer(7, "C", 1);
       float* dx = a.present(0) ? a.f32(0, "dx", N * C) : nullptr;
       float* dw = a.present(1) ? a.f32(1, "dw", C) : nullptr;
       const float* dy = a.f32(2, "dy", N * C);
       const float* x = a.f32(3, "x", N * C);
       const float* w = a.f32(4, "w", C);
       const float* rstd = a.f32(5, "rstd", N);
       rmsnorm_backward(dx, dw, dy, x, w, rstd, N, C);
       return a.undefined();
     }},
    // rope_forward(y [B,T,H,D], x [B,T,H,D], positions i32 [B,T], B, T, H, D, theta)
    {"rope_forward", [](const Args& a) { return rope_entry<rope_forward>(a, "y", "x"); }},
    // rope_backward(dx [B,T,H,D], dy [B,T,H,D], positions i32 [B,T], B, T, H, D, theta): "=" into dx
    {"rope_backward", [](const Args& a) { return rope_entry<rope_backward>(a, "dx", "dy"); }},
    // sample_tokens(out_ids i32 [B], out_lp f32 [B], logits f32 [B, V], uniforms f32 [B],
    //               B, V, temperature, top_k (0 = off), top_p (1 = off), greedy)
    {"sample_tokens",
     [](const Args& a) {
       const int64_t B = a.integer(4, "B", 1), V = a.integer(5, "V", 1);
       const double temp = a.number(6, "temperature");
       const int64_t top_k = a.integer(7, "top_k");
       const double top_p = a.number(8, "top_p");
       const bool greedy = a.boolean(9, "greedy");
       if (!(temp > 0)) a.fail("temperature must be > 0, got " + std::to_string(temp));
       if (!(top_p > 0 && top_p <= 1)) a.fail("top_p must be in (0, 1], got " + std::to_string(top_p));
       int32_t* ids = a.i32(0, "out_ids", B);
       float* lp = a.f32(1, "out_lp", B);
       const float* logits = a.f32(2, "logits", B * V);
       const float* u = a.f32(3, "uniforms", B);
       sample_tokens(ids, lp, logits, u, B, V, temp, top_k, top_p, greedy);
       return a.undefined();
     }},
    // scale(x [n], s, n): x *= s
    {"scale",
     [](const Args& a) {
       const int64_t n = a.integer(2, "n");
       float* x = a.f32(0, "x", n);
       scale(x, static_cast<float>(a.number(1, "s")), n);
       return a.undefined();
     }},
    // sum_rows(out [N], x [M, N], M, N, beta): out = beta * out + sum over rows of x (bias gradients)
    {"sum_rows",
     [](const Args& a) {
       const int64_t M = a.integer(2, "M"), N = a.integer(3, "N");
       const float beta = static_cast<float>(a.number(4, "beta"));
       float* out = a.f32(0, "out", N);
       const float* x = a.f32(1, "x", M * N);
       sum_rows(out, x, M, N, beta);
       return a.undefined();
     }},
    // swiglu_forward(out [n], gate [n], up [n], n)
    {"swiglu_forward",
     [](const Args& a) {
       const int64_t n = a.integer(3, "n");
       float* out = a.f32(0, "out", n);
       const float* g = a.f32(1, "gate", n);
       const float* u = a.f32(2, "up", n);
       swiglu_forward(out, g, u, n);
       return a.undefined();
     }},
    // swiglu_backward(dgate [n] | null, dup [n] | null, dout [n], gate [n], up [n], n)
    {"swiglu_backward",
     [](const Args& a) {
       const int64_t n = a.integer(5, "n");
       float* dg = a.present(0) ? a.f32(0, "dgate", n) : nullptr;
       float* du = a.present(1) ? a.f32(1, "dup", n) : nullptr;
       const float* dy = a.f32(2, "dout", n);
       const float* g = a.f32(3, "gate", n);
       const float* u = a.f32(4, "up", n);
       swiglu_backward(dg, du, dy, g, u, n);
       return a.undefined();
     }},
};

const OpEntry kBench[] = {
    // fma_peak(iters) -> { gflops, threads, lanes }
    {"fma_peak",
     [](const Args& a) {
       const FmaPeak r = fma_peak(a.integer(0, "iters", 1));
       Napi::Object o = Napi::Object::New(a.env());
       o.Set("gflops", r.gflops);
       o.Set("threads", r.threads);
       o.Set("lanes", r.lanes);
       return o.As<Napi::Value>();
     }},
    // kernel_isa() -> the instruction set this build's kernels use (e.g. "avx512 + avx512_bf16")
    {"kernel_isa", [](const Args& a) { return Napi::String::New(a.env(), packed_isa()).As<Napi::Value>(); }},
    // packed_amx(mode) -> whether packed_gemm's bf16 products run on AMX now; mode 1 asks for AMX
    // (where the CPU and OS allow it), 0 the vector path, -1 leaves it as it is
    {"packed_amx",
     [](const Args& a) {
       return Napi::Boolean::New(a.env(), packed_amx(static_cast<int>(a.integer(0, "mode", -1)))).As<Napi::Value>();
     }},
    // amx_peak(iters) -> GFLOP/s of register-only bf16 tile products on every thread (0 without AMX)
    {"amx_peak",
     [](const Args& a) {
       return Napi::Number::New(a.env(), amx_peak_gflops(a.integer(0, "iters", 1))).As<Napi::Value>();
     }},
    // mem_bandwidth(bytes, reps) -> GB/s, best of reps
    {"mem_bandwidth",
     [](const Args& a) {
       const int64_t bytes = a.integer(0, "bytes", 1 << 20), reps = a.integer(1, "reps", 1);
       return Napi::Number::New(a.env(), mem_bandwidth(bytes, reps)).As<Napi::Value>();
     }},
};

// One trampoline for all entries (the entry is the function's data): the only place C++
// exceptions are caught; each becomes a NativeOpError "<op>: <message>".
Napi::Value trampoline(const Napi::CallbackInfo& info) {
  const OpEntry* e = static_cast<const OpEntry*>(info.Data());
  try {
    return e->fn(Args(info, e->name));
  } catch (const OpError& err) {
    std::string m = err.what();
    // Args::fail already prefixes the op name.
    if (m.rfind(std::string(e->name) + ":", 0) == 0) m = m.substr(std::strlen(e->name) + 2);
    throw_op_error(info.Env(), e->name, m);
  } catch (const std::bad_alloc&) {
    throw_op_error(info.Env(), e->name, "out of memory");
  } catch (const std::exception& err) {
    throw_op_error(info.Env(), e->name, err.what());
  } catch (...) {
    throw_op_error(info.Env(), e->name, "unknown native error");
  }
  return info.Env().Undefined();
}

template <size_t N>
Napi::Object table_object(Napi::Env env, const OpEntry (&table)[N]) {
  Napi::Object o = Napi::Object::New(env);
  for (const OpEntry& e : table) o.Set(e.name, Napi::Function::New(env, trampoline, e.name, const_cast<OpEntry*>(&e)));
  return o;
}

}  // namespace
}  // namespace gpg

// ---------------------------------------------------------------------------------------------
// Methods available to JavaScript
using namespace gpg;

// init(NativeOpError) — hands the TS error class to C++ once (better-sqlite3 style).
static Napi::Value InitErrors(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsFunction()) set_error_class(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) {
    int n = info[0].As<Napi::Number>().Int32Value();
    if (n >= 1) omp_set_num_threads(n);
  }
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}
static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}
static Napi::Value LiveBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(live_bytes()));
}

// allocStats() -> { cachedBytes, mappedBytes, hits, misses, capBytes } of the large-buffer cache
static Napi::Value AllocStatsJs(const Napi::CallbackInfo& info) {
  AllocStats a = block_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cachedBytes", static_cast<double>(a.cached));
  o.Set("mappedBytes", static_cast<double>(a.mapped));
  o.Set("hits", static_cast<double>(a.hits));
  o.Set("misses", static_cast<double>(a.misses));
  o.Set("capBytes", static_cast<double>(a.cap));
  return o;
}
static Napi::Value ReleaseCacheJs(const Napi::CallbackInfo& info) {
  block_release_cache();
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Buffers of 1 MiB and more are mmap'd regions cached by size (native/alloc.cc); malloc keeps
  // the small ones, in its heap (no per-block mmap, a bounded free tail).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  exports.Set("Storage", Storage::Init(env));
  exports.Set("init", Napi::Function::New(env, InitErrors, "init"));
  exports.Set("allocStats", Napi::Function::New(env, AllocStatsJs, "allocStats"));
  exports.Set("releaseCache", Napi::Function::New(env, ReleaseCacheJs, "releaseCache"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("liveBytes", Napi::Function::New(env, LiveBytes, "liveBytes"));
  exports.Set("ops", table_object(env, kOps));
  exports.Set("bench", table_object(env, kBench));
  return exports;
}

NODE_API_MODULE(gpg_native, Init)
