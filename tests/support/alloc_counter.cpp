#include "tests/support/alloc_counter.hpp"

#include <atomic>
#include <cstddef>
#include <new>

namespace {
std::atomic<bool> counting{false};
std::atomic<std::uint64_t> allocations{0};

inline void note_allocation() {
  if (counting.load(std::memory_order_relaxed)) {
    allocations.fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace

namespace rs::test {
void set_alloc_counting(bool on) {
  counting.store(on);
}
std::uint64_t alloc_count() {
  return allocations.load();
}
}  // namespace rs::test

#if defined(RS_SANITIZE)

// Declared here because GCC ships the runtime but not this header.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));

namespace {
void on_malloc(const volatile void* /*ptr*/, std::size_t /*size*/) {
  note_allocation();
}
void on_free(const volatile void* /*ptr*/) {}
const int installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace

#else

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* p);

void* malloc(std::size_t size) {
  note_allocation();
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
  note_allocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) {
  note_allocation();
  return __libc_realloc(p, size);
}
void free(void* p) {
  __libc_free(p);
}
void* memalign(std::size_t alignment, std::size_t size) {
  note_allocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  note_allocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  note_allocation();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void* valloc(std::size_t size) {
  note_allocation();
  return __libc_memalign(4096, size);
}
}

namespace {
void* checked(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) {
  return checked(malloc(n));
}
void* operator new[](std::size_t n) {
  return checked(malloc(n));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return malloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return malloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return checked(aligned_alloc(static_cast<std::size_t>(a), n));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return checked(aligned_alloc(static_cast<std::size_t>(a), n));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return aligned_alloc(static_cast<std::size_t>(a), n);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return aligned_alloc(static_cast<std::size_t>(a), n);
}
void operator delete(void* p) noexcept {
  free(p);
}
void operator delete[](void* p) noexcept {
  free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  free(p);
}

#endif
