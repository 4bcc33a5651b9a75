#pragma once

// Poisoning of pooled memory: a slot or chunk handed back to its pool is marked unaddressable so
// AddressSanitizer reports any later touch. Compiles to nothing without ASan.

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define RS_ASAN_ENABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RS_ASAN_ENABLED 1
#endif
#endif

#if defined(RS_ASAN_ENABLED)
#include <sanitizer/asan_interface.h>
#endif

namespace rs::core {

#if defined(RS_ASAN_ENABLED)
inline constexpr bool kAsanEnabled = true;
#else
inline constexpr bool kAsanEnabled = false;
#endif

inline void asan_poison(const void* addr, std::size_t bytes) {
#if defined(RS_ASAN_ENABLED)
  ASAN_POISON_MEMORY_REGION(addr, bytes);
#else
  (void)addr;
  (void)bytes;
#endif
}

inline void asan_unpoison(const void* addr, std::size_t bytes) {
#if defined(RS_ASAN_ENABLED)
  ASAN_UNPOISON_MEMORY_REGION(addr, bytes);
#else
  (void)addr;
  (void)bytes;
#endif
}

}  // namespace rs::core
