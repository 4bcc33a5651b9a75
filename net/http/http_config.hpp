// Settings of the HTTP server and what its loops share.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "net/http/limits.hpp"
#include "net/http/parse_error.hpp"
#include "net/loop_counters.hpp"

namespace rs::http {

struct HttpConfig {
  Limits limits;
  // From a request's first byte to the end of its header block; then 408 and close.
  std::uint64_t header_timeout_ms = 10000;
  // From the end of a response to the next request's first byte; then a silent close.
  std::uint64_t idle_timeout_ms = 60000;
  // From the end of the header block to the end of the body; then 408 and close.
  std::uint64_t body_timeout_ms = 30000;
  // Queued output that makes no progress this long (a peer that stopped reading): close.
  std::uint64_t send_timeout_ms = 30000;
  // Requests a connection may have waiting for a deferred answer before input is paused.
  std::size_t max_pending_requests = 64;
  // Queued output of one connection above which no further pipelined request is parsed.
  std::size_t max_queued_output_bytes = 4u << 20;
  // Request bodies buffered by the whole process; beyond it requests get 503.
  std::uint64_t max_body_memory_bytes = 64u << 20;
  // After a rejection: how long to drain the peer's input before closing.
  std::uint64_t linger_ms = 2000;
  // Upper bound for GET /delay?ms=N.
  std::uint64_t max_delay_ms = 60000;
  // Static files are served from here under GET and HEAD when set (--root).
  std::string root;
};

// The --root directory as an O_PATH descriptor every file is opened beneath, or -1 when root is
// empty. Throws std::runtime_error that names the flag and the reason when it cannot be opened.
int open_root_directory(const std::string& root);
void close_root_directory(int fd);

// Per-loop HTTP counters (single writer: the loop).
struct HttpCounters {
  std::array<core::Counter, 6> responses_by_class;  // index 1..5: 1xx..5xx
  std::array<core::Counter, 32> parse_errors;       // indexed by ParseError
  core::Counter requests;
  core::Counter header_timeouts;
  core::Counter idle_timeouts;
  core::Counter body_timeouts;
  core::Counter send_timeouts;
  core::Counter body_memory_rejections;
  core::Counter pipeline_pauses;
};

// Shared by every loop of one HTTP server.
class HttpShared {
 public:
  explicit HttpShared(HttpConfig config)
      : config_(std::move(config)), root_fd_(open_root_directory(config_.root)) {}
  ~HttpShared() { close_root_directory(root_fd_); }
  HttpShared(const HttpShared&) = delete;
  HttpShared& operator=(const HttpShared&) = delete;
  const HttpConfig& config() const { return config_; }
  // Opened once at start-up; every loop opens files beneath it.
  int root_fd() const { return root_fd_; }

  // Loops register at start-up; readers (/metrics) sum without locking the loops.
  void register_counters(const HttpCounters* counters) {
    std::lock_guard lock(mutex_);
    counters_.push_back(counters);
  }
  void unregister_counters(const HttpCounters* counters) {
    std::lock_guard lock(mutex_);
    std::erase(counters_, counters);
  }
  template <class F>
  void for_each_counters(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const HttpCounters* c : counters_)
      f(*c);
  }

  // The transport's counters summed over loops, supplied by whoever owns the server.
  void set_transport_counters(std::function<net::CounterValues()> source) {
    transport_counters_ = std::move(source);
  }
  net::CounterValues transport_counters() const {
    return transport_counters_ ? transport_counters_() : net::CounterValues{};
  }

  // Process-wide budget for buffered request bodies.
  bool reserve_body_memory(std::uint64_t bytes) {
    const std::uint64_t before = body_memory_.fetch_add(bytes, std::memory_order_relaxed);
    if (before + bytes <= config_.max_body_memory_bytes) return true;
    body_memory_.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  }
  void release_body_memory(std::uint64_t bytes) {
    body_memory_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  std::uint64_t body_memory() const { return body_memory_.load(std::memory_order_relaxed); }

 private:
  HttpConfig config_;
  int root_fd_;
  mutable std::mutex mutex_;
  std::vector<const HttpCounters*> counters_;
  std::function<net::CounterValues()> transport_counters_;
  std::atomic<std::uint64_t> body_memory_{0};
};

}  // namespace rs::http
