// gpg-rl native core: the N-API helpers of native/binding.cc (implemented in native/storage.cc).
//
// Tensors cross N-API as Storage handles: one contiguous, 64-byte aligned, row-major buffer with a
// dtype (f32, bf16 or i32) and an element count. Shapes live on the TypeScript side and arrive as
// plain integers; every binding entry re-checks dtypes and element counts with Args (the
// TypeScript layer has already checked full shapes), so a wrong call is an error naming the op.
// The pure compute functions (native/cpu/kernels.h) never see any of this.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace gpg {

// Dtype codes, as DTYPE_CODE in src/native/index.ts.
enum class DType : int32_t { F32 = 0, BF16 = 1, I32 = 2 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

// Throws the TypeScript NativeOpError "<op>: <msg>" (handed over once by init(); a plain Error
// before that) as a pending JavaScript exception.
void throw_op_error(Napi::Env env, const std::string& op, const std::string& msg);
void set_error_class(Napi::Function ctor);

// A native buffer owned by a JS object. `free()` releases it at once; the GC finalizer frees it
// otherwise. Any use after free() raises an error naming the op.
class Storage : public Napi::ObjectWrap<Storage> {
 public:
  static Napi::Function Init(Napi::Env env);
  static bool Is(const Napi::Value& v);
  explicit Storage(const Napi::CallbackInfo& info);
  ~Storage() override;

  void* data = nullptr;
  size_t reserved = 0;  // bytes held by data (block_alloc)
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

// native/alloc.cc: Storage's allocator (large regions mmap'd and cached by size). `reserved`
// receives the bytes actually held (pass it back to block_free); `zeroed` whether they read as 0.
void* block_alloc(size_t bytes, size_t* reserved, bool* zeroed);
void block_free(void* ptr, size_t reserved);
void block_release_cache();
struct AllocStats {
  size_t cached, mapped;
  uint64_t hits, misses;
  size_t cap;
};
AllocStats block_stats();

// Argument access with one-line errors ("rmsnorm_forward: argument 2 (weight) ..."). fail() and
// every failed check throw gpg::OpError, which the binding's trampoline turns into NativeOpError.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  Storage* storage(int i, const char* name) const;
  // Typed pointers; the storage must hold at least numel elements (when numel >= 0).
  float* f32(int i, const char* name, int64_t numel = -1) const;
  uint16_t* bf16(int i, const char* name, int64_t numel = -1) const;
  int32_t* i32(int i, const char* name, int64_t numel = -1) const;
  // A storage that may be null/undefined (optional bias etc.).
  bool present(int i) const;
  int64_t integer(int i, const char* name, int64_t min = 0) const;
  double number(int i, const char* name) const;
  bool boolean(int i, const char* name) const;
  [[noreturn]] void fail(const std::string& msg) const;
  Napi::Env env() const { return info_.Env(); }
  Napi::Value undefined() const { return info_.Env().Undefined(); }

 private:
  Storage* typed(int i, const char* name, DType dt, int64_t numel) const;
  const Napi::CallbackInfo& info_;
  const char* op_;
};

}  // namespace gpg
