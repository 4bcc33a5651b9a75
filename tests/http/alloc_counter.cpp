#include "tests/http/alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    return p;
  }
  throw std::bad_alloc();
}

void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t /*size*/) noexcept {
  std::free(p);
}

namespace rs::http::test {

size_t allocation_count() {
  return g_allocations.load(std::memory_order_relaxed);
}

}  // namespace rs::http::test
