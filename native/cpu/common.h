// gpg-rl native core: pure helpers shared by the compute files in native/cpu/ (no N-API here).
//
// Conventions (stated once, llm.c style):
//  - Tensors are contiguous, 64-byte aligned, row-major buffers; shapes live on the TypeScript side
//    and arrive as plain integers. Compute functions take plain pointers and sizes only.
//  - Arguments go outputs first, then inputs, then sizes (B, T, H, Hkv, D, V, ...).
//  - A compute function that finds bad data (token id out of range, ...) throws gpg::OpError with a
//    one-line message; native/binding.cc prefixes the op name and turns it into the TypeScript
//    NativeOpError, so no C++ exception ever crosses N-API and nothing aborts.
//  - Parallel loops use OpenMP, the same runtime Debian's oneDNN uses, so one pool owns the cores.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

namespace gpg {

struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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

}  // namespace gpg

// Throws gpg::OpError with a streamed one-line message when cond is false:
//   REQUIRE(D % 2 == 0, "head dim D must be even, got " << D);
#define REQUIRE(cond, msg)             \
  do {                                 \
    if (!(cond)) {                     \
      std::ostringstream _os;          \
      _os << msg;                      \
      throw ::gpg::OpError(_os.str()); \
    }                                  \
  } while (0)
