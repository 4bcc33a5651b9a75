// What one loop counts, declared once: the table below yields the fields, the visit over them,
// and the /metrics families (type, name, help; docs/metrics.md), a series per loop. The loop thread
// writes; any thread may read (core::Counter is a single-writer relaxed atomic), so /metrics and
// the shutdown report never stop a loop.
//
// Every counter means the same on every backend that has it. One that only a backend has (the
// ring's operations, the plain calls of epoll and the threads backend) is absent elsewhere,
// not reused with another meaning.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/counters.hpp"

namespace rs::net {

// The backends a counter exists on (a bit set).
namespace backends {
inline constexpr std::uint8_t kUring = 1;
inline constexpr std::uint8_t kEpoll = 2;
inline constexpr std::uint8_t kThreads = 4;
inline constexpr std::uint8_t kEventLoops = kUring | kEpoll;
inline constexpr std::uint8_t kPlainCalls = kEpoll | kThreads;
inline constexpr std::uint8_t kAll = kUring | kEpoll | kThreads;
}  // namespace backends

// X(type, field, backends, metric name (after "ringserve_"), help)
#define RS_LOOP_COUNTERS(X)                                                                       \
  /* connections */                                                                               \
  X(Counter, accepted, kAll, "accepted_total", "Connections accepted.")                           \
  X(Counter, closed, kAll, "closed_total", "Connections closed and freed.")                       \
  X(Counter, rejected_over_cap, kAll, "rejected_over_cap_total",                                  \
    "Connections accepted at --max-connections with no place to wait, closed at once.")           \
  X(Counter, accept_pauses, kAll, "accept_pauses_total",                                          \
    "Times accepting stopped: the connection cap, or out of descriptors or memory.")              \
  X(Counter, accept_errors, kAll, "accept_errors_total", "Accepts that failed.")                  \
  X(Counter, accept_rearms, kEventLoops, "accept_rearms_total",                                   \
    "Times accepting was armed again (multishot accept, or the listener back in the epoll set).") \
  X(Counter, connections_reclaimed, kEventLoops, "connections_reclaimed_total",                   \
    "Idle connections closed at --max-connections to admit a waiting client, oldest first.")      \
  X(Gauge, connections_open, kAll, "connections_open", "Connections open now.")                   \
  X(Gauge, connections_idle, kEventLoops, "connections_idle",                                     \
    "Idle connections now (kept between requests, or silent for 1 s since they connected).")      \
  X(Gauge, connections_peak, kAll, "connections_peak", "Most connections open at once.")          \
  X(Gauge, worker_threads, kThreads, "worker_threads",                                            \
    "Worker threads now, serving a connection or waiting for the next one.")                      \
  X(Counter, worker_threads_reaped, kThreads, "worker_threads_reaped_total",                      \
    "Worker threads ended after waiting --thread-idle-timeout-ms for a connection.")              \
  /* bytes and I/O operations */                                                                  \
  X(Counter, bytes_in, kAll, "received_bytes_total", "Bytes received from clients.")              \
  X(Counter, bytes_out, kAll, "sent_bytes_total", "Bytes the kernel took to send to clients.")    \
  X(Counter, recv_sqes, kUring, "recv_sqes_total", "Receive SQEs (multishot) submitted.")         \
  X(Counter, recv_calls, kPlainCalls, "recv_calls_total", "recv(2) calls.")                       \
  X(Counter, recv_completions, kAll, "recv_completions_total", "Receives that brought bytes.")    \
  X(Counter, recv_rearms, kEventLoops, "recv_rearms_total",                                       \
    "Times receiving was armed again after it ended or paused.")                                  \
  X(Counter, recv_errors, kAll, "recv_errors_total", "Receives that failed (reset, error).")      \
  X(Counter, enobufs, kAll, "enobufs_total", "Receives that found no free receive buffer.")       \
  X(Counter, recv_buffers_used, kUring, "recv_buffers_used_total",                                \
    "Provided buffers the kernel finished with.")                                                 \
  X(Counter, send_sqes, kUring, "send_sqes_total", "Send SQEs submitted.")                        \
  X(Counter, send_calls, kPlainCalls, "send_calls_total", "sendmsg(2) calls.")                    \
  X(Counter, send_errors, kAll, "send_errors_total", "Sends that failed (the peer is gone).")     \
  X(Counter, send_zc, kUring, "send_zc_total", "Sends that went as SEND_ZC or SENDMSG_ZC.")       \
  X(Counter, send_zc_copied, kUring, "send_zc_copied_total",                                      \
    "Zero-copy sends the kernel copied after all (loopback always does).")                        \
  X(Counter, send_zc_resets, kUring, "send_zc_resets_total",                                      \
    "Connections reset to get zero-copy pages back from the kernel.")                             \
  X(Counter, fixed_file_misses, kUring, "fixed_file_misses_total",                                \
    "Connections on their plain descriptor: the registered file table was full.")                 \
  X(Counter, fixed_reads, kUring, "fixed_reads_total",                                            \
    "File reads into registered chunks (READ_FIXED).")                                            \
  X(Counter, fixed_sends, kUring, "fixed_sends_total",                                            \
    "Zero-copy sends from registered chunks (IORING_RECVSEND_FIXED_BUF).")                        \
  X(Counter, registered_buffer_fallbacks, kUring, "registered_buffer_fallbacks_total",            \
    "Slabs of output chunks left as plain buffers: the kernel refused to register one (ENOMEM, "  \
    "RLIMIT_MEMLOCK) and the loop stopped asking, or the buffer table was full.")                 \
  X(Counter, input_pauses, kAll, "input_pauses_total",                                            \
    "Times receiving stopped because the peer does not read its answers.")                        \
  X(Counter, stash_overflows, kAll, "stash_overflows_total",                                      \
    "Connections cut because the protocol left too much input unconsumed.")                       \
  /* the kernel interface of each backend */                                                      \
  X(Counter, sqes_submitted, kUring, "sqes_submitted_total", "SQEs submitted.")                   \
  X(Counter, wait_calls, kAll, "loop_wait_calls_total",                                           \
    "Times the loop entered the kernel to wait for events (and, on uring, to submit): "           \
    "io_uring_enter calls (uring), epoll_wait calls (epoll), poll calls of the acceptor "         \
    "(threads).")                                                                                 \
  X(Counter, cqes_reaped, kUring, "cqes_reaped_total", "CQEs reaped.")                            \
  X(Counter, sq_full_flushes, kUring, "sq_full_flushes_total",                                    \
    "Times the SQ was full and flushed to the kernel mid-turn.")                                  \
  X(Counter, cq_overflow_dropped, kUring, "cq_overflow_dropped_total",                            \
    "Completions the kernel dropped: the CQ overflowed.")                                         \
  X(Counter, cq_overflow_buffered, kUring, "cq_overflow_buffered_total",                          \
    "Completions the kernel held back while the CQ was full.")                                    \
  X(Counter, loop_turns, kEventLoops, "loop_turns_total", "Turns of the event loops.")            \
  /* pools */                                                                                     \
  X(Gauge, pool_connections, kEventLoops, "pool_connections", "Connections in the slab now.")     \
  X(Gauge, connection_bytes, kEventLoops, "connection_bytes",                                     \
    "Bytes of the connection objects open now (the transport's part of a connection).")           \
  X(Gauge, pool_chunks, kAll, "pool_chunks", "Output and stash chunks handed out now.")           \
  X(Gauge, pool_chunks_free, kEventLoops, "pool_chunks_free",                                     \
    "Free output chunks whose memory the pool still holds (given back after a second unused).")   \
  X(Gauge, pool_chunks_released, kEventLoops, "pool_chunks_released",                             \
    "Free output chunks whose memory was given back to the kernel (reused last).")                \
  X(Gauge, pool_response_slots, kAll, "pool_response_slots",                                      \
    "Places of deferred answers held now.")                                                       \
  X(Gauge, pool_files, kAll, "pool_files",                                                        \
    "Open files of the file service (freed after their last completion).")                        \
  X(Counter, pool_grows, kAll, "pool_grows_total", "Times a transport pool grew by a slab.")      \
  X(Gauge, buffers_held, kAll, "buffers_held", "Receive buffers held by pending answers now.")    \
  X(Gauge, fixed_files_in_use, kUring, "fixed_files_in_use",                                      \
    "Slots of the registered file table holding a socket now.")                                   \
  X(Gauge, registered_buffers, kUring, "registered_buffers",                                      \
    "Slabs of output chunks registered with the ring as fixed buffers now.")                      \
  X(Gauge, registered_buffer_bytes, kUring, "registered_buffer_bytes",                            \
    "Bytes of the registered slabs: memory the kernel holds pinned.")                             \
  X(Gauge, send_zc_close_waits, kUring, "send_zc_close_waits",                                    \
    "Closed connections keeping their socket open for zero-copy notifications now.")              \
  /* TLS (--tls-cert) */                                                                          \
  X(Counter, tls_handshakes, kAll, "tls_handshakes_total", "Full TLS handshakes completed.")      \
  X(Counter, tls_resumed, kAll, "tls_resumed_total",                                              \
    "TLS handshakes that resumed a session (a ticket).")                                          \
  X(Counter, tls_handshake_errors, kAll, "tls_handshake_errors_total",                            \
    "TLS handshakes that failed (bad records, no common version or cipher, ALPN).")               \
  X(Counter, tls_handshake_timeouts, kAll, "tls_handshake_timeouts_total",                        \
    "TLS handshakes cut at --handshake-timeout-ms.")                                              \
  X(Counter, tls_record_errors, kAll, "tls_record_errors_total",                                  \
    "Established TLS connections closed for a bad record or alert.")                              \
  X(Counter, tls_plain_http, kAll, "tls_plain_http_total",                                        \
    "Plain HTTP requests sent to a TLS port (answered 400, closed).")                             \
  X(Counter, tls_ktls_connections, kAll, "tls_ktls_connections_total",                            \
    "TLS connections whose output the kernel seals (kTLS, --tls-ktls).")                          \
  X(Counter, tls_ktls_fallbacks, kAll, "tls_ktls_fallbacks_total",                                \
    "TLS 1.3 connections kTLS could not take (refused, or a key update): sealed in user space.")  \
  X(Counter, tls_ktls_drain_timeouts, kAll, "tls_ktls_drain_timeouts_total",                      \
    "kTLS connections closed before the peer took and acknowledged all output (in 1 s).")         \
  /* PROXY protocol (,proxy listeners) */                                                         \
  X(Counter, proxy_headers, kAll, "proxy_headers_total",                                          \
    "PROXY protocol headers taken on ,proxy listeners (v1 and v2).")                              \
  X(Counter, proxy_header_errors, kAll, "proxy_header_errors_total",                              \
    "Connections closed for a bad PROXY header: not one, malformed, over the bound, cut short.")  \
  X(Counter, proxy_header_timeouts, kAll, "proxy_header_timeouts_total",                          \
    "Connections closed because their PROXY header was not in by --handshake-timeout-ms.")        \
  X(Counter, proxy_untrusted_peers, kAll, "proxy_untrusted_peers_total",                          \
    "Connections to a ,proxy listener from a peer outside --trusted-proxy, closed at once.")      \
  /* access log */                                                                                \
  X(Counter, access_log_dropped, kAll, "access_log_dropped_total",                                \
    "Access log lines dropped: buffer full, or unwritten at exit.")                               \
  X(Counter, access_log_write_errors, kAll, "access_log_write_errors_total",                      \
    "Access log writes that failed (retried after a pause).")                                     \
  X(Counter, access_log_reopens, kAll, "access_log_reopens_total",                                \
    "Times the access log switched to a newly opened file (SIGHUP).")

// The table's type column is the family's type: a counter's name ends in _total, a gauge's not.
#define RS_COUNTER_NAME_CHECK(type, field, scope, metric, help)                                  \
  static_assert(                                                                                 \
      std::string_view(metric).ends_with("_total") == std::is_same_v<core::type, core::Counter>, \
      "a counter's name ends in _total, a gauge's does not: " metric);
RS_LOOP_COUNTERS(RS_COUNTER_NAME_CHECK)
#undef RS_COUNTER_NAME_CHECK

struct LoopCounters {
#define RS_COUNTER_FIELD(type, field, scope, metric, help) core::type field;
  RS_LOOP_COUNTERS(RS_COUNTER_FIELD)
#undef RS_COUNTER_FIELD
};

// One counter as /metrics and the shutdown report show it.
struct CounterInfo {
  std::string_view name;
  std::string_view metric;  // after "ringserve_"
  std::string_view help;
  bool gauge;
  std::uint8_t backends;
};

// Calls f(info, value) for every counter, in the table's order.
template <class F>
void visit_counters(const LoopCounters& counters, F&& f) {
#define RS_COUNTER_VISIT(type, field, scope, metric, help)                                       \
  f(CounterInfo{#field, metric, help, std::is_same_v<core::type, core::Gauge>, backends::scope}, \
    static_cast<std::int64_t>(counters.field.get()));
  RS_LOOP_COUNTERS(RS_COUNTER_VISIT)
#undef RS_COUNTER_VISIT
}

// Counters summed over loops, in the table's order: those the serving backend has.
class CounterValues {
 public:
  struct Value {
    CounterInfo info;
    std::int64_t value;
  };

  // backend: one of backends::k*, the backend that counted.
  void add(const LoopCounters& counters, std::uint8_t backend) {
    std::size_t i = 0;
    visit_counters(counters, [&](const CounterInfo& info, std::int64_t value) {
      if ((info.backends & backend) == 0) return;
      if (i == values_.size()) values_.push_back(Value{info, 0});
      values_[i++].value += value;
    });
  }
  // 0 for a counter the backend does not have.
  std::int64_t get(std::string_view name) const {
    for (const Value& v : values_) {
      if (v.info.name == name) return v.value;
    }
    return 0;
  }
  bool has(std::string_view name) const {
    for (const Value& v : values_) {
      if (v.info.name == name) return true;
    }
    return false;
  }
  const std::vector<Value>& values() const { return values_; }

 private:
  std::vector<Value> values_;
};

}  // namespace rs::net
