// What one loop counts. The loop thread writes; any thread may read (core::Counter is a
// single-writer relaxed atomic), so /metrics and the shutdown report never stop a loop.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/counters.hpp"

namespace rs::net {

struct LoopCounters {
  // connections
  core::Counter accepted;
  core::Counter closed;
  core::Counter rejected_over_cap;  // accepted while the process was at --max-connections
  core::Counter accept_pauses;      // accepting stopped: fd exhaustion or the cap
  core::Counter accept_errors;
  core::Counter accept_rearms;
  core::Gauge connections_open;
  core::Gauge connections_peak;
  // bytes and I/O operations
  core::Counter bytes_in;
  core::Counter bytes_out;
  core::Counter recv_sqes;
  core::Counter recv_completions;
  core::Counter recv_rearms;
  core::Counter recv_errors;
  core::Counter enobufs;
  core::Counter recv_buffers_used;  // uring: provided buffers the kernel finished with
  core::Counter send_sqes;
  core::Counter send_errors;
  core::Counter send_zc;            // sends that went as SEND_ZC / SENDMSG_ZC
  core::Counter send_zc_copied;     // of those, the kernel copied after all (loopback always does)
  core::Counter send_zc_resets;     // closed by a reset to get zero-copy pages back from the kernel
  core::Counter fixed_file_misses;  // connections on the plain descriptor: file table full
  core::Counter input_pauses;       // receive stopped because the peer does not read
  core::Counter stash_overflows;    // protocol left too much input unconsumed
  // the ring itself (zero on other backends)
  core::Counter sqes_submitted;
  core::Counter enter_calls;
  core::Counter cqes_reaped;
  core::Counter sq_full_flushes;
  core::Counter cq_overflow_dropped;
  core::Counter cq_overflow_buffered;
  core::Counter loop_turns;
  // pools
  core::Gauge pool_connections;
  core::Gauge pool_chunks;
  core::Gauge pool_response_slots;
  core::Gauge pool_files;  // open files of the file service (freed after their last completion)
  core::Gauge pool_grows;
  core::Gauge buffers_held;
  core::Gauge fixed_files_in_use;   // uring: slots of the registered file table holding a socket
  core::Gauge send_zc_close_waits;  // uring: closed, socket kept open for zero-copy notifications
  // access log
  core::Counter access_log_dropped;       // lines dropped: buffer full, or unwritten at exit
  core::Counter access_log_write_errors;  // failed writes (retried after a pause)
  core::Counter access_log_reopens;       // the log switched to a newly opened file (SIGHUP)

  template <class F>
  void visit(F&& f) const {
    f("accepted", accepted.get());
    f("closed", closed.get());
    f("rejected_over_cap", rejected_over_cap.get());
    f("accept_pauses", accept_pauses.get());
    f("accept_errors", accept_errors.get());
    f("accept_rearms", accept_rearms.get());
    f("connections_open", connections_open.get());
    f("connections_peak", connections_peak.get());
    f("bytes_in", bytes_in.get());
    f("bytes_out", bytes_out.get());
    f("recv_sqes", recv_sqes.get());
    f("recv_completions", recv_completions.get());
    f("recv_rearms", recv_rearms.get());
    f("recv_errors", recv_errors.get());
    f("enobufs", enobufs.get());
    f("recv_buffers_used", recv_buffers_used.get());
    f("send_sqes", send_sqes.get());
    f("send_errors", send_errors.get());
    f("send_zc", send_zc.get());
    f("send_zc_copied", send_zc_copied.get());
    f("send_zc_resets", send_zc_resets.get());
    f("fixed_file_misses", fixed_file_misses.get());
    f("input_pauses", input_pauses.get());
    f("stash_overflows", stash_overflows.get());
    f("sqes_submitted", sqes_submitted.get());
    f("enter_calls", enter_calls.get());
    f("cqes_reaped", cqes_reaped.get());
    f("sq_full_flushes", sq_full_flushes.get());
    f("cq_overflow_dropped", cq_overflow_dropped.get());
    f("cq_overflow_buffered", cq_overflow_buffered.get());
    f("loop_turns", loop_turns.get());
    f("pool_connections", pool_connections.get());
    f("pool_chunks", pool_chunks.get());
    f("pool_response_slots", pool_response_slots.get());
    f("pool_files", pool_files.get());
    f("pool_grows", pool_grows.get());
    f("buffers_held", buffers_held.get());
    f("fixed_files_in_use", fixed_files_in_use.get());
    f("send_zc_close_waits", send_zc_close_waits.get());
    f("access_log_dropped", access_log_dropped.get());
    f("access_log_write_errors", access_log_write_errors.get());
    f("access_log_reopens", access_log_reopens.get());
  }
};

// Named values summed over loops, in a stable order.
class CounterValues {
 public:
  void add(const LoopCounters& counters) {
    std::size_t i = 0;
    counters.visit([&](std::string_view name, auto value) {
      if (i == values_.size()) values_.emplace_back(name, 0);
      values_[i++].second += static_cast<std::int64_t>(value);
    });
  }
  std::int64_t get(std::string_view name) const {
    for (const auto& [n, v] : values_) {
      if (n == name) return v;
    }
    return 0;
  }
  const std::vector<std::pair<std::string_view, std::int64_t>>& values() const { return values_; }

 private:
  std::vector<std::pair<std::string_view, std::int64_t>> values_;
};

}  // namespace rs::net
