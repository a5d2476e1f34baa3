// gpg_mpi: the MPI binding for data-parallel training (issue 16), a separate optional addon so the
// engine (gpg_native) builds and runs where MPI is absent. scripts/build-native.mjs builds it when
// Open MPI's headers are found (Debian: libopenmpi-dev); src/parallel/mpi.ts loads it.
//
//   init() -> { rank, size }           MPI_Init_thread (idempotent); starts the watchdog thread
//   finalize()                         MPI_Finalize (idempotent)
//   allreduceSum(buf, timeoutS)        in place, Float32Array or Float64Array, MPI_SUM
//   bcast(buf, root, timeoutS)         in place, any typed array (as bytes)
//   barrier(timeoutS)
//   abort(code)                        MPI_Abort(MPI_COMM_WORLD): ends every rank
//
// Open MPI has no timeouts on blocking collectives, so a watchdog thread does it: each collective
// arms a deadline; one that passes prints one line naming the rank, the collective and the limit,
// then ends this process (_exit), and mpirun takes the other ranks down. A rank that dies outright
// is mpirun's to notice: it kills the job when a rank exits without MPI_Finalize.
#include <mpi.h>
#include <napi.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <thread>
#include <unistd.h>

namespace {

std::atomic<long long> g_deadline_ms{0};  // 0 = no collective in flight
std::atomic<const char*> g_op{""};
std::atomic<double> g_limit_s{0};
int g_rank = -1;
int g_size = 0;
bool g_started = false;

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void watchdog() {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    long long d = g_deadline_ms.load();
    if (d != 0 && now_ms() > d) {
      std::fprintf(stderr,
                   "gpg-rl: rank %d of %d: MPI %s did not complete within %g s (another rank died or hangs; "
                   "GPG_RL_MPI_TIMEOUT_S sets the limit); ending the run\n",
                   g_rank, g_size, g_op.load(), g_limit_s.load());
      std::fflush(stderr);
      _exit(70);
    }
  }
}

struct Armed {
  Armed(const char* op, double timeout_s) {
    if (timeout_s > 0) {
      g_op = op;
      g_limit_s = timeout_s;
      g_deadline_ms = now_ms() + (long long)(timeout_s * 1000.0);
    }
  }
  ~Armed() { g_deadline_ms = 0; }
};

bool ready(const Napi::Env& env) {
  if (!g_started) {
    Napi::Error::New(env, "gpg_mpi: call init() first").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool check(const Napi::Env& env, int rc, const char* what) {
  if (rc == MPI_SUCCESS) return true;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  Napi::Error::New(env, std::string("gpg_mpi: ") + what + " failed: " + std::string(msg, len))
      .ThrowAsJavaScriptException();
  return false;
}

double timeoutArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : 0.0;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!g_started) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      if (!check(env, MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread"))
        return env.Null();
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    std::thread(watchdog).detach();
    g_started = true;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", g_rank);
  o.Set("size", g_size);
  return o;
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (g_started && !fin) MPI_Finalize();
  return info.Env().Undefined();
}

Napi::Value AllreduceSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ready(env)) return env.Null();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "allreduceSum(buf, timeoutS): buf must be a Float32Array or Float64Array")
        .ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  MPI_Datatype type;
  if (t.TypedArrayType() == napi_float32_array)
    type = MPI_FLOAT;
  else if (t.TypedArrayType() == napi_float64_array)
    type = MPI_DOUBLE;
  else {
    Napi::TypeError::New(env, "allreduceSum: buf must be a Float32Array or Float64Array").ThrowAsJavaScriptException();
    return env.Null();
  }
  void* data = static_cast<char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  size_t n = t.ElementLength();
  size_t esz = type == MPI_FLOAT ? 4 : 8;
  Armed a("allreduce", timeoutArg(info, 1));
  for (size_t off = 0; off < n;) {  // MPI counts are int: chunks of < 2^31 elements
    int c = (int)std::min<size_t>(n - off, (size_t)INT_MAX / 2);
    if (!check(env, MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + off * esz, c, type, MPI_SUM, MPI_COMM_WORLD),
               "MPI_Allreduce"))
      return env.Null();
    off += c;
  }
  return env.Undefined();
}

Napi::Value Bcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ready(env)) return env.Null();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "bcast(buf, root, timeoutS): buf must be a typed array, root a rank")
        .ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  int root = info[1].As<Napi::Number>().Int32Value();
  if (root < 0 || root >= g_size) {
    Napi::RangeError::New(env, "bcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(g_size))
        .ThrowAsJavaScriptException();
    return env.Null();
  }
  char* data = static_cast<char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  size_t n = t.ByteLength();
  Armed a("broadcast", timeoutArg(info, 2));
  for (size_t off = 0; off < n;) {
    int c = (int)std::min<size_t>(n - off, (size_t)INT_MAX);
    if (!check(env, MPI_Bcast(data + off, c, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast")) return env.Null();
    off += c;
  }
  return env.Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ready(env)) return env.Null();
  Armed a("barrier", timeoutArg(info, 0));
  check(env, MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  return env.Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  std::fflush(stderr);
  if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("finalize", Napi::Function::New(env, Finalize));
  exports.Set("allreduceSum", Napi::Function::New(env, AllreduceSum));
  exports.Set("bcast", Napi::Function::New(env, Bcast));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("abort", Napi::Function::New(env, Abort));
  return exports;
}

}  // namespace

NODE_API_MODULE(gpg_mpi, Module)
