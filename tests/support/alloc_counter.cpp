#include "tests/support/alloc_counter.hpp"

#include <dirent.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

enum Mode : int { kOff, kAllThreads, kNewThreads };

std::atomic<int> mode{kOff};
std::atomic<std::uint64_t> allocations{0};

// kNewThreads: the threads that existed when it began, left out. Written while counting is
// off, read by every allocating thread (atomics: a thread may still be reading the previous
// list when a later test writes the next).
constexpr std::size_t kMaxOldThreads = 1024;
std::atomic<pid_t> old_threads[kMaxOldThreads];
std::atomic<std::size_t> old_thread_count{0};

// The calling thread's id, asked of the kernel once per thread (a trivial thread_local: no
// allocation of its own).
thread_local pid_t this_thread_id = 0;

bool is_old_thread() {
  if (this_thread_id == 0) this_thread_id = static_cast<pid_t>(::syscall(SYS_gettid));
  const std::size_t n = old_thread_count.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    if (old_threads[i].load(std::memory_order_relaxed) == this_thread_id) return true;
  }
  return false;
}

inline void note_allocation() {
  const int now = mode.load(std::memory_order_acquire);
  if (now == kOff || (now == kNewThreads && is_old_thread())) return;
  allocations.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

namespace rs::test {
void set_alloc_counting(bool on) {
  mode.store(on ? kAllThreads : kOff, std::memory_order_release);
}
bool count_allocations_of_new_threads() {
  mode.store(kOff, std::memory_order_release);  // what reading the directory allocates is not
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return false;
  std::size_t n = 0;
  bool ok = true;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      ok = errno == 0;  // the end, or a failed read
      break;
    }
    if (entry->d_name[0] == '.') continue;
    char* end = nullptr;
    const long id = std::strtol(entry->d_name, &end, 10);
    if (n == kMaxOldThreads || *end != '\0' || id <= 0) {
      ok = false;
      break;
    }
    old_threads[n++].store(static_cast<pid_t>(id), std::memory_order_relaxed);
  }
  ::closedir(dir);
  if (!ok || n == 0) return false;
  old_thread_count.store(n, std::memory_order_relaxed);
  mode.store(kNewThreads, std::memory_order_release);
  return true;
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
