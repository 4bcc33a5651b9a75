// Settings of the HTTP server and what its loops share.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "net/http/access_log.hpp"
#include "net/http/limits.hpp"
#include "net/http/mime_types.hpp"
#include "net/http/parse_error.hpp"
#include "net/http/response_metrics.hpp"
#include "net/ip_address.hpp"
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
  // Queued output of one connection above which no further pipelined request is parsed and a
  // file being sent is not read further: what a peer that does not read can make it hold.
  std::size_t max_queued_output_bytes = 256u << 10;
  // Request bodies buffered by the whole process; beyond it requests get 503.
  std::uint64_t max_body_memory_bytes = 64u << 20;
  // After a rejection: how long to drain the peer's input before closing.
  std::uint64_t linger_ms = 2000;
  // Upper bound for GET /delay?ms=N.
  std::uint64_t max_delay_ms = 60000;
  // Static files are served from here under GET and HEAD when set (--root).
  std::string root;
  // The access log's lines (--access-log-format); the log itself is the loop's (--access-log).
  AccessLogFormat access_log_format = AccessLogFormat::kCombined;
  // A mime.types file for Content-Type (--mime-types); empty: /etc/mime.types when it can be
  // read, else the built-in table (net/http/mime_types.hpp).
  std::string mime_types;
  // Cache-Control of 200, 206 and 304 answers for static files (--cache-control); empty: none.
  std::string cache_control;
  // Answer for file with file.br or file.gz when Accept-Encoding allows and the sibling is a
  // regular file (br first), with Content-Encoding and Vary: Accept-Encoding (--precompressed).
  bool precompressed = false;
  // The demo routes (/plaintext, /json, /echo, /delay): kAuto turns them on only without --root,
  // so that they never shadow a file the operator did not ask them to (--demo-routes).
  enum class Switch : std::uint8_t { kAuto, kOn, kOff };
  Switch demo_routes = Switch::kAuto;

  bool demo_routes_on() const {
    return demo_routes == Switch::kOn || (demo_routes == Switch::kAuto && root.empty());
  }
  // The access log names the client that X-Forwarded-For gives when the socket's peer is one of
  // trusted_proxies (net/http/forwarded_for.hpp): --trust-x-forwarded-for, --trusted-proxy.
  bool trust_forwarded_for = false;
  net::IpRanges trusted_proxies;

  // Whether the listeners that serve requests answer /metrics too: only without --root and with
  // the demo routes on (the lab and the tests read it there). Otherwise the metrics have a
  // listener of their own (--metrics-listen), as Prometheus expects, and a file named metrics is
  // reachable.
  bool metrics_on_serving_listeners() const { return root.empty() && demo_routes_on(); }
};

// Longest --cache-control value.
inline constexpr std::size_t kMaxCacheControlBytes = 256;

// Refuses settings the server cannot run with, by throwing std::runtime_error with a message
// that names the flag and what to give it: a timeout of 0 would expire at once, a limit of 0
// would refuse every request (or stall every connection), a body memory budget below the
// largest body would refuse bodies the limits allow, and a --cache-control value that is not a
// short line of printable ASCII would break (or split) the heads it goes into.
inline void check_config(const HttpConfig& config) {
  struct Setting {
    const char* flag;
    std::uint64_t value;
    const char* zero_means;
  };
  constexpr const char* kExpires = "a timeout of 0 would expire at once";
  constexpr const char* kRefuses = "a limit of 0 would refuse every request";
  const Setting settings[] = {
      {"--header-timeout-ms", config.header_timeout_ms, kExpires},
      {"--idle-timeout-ms", config.idle_timeout_ms, kExpires},
      {"--body-timeout-ms", config.body_timeout_ms, kExpires},
      {"--send-timeout-ms", config.send_timeout_ms, kExpires},
      {"--max-request-line-bytes", config.limits.max_request_line_bytes, kRefuses},
      {"--max-header-bytes", config.limits.max_header_bytes, kRefuses},
      {"--max-header-fields", config.limits.max_header_fields, kRefuses},
      {"--max-body-bytes", config.limits.max_body_bytes, kRefuses},
      {"--max-body-memory-bytes", config.max_body_memory_bytes, kRefuses},
      {"--max-pending-requests", config.max_pending_requests,
       "a limit of 0 would stop reading every connection"},
      {"--max-queued-output-bytes", config.max_queued_output_bytes,
       "a limit of 0 would stop reading every connection that has output queued"},
  };
  for (const Setting& s : settings) {
    if (s.value == 0) {
      throw std::runtime_error(std::string(s.flag) + " 0: " + s.zero_means +
                               "; give a positive number (or leave the flag out for its default)");
    }
  }
  if (config.cache_control.size() > kMaxCacheControlBytes) {
    throw std::runtime_error("--cache-control: longer than " +
                             std::to_string(kMaxCacheControlBytes) +
                             " bytes; give a short value such as \"public, max-age=3600\"");
  }
  for (const char c : config.cache_control) {
    if (c < 0x20 || c > 0x7e) {
      throw std::runtime_error(
          "--cache-control: holds a byte that is not printable ASCII (a control character such "
          "as CR or LF, or one above 0x7e); give a value such as \"public, max-age=3600\"");
    }
  }
  if (config.trust_forwarded_for && config.trusted_proxies.empty()) {
    throw std::runtime_error(
        "--trust-x-forwarded-for takes the client's address only from trusted peers: give the "
        "proxies' addresses with --trusted-proxy CIDR (e.g. --trusted-proxy 10.0.0.0/8)");
  }
  if (config.max_body_memory_bytes < config.limits.max_body_bytes) {
    const std::string memory = std::to_string(config.max_body_memory_bytes);
    const std::string body = std::to_string(config.limits.max_body_bytes);
    throw std::runtime_error("--max-body-memory-bytes " + memory + " is below --max-body-bytes " +
                             body + ": a body the limits allow could never be buffered; raise " +
                             "--max-body-memory-bytes to at least " + body +
                             " or lower --max-body-bytes");
  }
}

// The --root directory as an O_PATH descriptor every file is opened beneath, or -1 when root is
// empty. Throws std::runtime_error that names the flag and the reason when it cannot be opened.
int open_root_directory(const std::string& root);
void close_root_directory(int fd);

// Per-loop HTTP counters (single writer: the loop).
struct HttpCounters {
  ResponseMetrics responses;                   // by status, and durations by route
  std::array<core::Counter, 32> parse_errors;  // indexed by ParseError
  core::Counter requests;
  core::Counter header_timeouts;
  core::Counter idle_timeouts;
  core::Counter body_timeouts;
  core::Counter send_timeouts;
  core::Counter body_memory_rejections;
  core::Counter pipeline_pauses;
  core::Counter client_aborts;  // connections whose client left before an answer began
  core::Counter pool_grows;     // slabs made by the HTTP pools (sessions, requests, answers, heads)
  // Requests from a trusted peer whose X-Forwarded-For was malformed or too long: logged with
  // the connection's client.
  core::Counter forwarded_for_errors;
  // Pools (gauges): open sessions, the request states in use (requests being read) and made.
  core::Gauge sessions;
  core::Gauge request_states_in_use;
  core::Gauge request_states_made;
};

// Adds what `from` counted to `into` (single writer: whoever holds `into`). Not the gauges: they
// describe pools, and the pools of a factory that is gone are gone with it.
inline void add_counts(HttpCounters& into, const HttpCounters& from) {
  // A counter added to HttpCounters must be added to the list below too (or the totals go back
  // when a worker of the threads backend ends): this fails until it is.
  static_assert(
      sizeof(HttpCounters) ==
          sizeof(ResponseMetrics) + (32 + 10) * sizeof(core::Counter) + 3 * sizeof(core::Gauge),
      "every counter of HttpCounters is folded in add_counts");
  into.responses.add(from.responses);
  for (std::size_t i = 0; i < into.parse_errors.size(); ++i)
    into.parse_errors[i].add(from.parse_errors[i].get());
  for (core::Counter HttpCounters::*c :
       {&HttpCounters::requests, &HttpCounters::header_timeouts, &HttpCounters::idle_timeouts,
        &HttpCounters::body_timeouts, &HttpCounters::send_timeouts,
        &HttpCounters::body_memory_rejections, &HttpCounters::pipeline_pauses,
        &HttpCounters::client_aborts, &HttpCounters::pool_grows,
        &HttpCounters::forwarded_for_errors}) {
    (into.*c).add((from.*c).get());
  }
}

// Shared by every loop of one HTTP server.
class HttpShared {
 public:
  // Throws std::runtime_error for a config check_config() refuses, a --root it cannot open or
  // a --mime-types file it cannot use. The media types are read only where they are needed
  // (with --root) or asked for (--mime-types).
  explicit HttpShared(HttpConfig config)
      : config_(checked(std::move(config))), root_fd_(open_root_directory(config_.root)) {
    if (config_.root.empty() && config_.mime_types.empty()) return;
    try {
      mime_types_ = MimeTypes::load(config_.mime_types);
    } catch (...) {
      close_root_directory(root_fd_);  // no destructor runs for what a constructor left
      throw;
    }
  }
  ~HttpShared() { close_root_directory(root_fd_); }
  HttpShared(const HttpShared&) = delete;
  HttpShared& operator=(const HttpShared&) = delete;
  const HttpConfig& config() const { return config_; }
  // Opened once at start-up; every loop opens files beneath it.
  int root_fd() const { return root_fd_; }
  // Read once at start-up; only looked up afterwards.
  const MimeTypes& mime_types() const { return mime_types_; }

  // Loops register at start-up; readers (/metrics) sum without locking the loops. What a loop
  // counted stays counted after it unregisters (a worker of the threads backend ends while the
  // server runs): the totals never go back.
  void register_counters(const HttpCounters* counters) {
    std::lock_guard lock(mutex_);
    counters_.push_back(counters);
  }
  void unregister_counters(const HttpCounters* counters) {
    std::lock_guard lock(mutex_);
    std::erase(counters_, counters);
    add_counts(retired_, *counters);
  }
  template <class F>
  void for_each_counters(F&& f) const {
    std::lock_guard lock(mutex_);
    f(retired_);
    for (const HttpCounters* c : counters_)
      f(*c);
  }

  // The transport's counters of each loop (loop i at [i]), supplied by whoever owns the server.
  void set_transport_counters(std::function<std::vector<net::CounterValues>()> source) {
    transport_counters_ = std::move(source);
  }
  std::vector<net::CounterValues> transport_counters() const {
    return transport_counters_ ? transport_counters_() : std::vector<net::CounterValues>{};
  }
  // What ringserve_build_info says, supplied by whoever owns the server (at scrape time: the
  // backend is resolved and the ring set up only once the server has started).
  struct BuildInfo {
    std::string version;
    std::string backend;
    std::string io_uring_setup;  // how the ring was set up; "none" on epoll and threads
  };
  void set_build_info(std::function<BuildInfo()> source) { build_info_ = std::move(source); }
  BuildInfo build_info() const { return build_info_ ? build_info_() : BuildInfo{}; }

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
  // Whether `bytes` more would fit the budget now (nothing is reserved).
  bool body_memory_available(std::uint64_t bytes) const {
    return body_memory() + bytes <= config_.max_body_memory_bytes;
  }

 private:
  static HttpConfig checked(HttpConfig config) {
    check_config(config);
    return config;
  }

  HttpConfig config_;
  int root_fd_;
  MimeTypes mime_types_;
  mutable std::mutex mutex_;
  std::vector<const HttpCounters*> counters_;
  HttpCounters retired_;  // the counts of the loops that unregistered (guarded by mutex_)
  std::function<std::vector<net::CounterValues>()> transport_counters_;
  std::function<BuildInfo()> build_info_;
  std::atomic<std::uint64_t> body_memory_{0};
};

}  // namespace rs::http
