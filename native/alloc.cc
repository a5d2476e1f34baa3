// gpg-rl native core: the allocator behind Storage (native/binding.h, block_alloc / block_free).
//
// Small buffers (< kLargeBytes) come from malloc. Large ones are their own mmap'd regions, kept in
// a cache when freed and handed out again for a request of the same page-rounded size (up to 1/8
// larger). Why not plain malloc: training interleaves long-lived allocations (each parameter's
// gradient, created during backward) with large short-lived ones (a layer's activations); in one
// heap the gradients land in the activations' holes, the next layer's activations no longer fit
// and the heap grows — measured on a 0.5B model: 16.1 GB resident for 8.7 GB live. Why not mmap
// per allocation: every fresh page costs a fault and a kernel zero-fill, and the same sizes recur
// every layer and every step (measured ~40% of op time on small models).
//
// The cache never makes the process larger than its largest live set plus a bound: a miss first
// unmaps cached regions (least recently freed first) worth at least the request, so stale sizes
// (a generation phase's, before training) are traded for the new ones instead of added to them;
// and the cached total stays ≤ the cap (GPG_RL_ALLOC_CACHE_MB; default a quarter of physical memory
// within 1–4 GiB). Regions of 2 MiB and more ask for transparent huge pages. releaseCache()
// unmaps everything cached (torch.cuda.empty_cache's role).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>

#include "binding.h"

namespace gpg {

namespace {

constexpr size_t kLargeBytes = size_t(1) << 20;  // 1 MiB: below, malloc
constexpr size_t kHugeBytes = size_t(2) << 20;   // 2 MiB: transparent huge pages asked for

struct Cache {
  std::mutex mu;
  // free regions by size, and the same regions in the order they were freed (oldest first)
  std::list<std::pair<size_t, void*>> lru;
  std::multimap<size_t, std::list<std::pair<size_t, void*>>::iterator> by_size;
  size_t cached = 0;
  size_t mapped = 0;  // live + cached large regions
  size_t cap = 0;
  bool cap_read = false;
  uint64_t hits = 0, misses = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: buffers may be freed during process exit
  return *c;
}

size_t page_round(size_t bytes) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

size_t cache_cap(Cache& c) {
  if (!c.cap_read) {
    c.cap_read = true;
    // default: a quarter of physical memory, within [1, 4] GiB. A larger cache does not raise the
    // peak (a miss trades cached regions for the new one before mapping more); it keeps a training
    // step's activations mapped from one step to the next instead of faulting them in again
    // (0.5B fwd+bwd on a 2-vCPU Xeon VM: 1 GiB cap 59 tokens/s, 4 GiB 70; page zeroing was 19% of
    // the profile)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const size_t quarter = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 4 : 0;
    c.cap = std::min(std::max(quarter, size_t(1) << 30), size_t(4) << 30);
    if (const char* e = std::getenv("GPG_RL_ALLOC_CACHE_MB")) {
      char* end = nullptr;
      long long mb = std::strtoll(e, &end, 10);
      if (end != e && *end == '\0' && mb >= 0) c.cap = static_cast<size_t>(mb) << 20;
    }
  }
  return c.cap;
}

// Unmaps the oldest cached region (mu held).
void evict_oldest(Cache& c) {
  auto [size, ptr] = c.lru.front();
  auto range = c.by_size.equal_range(size);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == c.lru.begin()) {
      c.by_size.erase(it);
      break;
    }
  }
  c.lru.pop_front();
  munmap(ptr, size);
  c.cached -= size;
  c.mapped -= size;
}

}  // namespace

void* block_alloc(size_t bytes, size_t* reserved, bool* zeroed) {
  *zeroed = false;
  if (bytes < kLargeBytes) {
    size_t alloc = ((bytes + 63) / 64) * 64;
    if (alloc == 0) alloc = 64;
    *reserved = alloc;
    return std::aligned_alloc(64, alloc);
  }
  size_t want = page_round(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.by_size.lower_bound(want);
  if (it != c.by_size.end() && it->first <= want + want / 8) {
    void* ptr = it->second->second;
    *reserved = it->first;
    c.cached -= it->first;
    c.lru.erase(it->second);
    c.by_size.erase(it);
    c.hits++;
    return ptr;
  }
  c.misses++;
  // trade stale cached regions for this one rather than grow the process
  size_t dropped = 0;
  while (dropped < want && !c.lru.empty()) {
    dropped += c.lru.front().first;
    evict_oldest(c);
  }
  void* ptr = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ptr == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  // 2 MiB pages where the kernel's THP mode is `madvise` (Debian's default): one fault per 2 MiB
  // instead of per 4 KiB for a fresh region's first touch (on a VM, 40 MB of fresh outputs took
  // SwiGLU's backward 60–75 ms against 3 ms reused; what removed those faults from training was the
  // larger cache above — this advice was not measured on its own). A refusal leaves 4 KiB pages.
  if (want >= kHugeBytes) madvise(ptr, want, MADV_HUGEPAGE);
#endif
  c.mapped += want;
  *reserved = want;
  *zeroed = true;  // fresh anonymous pages read as zero
  return ptr;
}

void block_free(void* ptr, size_t reserved) {
  if (!ptr) return;
  if (reserved < kLargeBytes) {
    std::free(ptr);
    return;
  }
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  size_t cap = cache_cap(c);
  if (reserved > cap) {
    munmap(ptr, reserved);
    c.mapped -= reserved;
    return;
  }
  while (c.cached + reserved > cap && !c.lru.empty()) evict_oldest(c);
  c.lru.emplace_back(reserved, ptr);
  c.by_size.emplace(reserved, std::prev(c.lru.end()));
  c.cached += reserved;
}

void block_release_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  while (!c.lru.empty()) evict_oldest(c);
}

AllocStats block_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return AllocStats{c.cached, c.mapped, c.hits, c.misses, cache_cap(c)};
}

}  // namespace gpg
