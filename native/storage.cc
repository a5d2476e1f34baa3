// gpg-rl native core: the N-API helpers declared in native/binding.h — dtypes, the NativeOpError
// hand-over, the Storage class (native buffers) and Args (argument access with one-line errors).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "binding.h"
#include "cpu/common.h"

namespace gpg {

// ---------------------------------------------------------------------------------------------
// dtypes
const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32:
      return "float32";
    case DType::BF16:
      return "bfloat16";
    case DType::I32:
      return "int32";
  }
  return "?";
}
size_t dtype_size(DType d) { return d == DType::BF16 ? 2 : 4; }

// ---------------------------------------------------------------------------------------------
// errors
static Napi::FunctionReference* g_error_ctor = nullptr;  // NativeOpError, handed over by init()

void set_error_class(Napi::Function ctor) {
  delete g_error_ctor;
  g_error_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
}

void throw_op_error(Napi::Env env, const std::string& op, const std::string& msg) {
  std::string full = op + ": " + msg;
  if (g_error_ctor && !g_error_ctor->IsEmpty()) {
    Napi::Object err = g_error_ctor->New({Napi::String::New(env, full), Napi::String::New(env, op)});
    napi_throw(env, err);
  } else {
    Napi::Error::New(env, full).ThrowAsJavaScriptException();
  }
}

// ---------------------------------------------------------------------------------------------
// Storage
static std::atomic<uint64_t> g_live_bytes{0};
uint64_t live_bytes() { return g_live_bytes.load(); }
static Napi::FunctionReference* g_storage_ctor = nullptr;

Napi::Function Storage::Init(Napi::Env env) {
  Napi::Function f = DefineClass(
      env, "Storage",
      {InstanceMethod("free", &Storage::Free), InstanceMethod("read", &Storage::Read),
       InstanceMethod("write", &Storage::Write), InstanceMethod("readBytes", &Storage::ReadBytes),
       InstanceMethod("writeBytes", &Storage::WriteBytes), InstanceAccessor("numel", &Storage::GetNumel, nullptr),
       InstanceAccessor("dtype", &Storage::GetDtype, nullptr), InstanceAccessor("freed", &Storage::GetFreed, nullptr)});
  g_storage_ctor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

bool Storage::Is(const Napi::Value& v) {
  if (!v.IsObject() || g_storage_ctor == nullptr) return false;
  return v.As<Napi::Object>().InstanceOf(g_storage_ctor->Value());
}

// new Storage(dtype: 0|1|2, numel: number, zero: boolean)
Storage::Storage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Storage>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw_op_error(env, "Storage", "expected (dtype, numel)");
    return;
  }
  int d = info[0].As<Napi::Number>().Int32Value();
  double n = info[1].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 2) {
    throw_op_error(env, "Storage", "unknown dtype code " + std::to_string(d));
    return;
  }
  if (!(n >= 0) || n > 1e12 || n != static_cast<double>(static_cast<int64_t>(n))) {
    throw_op_error(env, "Storage", "invalid element count " + std::to_string(n));
    return;
  }
  dtype = static_cast<DType>(d);
  numel = static_cast<size_t>(n);
  size_t bytes = nbytes();
  bool zeroed = false;
  data = block_alloc(bytes, &reserved, &zeroed);
  if (!data) {
    throw_op_error(env, "Storage", "out of memory allocating " + std::to_string(bytes) + " bytes");
    return;
  }
  bool zero = info.Length() < 3 || info[2].ToBoolean().Value();
  if (zero && !zeroed) std::memset(data, 0, reserved);
  g_live_bytes += bytes;
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
}

void Storage::Release() {
  if (data) {
    block_free(data, reserved);
    data = nullptr;
    g_live_bytes -= nbytes();
  }
}

Storage::~Storage() {
  if (data) {
    size_t b = nbytes();
    Release();
    // The env may be shutting down; external memory accounting is advisory only.
    (void)b;
  }
}

Napi::Value Storage::Free(const Napi::CallbackInfo& info) {
  if (data) {
    int64_t b = static_cast<int64_t>(nbytes());
    Release();
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -b);
  }
  return info.Env().Undefined();
}

// read(offset = 0, count = numel - offset) -> Float32Array (f32, bf16 widened) or Int32Array
Napi::Value Storage::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (freed()) {
    throw_op_error(env, "Storage.read", "storage was disposed");
    return env.Undefined();
  }
  size_t off = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 0;
  size_t cnt = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : numel - off;
  if (off > numel || cnt > numel - off) {
    throw_op_error(env, "Storage.read", "range out of bounds");
    return env.Undefined();
  }
  if (dtype == DType::I32) {
    auto arr = Napi::Int32Array::New(env, cnt);
    std::memcpy(arr.Data(), static_cast<int32_t*>(data) + off, cnt * 4);
    return arr;
  }
  auto arr = Napi::Float32Array::New(env, cnt);
  if (dtype == DType::F32) {
    std::memcpy(arr.Data(), static_cast<float*>(data) + off, cnt * 4);
  } else {
    const uint16_t* s = static_cast<uint16_t*>(data) + off;
    float* o = arr.Data();
    for (size_t i = 0; i < cnt; i++) o[i] = bf16_to_f32(s[i]);
  }
  return arr;
}

// write(typedArray, offset = 0): Float32Array into f32/bf16 (rounded), Int32Array into i32
Napi::Value Storage::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (freed()) {
    throw_op_error(env, "Storage.write", "storage was disposed");
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw_op_error(env, "Storage.write", "expected a typed array");
    return env.Undefined();
  }
  auto ta = info[0].As<Napi::TypedArray>();
  size_t off = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : 0;
  size_t cnt = ta.ElementLength();
  if (off > numel || cnt > numel - off) {
    throw_op_error(env, "Storage.write", "range out of bounds");
    return env.Undefined();
  }
  if (dtype == DType::I32) {
    if (ta.TypedArrayType() != napi_int32_array) {
      throw_op_error(env, "Storage.write", "int32 storage needs an Int32Array");
      return env.Undefined();
    }
    std::memcpy(static_cast<int32_t*>(data) + off, ta.As<Napi::Int32Array>().Data(), cnt * 4);
    return env.Undefined();
  }
  if (ta.TypedArrayType() != napi_float32_array) {
    throw_op_error(env, "Storage.write", "float storage needs a Float32Array");
    return env.Undefined();
  }
  const float* s = ta.As<Napi::Float32Array>().Data();
  if (dtype == DType::F32) {
    std::memcpy(static_cast<float*>(data) + off, s, cnt * 4);
  } else {
    uint16_t* o = static_cast<uint16_t*>(data) + off;
    for (size_t i = 0; i < cnt; i++) o[i] = f32_to_bf16(s[i]);
  }
  return env.Undefined();
}

// readBytes() -> Buffer copy of the raw little-endian bytes (for safetensors)
Napi::Value Storage::ReadBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (freed()) {
    throw_op_error(env, "Storage.readBytes", "storage was disposed");
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(data), nbytes());
}

// writeBytes(Uint8Array) — raw bytes, length must equal nbytes
Napi::Value Storage::WriteBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (freed()) {
    throw_op_error(env, "Storage.writeBytes", "storage was disposed");
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw_op_error(env, "Storage.writeBytes", "expected a Uint8Array");
    return env.Undefined();
  }
  auto ta = info[0].As<Napi::TypedArray>();
  if (ta.ByteLength() != nbytes()) {
    throw_op_error(env, "Storage.writeBytes",
                   "got " + std::to_string(ta.ByteLength()) + " bytes, storage holds " + std::to_string(nbytes()));
    return env.Undefined();
  }
  auto buf = ta.ArrayBuffer();
  std::memcpy(data, static_cast<uint8_t*>(buf.Data()) + ta.ByteOffset(), nbytes());
  return env.Undefined();
}

Napi::Value Storage::GetNumel(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)numel); }
Napi::Value Storage::GetDtype(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (int)dtype); }
Napi::Value Storage::GetFreed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), freed()); }

// ---------------------------------------------------------------------------------------------
// Args
[[noreturn]] void Args::fail(const std::string& msg) const { throw OpError(std::string(op_) + ": " + msg); }

Storage* Args::storage(int i, const char* name) const {
  if (static_cast<size_t>(i) >= info_.Length() || !Storage::Is(info_[i]))
    fail(std::string("argument ") + std::to_string(i) + " (" + name + ") must be a native Storage");
  Storage* s = Storage::Unwrap(info_[i].As<Napi::Object>());
  if (s->freed()) fail(std::string(name) + " was disposed");
  return s;
}

Storage* Args::typed(int i, const char* name, DType dt, int64_t numel) const {
  Storage* s = storage(i, name);
  if (s->dtype != dt) fail(std::string(name) + " must be " + dtype_name(dt) + ", got " + dtype_name(s->dtype));
  if (numel >= 0 && static_cast<int64_t>(s->numel) < numel)
    fail(std::string(name) + " holds " + std::to_string(s->numel) + " elements, needs " + std::to_string(numel));
  return s;
}

float* Args::f32(int i, const char* name, int64_t numel) const {
  return static_cast<float*>(typed(i, name, DType::F32, numel)->data);
}
uint16_t* Args::bf16(int i, const char* name, int64_t numel) const {
  return static_cast<uint16_t*>(typed(i, name, DType::BF16, numel)->data);
}
int32_t* Args::i32(int i, const char* name, int64_t numel) const {
  return static_cast<int32_t*>(typed(i, name, DType::I32, numel)->data);
}
bool Args::present(int i) const {
  return static_cast<size_t>(i) < info_.Length() && !info_[i].IsNull() && !info_[i].IsUndefined();
}
int64_t Args::integer(int i, const char* name, int64_t min) const {
  if (static_cast<size_t>(i) >= info_.Length() || !info_[i].IsNumber())
    fail(std::string("argument ") + std::to_string(i) + " (" + name + ") must be a number");
  double d = info_[i].As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    fail(std::string(name) + " must be an integer, got " + std::to_string(d));
  int64_t v = static_cast<int64_t>(d);
  if (v < min) fail(std::string(name) + " must be >= " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}
double Args::number(int i, const char* name) const {
  if (static_cast<size_t>(i) >= info_.Length() || !info_[i].IsNumber())
    fail(std::string("argument ") + std::to_string(i) + " (" + name + ") must be a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}
bool Args::boolean(int i, const char* name) const {
  if (static_cast<size_t>(i) >= info_.Length() || !info_[i].IsBoolean())
    fail(std::string("argument ") + std::to_string(i) + " (" + name + ") must be a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

}  // namespace gpg
