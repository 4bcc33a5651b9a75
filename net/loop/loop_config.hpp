// Settings shared by every loop of a server, whatever its backend, and what each loop is handed
// by the server. Backend knobs (uring::RingOptions) live beside them in ServerConfig.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/asan.hpp"
#include "net/connection.hpp"
#include "net/listen_socket.hpp"
#include "net/loop_counters.hpp"
#include "net/proxy_header.hpp"
#include "net/tls/tls_context.hpp"
#include "net/transport.hpp"

namespace rs::net {

struct LoopConfig {
  // Provided receive buffers per loop (a power of two) and their size.
  unsigned buffer_count = 512;
  unsigned buffer_size = 16384;
  // Output and stash chunk payload size.
  std::size_t chunk_bytes = 16384;
  ConnectionLimits limits;
  // How long queued output may drain after a stop before connections are cut.
  std::uint64_t grace_ms = 5000;
  // After EMFILE/ENFILE, accepting resumes after this long.
  std::uint64_t accept_retry_ms = 100;
  // Access log file, opened by every loop at start (O_APPEND); empty: no access log.
  std::string access_log_path;
  // Log bytes a loop buffers while the disk is slow; lines beyond it are dropped and counted.
  std::size_t access_log_max_buffered_bytes = 4u << 20;
  // While more places than this are left under the cap, io_uring loops accept with one
  // multishot accept; at or below it, with single accepts that each hold a place before they
  // are armed. A multishot accept takes the whole listen backlog at once, so the margin is what
  // every loop's backlog can hold (set by the server from --backlog and somaxconn).
  std::uint64_t multishot_accept_room = 0;
  // The threads backend: each worker thread's stack (--thread-stack-kib).
  std::size_t thread_stack_bytes = kDefaultThreadStackBytes;
  // The threads backend: a worker that has waited this long for its next connection ends, and
  // its stack and pools are freed (--thread-idle-timeout-ms).
  std::uint64_t thread_idle_timeout_ms = 10000;

#if defined(RS_ASAN_ENABLED)
  // AddressSanitizer's redzones make every frame several times larger.
  static constexpr std::size_t kDefaultThreadStackBytes = 256 << 10;
#else
  static constexpr std::size_t kDefaultThreadStackBytes = 64 << 10;
#endif
};

// What a write to a loop's eventfd means: the sender sets these bits in LoopContext::messages
// first, the loop takes them all when it wakes (several messages may share one wake-up).
namespace loop_message {
inline constexpr std::uint32_t kStop = 1U << 0;        // stop accepting, drain, return
inline constexpr std::uint32_t kReopenLogs = 1U << 1;  // SIGHUP: reopen the access log
// A loop saw the room under the cap fall to multishot_accept_room: multishot accepts give way
// to single ones on every loop, not only on the loop that saw it.
inline constexpr std::uint32_t kNearCap = 1U << 2;
// SIGHUP on a TLS server: new connections take the context LoopContext::current_tls() gives.
inline constexpr std::uint32_t kReloadTls = 1U << 3;
}  // namespace loop_message

// The process-wide --max-connections cap, shared by all loops.
class ConnectionCap {
 public:
  explicit ConnectionCap(std::uint64_t max) : max_(max) {}
  bool try_acquire() {
    if (open_.fetch_add(1, std::memory_order_relaxed) < max_) return true;
    open_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void release() { open_.fetch_sub(1, std::memory_order_relaxed); }
  bool full() const { return open_.load(std::memory_order_relaxed) >= max_; }
  // Places left (a moment's view: other loops take and give back places concurrently).
  std::uint64_t room() const {
    const std::uint64_t open = open_.load(std::memory_order_relaxed);
    return open >= max_ ? 0 : max_ - open;
  }
  std::uint64_t max() const { return max_; }

 private:
  std::atomic<std::uint64_t> open_{0};
  std::uint64_t max_;
};

// The most --listen options a server takes.
inline constexpr std::size_t kMaxListeners = 16;

struct LoopContext {
  int index = 0;
  // One per --listen, in the order given; owned by the loop (its poller takes them).
  std::vector<ListenSocket> listeners;
  int wake_fd = -1;  // eventfd: a write says that `messages` holds something
  // loop_message bits, set before wake_fd is written
  std::atomic<std::uint32_t> messages{0};
  int signal_fd = -1;  // read by this loop when >= 0
  LoopCounters* counters = nullptr;
  ConnectionCap* cap = nullptr;
  ProtocolFactoryMaker make_protocols;
  std::function<void()> stop_all;      // SIGINT or SIGTERM arrived
  std::function<void()> on_hangup;     // SIGHUP arrived
  std::function<void()> near_cap_all;  // sends kNearCap to every loop
  // TLS servers: the context new connections take (a SIGHUP may have replaced it; any thread),
  // and how many times it was replaced (a worker of the threads backend compares it before
  // each connection).
  std::function<std::shared_ptr<const tls::TlsContext>()> current_tls;
  std::atomic<std::uint32_t> tls_generation{0};
  // The server's PROXY protocol settings (its ,proxy listeners' connections read them).
  const ProxyConfig* proxy = nullptr;

  // More counters of this loop beside `counters` (the threads backend keeps one set per
  // worker thread, each written by its worker only). They live as long as the server.
  LoopCounters& add_counters() {
    std::lock_guard lock(extra_mutex_);
    extra_counters_.push_back(std::make_unique<LoopCounters>());
    return *extra_counters_.back();
  }
  template <class F>
  void for_each_extra_counters(F&& f) const {
    std::lock_guard lock(extra_mutex_);
    for (const auto& c : extra_counters_)
      f(*c);
  }

 private:
  mutable std::mutex extra_mutex_;
  std::vector<std::unique_ptr<LoopCounters>> extra_counters_;
};

}  // namespace rs::net
