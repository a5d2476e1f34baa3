// gpg-rl native core: shared declarations for every kernel file.
//
// Conventions (stated once, llm.c style):
//  - Tensors cross N-API as `Storage` handles: one contiguous, 64-byte aligned, row-major buffer
//    with a dtype (f32, bf16 or i32) and an element count. Shapes live on the TypeScript side and
//    arrive here as plain integers; every kernel re-checks element counts cheaply with REQUIRE_*.
//  - Kernel arguments go outputs first, then inputs, then sizes (B, T, H, Hkv, D, V, ...).
//  - Kernels register themselves with GPG_OP(name); binding.cc exports every registered op.
//    An op throws gpg::OpError (or any std::exception); the registry wrapper turns it into the
//    TypeScript NativeOpError, so no C++ exception ever crosses N-API and nothing aborts.
//  - Parallel loops use OpenMP, the same runtime Debian's oneDNN uses, so one pool owns the cores.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpg {

enum class DType : int32_t { F32 = 0, BF16 = 1, I32 = 2 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A native buffer owned by a JS object. `free()` releases it at once; the GC finalizer frees it
// otherwise. Any use after free() raises an error naming the op.
class Storage : public Napi::ObjectWrap<Storage> {
 public:
  static Napi::Function Init(Napi::Env env);
  static bool Is(const Napi::Value& v);
  explicit Storage(const Napi::CallbackInfo& info);
  ~Storage() override;

  void* data = nullptr;
  size_t numel = 0;
  DType dtype = DType::F32;
  bool freed() const { return data == nullptr; }
  size_t nbytes() const { return numel * dtype_size(dtype); }

 private:
  void Release();
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value ReadBytes(const Napi::CallbackInfo& info);
  Napi::Value WriteBytes(const Napi::CallbackInfo& info);
  Napi::Value GetNumel(const Napi::CallbackInfo& info);
  Napi::Value GetDtype(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  Napi::Env env_;
};

uint64_t live_bytes();

// 64-byte aligned float scratch that grows on demand and is kept between calls (packing buffers).
// get() throws OpError on allocation failure; call it outside OpenMP regions.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get(size_t n, const char* op) {
    if (n > cap) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64));
      cap = p ? n : 0;
      if (!p) throw OpError(std::string(op) + ": out of memory for a " + std::to_string(n * 4) + "-byte work buffer");
    }
    return p;
  }
  ~Scratch() { std::free(p); }
};

// C = alpha·op(A)·op(B) (+ bias[N]) + beta·C for contiguous float32 matrices (native/kernels/sgemm.cc).
// Returns false when this build has no AVX-512 kernel (the caller falls back to oneDNN).
bool sgemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
               float beta, float* C, const float* bias);

// ---- bf16 helpers (round to nearest even, NaN preserved) ----
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- vectorisable exp (Cephes expf polynomial, ~1 ulp on [-87, 88]; 0 below -87, so exp(-inf) = 0) ----
// Branch-free, so loops over it auto-vectorise without -ffast-math (expf does not). Used by the
// attention softmax, the log-softmax kernels and SwiGLU's sigmoid.
inline float vexp(float x) {
  float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5·2^23 trick)
  float r = xc - n * 0.693359375f;  // ln2 split into a short high part and a correction
  r = r + n * 2.12194440e-4f;
  float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return x < -87.0f ? 0.0f : y * scale;
}

// ---- argument access with one-line errors ("rmsnorm_forward: argument 2 (weight) ...") ----
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  Storage* storage(int i, const char* name) const;
  // Typed pointers; numel (when >= 0) must match exactly.
  float* f32(int i, const char* name, int64_t numel = -1) const;
  uint16_t* bf16(int i, const char* name, int64_t numel = -1) const;
  int32_t* i32(int i, const char* name, int64_t numel = -1) const;
  // A storage that may be null/undefined (optional bias etc.).
  bool present(int i) const;
  int64_t integer(int i, const char* name, int64_t min = 0) const;
  double number(int i, const char* name) const;
  bool boolean(int i, const char* name) const;
  [[noreturn]] void fail(const std::string& msg) const;
  const char* op() const { return op_; }
  Napi::Env env() const { return info_.Env(); }

 private:
  Storage* typed(int i, const char* name, DType dt, int64_t numel) const;
  const Napi::CallbackInfo& info_;
  const char* op_;
};

using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);
struct OpRegistrar {
  OpRegistrar(const char* name, OpFn fn);
};
struct OpEntry {
  const char* name;
  OpFn fn;
};
std::vector<OpEntry>& op_registry();

}  // namespace gpg

// Define and register an exported op: GPG_OP(rmsnorm_forward) { Args a(info, "rmsnorm_forward"); ... }
#define GPG_OP(NAME)                                               \
  static Napi::Value NAME(const Napi::CallbackInfo& info);         \
  static ::gpg::OpRegistrar NAME##_registrar(#NAME, NAME);         \
  static Napi::Value NAME(const Napi::CallbackInfo& info)

// Cheap re-checks inside kernels; the TypeScript layer has already checked with full shapes.
#define REQUIRE(cond, msg)                                                         \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::ostringstream _os;                                                      \
      _os << msg;                                                                  \
      throw ::gpg::OpError(_os.str());                                             \
    }                                                                              \
  } while (0)
