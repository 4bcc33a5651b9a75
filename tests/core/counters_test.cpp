#include "core/counters.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace rs::core {
namespace {

TEST(Counter, AddsAndSets) {
  Counter c;
  EXPECT_EQ(c.get(), 0U);
  c.add();
  c.add(41);
  EXPECT_EQ(c.get(), 42U);
  c.set(7);
  EXPECT_EQ(c.get(), 7U);
}

TEST(Gauge, GoesUpAndDown) {
  Gauge g;
  g.inc();
  g.inc();
  g.dec();
  EXPECT_EQ(g.get(), 1);
  g.dec();
  g.dec();
  EXPECT_EQ(g.get(), -1);
  g.add(10);
  EXPECT_EQ(g.get(), 9);
  g.set(100);
  EXPECT_EQ(g.get(), 100);
}

TEST(Counter, ReaderSeesMonotonicValuesWhileWriterAdds) {
  constexpr std::uint64_t kAdds = 200000;
  Counter counter;
  std::atomic<bool> reader_ready{false};
  std::thread writer([&] {
    while (!reader_ready.load(std::memory_order_acquire)) {
    }
    for (std::uint64_t i = 0; i < kAdds; ++i) {
      counter.add(1);
    }
  });
  std::uint64_t last = 0;
  std::uint64_t distinct = 0;
  bool went_backwards = false;
  reader_ready.store(true, std::memory_order_release);
  // Ends once the writer's last store is visible, which coherence guarantees.
  while (last < kAdds) {
    const std::uint64_t v = counter.get();
    if (v < last) {
      went_backwards = true;
    }
    if (v != last) {
      ++distinct;
    }
    last = v;
    if (went_backwards || v > kAdds) {
      break;
    }
  }
  writer.join();
  EXPECT_FALSE(went_backwards);
  EXPECT_EQ(last, kAdds);
  EXPECT_EQ(counter.get(), kAdds) << "a single writer loses no update";
  EXPECT_GE(distinct, 1U);
}

}  // namespace
}  // namespace rs::core
