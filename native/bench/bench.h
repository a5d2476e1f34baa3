// gpg-rl benchmark-only kernels (native/bench/), pure C++: the machine's fp32 FMA peak and
// memory bandwidth, the denominators of `gpg-rl bench`. Exported as addon.bench, not addon.ops.
#pragma once

#include <cstdint>

#include "../cpu/common.h"

namespace gpg {

struct FmaPeak {
  double gflops;
  int threads;
  int lanes;
};

// Every OpenMP thread runs `iters` iterations of a register-only FMA loop.
FmaPeak fma_peak(int64_t iters);

// GB/s of all threads stream-reading a `bytes` buffer, best of `reps`. Throws OpError("out of memory").
double mem_bandwidth(int64_t bytes, int64_t reps);

}  // namespace gpg
