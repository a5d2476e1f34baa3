// Dtype casts between float32 and bfloat16 (round to nearest even). Used for mixed precision:
// bf16 GEMM operands are cast from fp32 master weights/activations; gradients flow back in fp32
// (a cast's backward is the identity on values, so no cast_backward kernel is needed).
#include <omp.h>

#include "../addon.h"

namespace gpg {

// cast_f32_bf16(out bf16 [n], x f32 [n], n)
GPG_OP(cast_f32_bf16) {
  Args a(info, "cast_f32_bf16");
  int64_t n = a.integer(2, "n");
  uint16_t* out = a.bf16(0, "out", n);
  const float* x = a.f32(1, "x", n);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16(x[i]);
  return info.Env().Undefined();
}

// cast_bf16_f32(out f32 [n], x bf16 [n], n)
GPG_OP(cast_bf16_f32) {
  Args a(info, "cast_bf16_f32");
  int64_t n = a.integer(2, "n");
  float* out = a.f32(0, "out", n);
  const uint16_t* x = a.bf16(1, "x", n);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(x[i]);
  return info.Env().Undefined();
}

// copy(dst, dstOff, src, srcOff, n) — same dtype, element offsets (slices, KV-cache writes)
GPG_OP(copy) {
  Args a(info, "copy");
  Storage* d = a.storage(0, "dst");
  int64_t dOff = a.integer(1, "dstOff");
  Storage* s = a.storage(2, "src");
  int64_t sOff = a.integer(3, "srcOff");
  int64_t n = a.integer(4, "n");
  if (d->dtype != s->dtype) a.fail(std::string("dst is ") + dtype_name(d->dtype) + ", src is " + dtype_name(s->dtype));
  if ((int64_t)d->numel < dOff + n || (int64_t)s->numel < sOff + n) a.fail("range out of bounds");
  size_t es = dtype_size(d->dtype);
  std::memmove(static_cast<char*>(d->data) + dOff * es, static_cast<char*>(s->data) + sOff * es, n * es);
  return info.Env().Undefined();
}

// copy_strided(dst, src, rows, cols, dstStride, srcStride, dstOff, srcOff) — f32 2-D block copy
GPG_OP(copy_rows) {
  Args a(info, "copy_rows");
  int64_t rows = a.integer(2, "rows"), cols = a.integer(3, "cols");
  int64_t ds = a.integer(4, "dstStride"), ss = a.integer(5, "srcStride");
  int64_t dOff = a.integer(6, "dstOff"), sOff = a.integer(7, "srcOff");
  if (rows == 0 || cols == 0) return info.Env().Undefined();
  float* d = a.f32(0, "dst", dOff + (rows - 1) * ds + cols);
  const float* s = a.f32(1, "src", sOff + (rows - 1) * ss + cols);
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; r++) std::memcpy(d + dOff + r * ds, s + sOff + r * ss, cols * 4);
  return info.Env().Undefined();
}

// fill(x f32, value, n)
GPG_OP(fill) {
  Args a(info, "fill");
  int64_t n = a.integer(2, "n");
  float* x = a.f32(0, "x", n);
  float v = static_cast<float>(a.number(1, "value"));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) x[i] = v;
  return info.Env().Undefined();
}

}  // namespace gpg
