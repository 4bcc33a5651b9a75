#pragma once

// Statistics written by one event loop and read by any thread (stats endpoint, shutdown
// report). The owner updates with a relaxed load and store instead of a locked read-modify-write:
// with a single writer no update can be lost, and the hot path stays a plain add and move.
// Readers see each value whole (no tearing) and, per counter, never a value going backwards.

#include <atomic>
#include <cstdint>

namespace rs::core {

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "readers must never block");

class Counter {
 public:
  // Only the owning thread may call add() and set().
  void add(std::uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(std::uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A level that goes up and down (open connections, requests in flight). Same single-writer rule.
class Gauge {
 public:
  void inc() { add(1); }
  void dec() { add(-1); }
  void add(std::int64_t delta) {
    value_.store(value_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  std::int64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

}  // namespace rs::core
