#pragma once

// Clock reads. CLOCK_MONOTONIC for deadlines and durations (never jumps with wall-clock
// changes); CLOCK_REALTIME only for timestamps people read (logs, HTTP Date).

#include <time.h>

#include <cstdint>

namespace rs::core {

inline std::uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);  // cannot fail for these clocks with a valid pointer
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t monotonic_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}
inline std::uint64_t monotonic_ms() {
  return monotonic_ns() / 1'000'000U;
}

inline std::uint64_t realtime_ms() {
  return clock_ns(CLOCK_REALTIME) / 1'000'000U;
}
inline std::uint64_t realtime_s() {
  return clock_ns(CLOCK_REALTIME) / 1'000'000'000U;
}

}  // namespace rs::core
