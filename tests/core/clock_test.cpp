#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace rs::core {
namespace {

TEST(Clock, MonotonicNeverGoesBackwards) {
  std::uint64_t last_ns = monotonic_ns();
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t now_ns = monotonic_ns();
    ASSERT_GE(now_ns, last_ns);
    last_ns = now_ns;
  }
}

TEST(Clock, MillisecondsAgreeWithNanoseconds) {
  const std::uint64_t before_ms = monotonic_ns() / 1'000'000;
  const std::uint64_t ms = monotonic_ms();
  const std::uint64_t after_ms = monotonic_ns() / 1'000'000;
  EXPECT_LE(before_ms, ms);
  EXPECT_LE(ms, after_ms);
}

TEST(Clock, RealtimeIsWallClockSeconds) {
  constexpr std::uint64_t k2024 = 1'704'067'200;  // 2024-01-01T00:00:00Z
  const std::uint64_t s = realtime_s();
  EXPECT_GT(s, k2024);
  const std::uint64_t ms = realtime_ms();
  EXPECT_GE(ms / 1000, s);
  EXPECT_LE(ms / 1000, s + 1);
}

}  // namespace
}  // namespace rs::core
