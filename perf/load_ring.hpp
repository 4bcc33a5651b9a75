// What every load generator of perf/ needs from io_uring: the server's address resolved once,
// and one ring on the calling thread whose submissions are batched per loop turn and whose
// completions are copied out in batches (the CQ head advanced once per batch) before any of
// them is handled.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.hpp"

namespace rs::perf {

constexpr std::uint64_t kNsPerS = 1'000'000'000;

inline std::uint64_t seconds_to_ns(double s) {
  return static_cast<std::uint64_t>(s * static_cast<double>(kNsPerS));
}
inline double ns_to_seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / static_cast<double>(kNsPerS);
}

// The clock of one load run (monotonic nanoseconds): now (read after each wait and after each
// batch of completion handlers), the start, the end of the warm-up, when issuing ends, the scan
// for stuck connections every 100 ms, and the last measured completion, which ends the measured
// time.
struct LoadTimeline {
  static constexpr std::uint64_t kScanIntervalNs = 100'000'000;

  std::uint64_t now_ns = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t measure_start_ns = 0;
  std::uint64_t issue_end_ns = UINT64_MAX;
  std::uint64_t timeout_ns = 0;
  std::uint64_t next_scan_ns = 0;
  std::uint64_t last_measured_ns = 0;

  void begin(double warmup_s, double timeout_s) {
    start_ns = now_ns = core::monotonic_ns();
    measure_start_ns = start_ns + seconds_to_ns(warmup_s);
    timeout_ns = seconds_to_ns(timeout_s);
    next_scan_ns = now_ns + kScanIntervalNs;
  }
  // True once per interval: time to look for connections stuck past timeout_ns.
  bool scan_due() {
    if (now_ns < next_scan_ns) return false;
    next_scan_ns = now_ns + kScanIntervalNs;
    return true;
  }
  // Stuck connections were shut down or cancelled at the timeout; if even that brings nothing
  // back for this long, the run leaves the rest to the ring's teardown rather than hang.
  std::uint64_t stall_ns() const { return 2 * timeout_ns + kNsPerS; }
  // From the end of the warm-up to the last measured completion.
  double measured_s() const {
    return last_measured_ns > measure_start_ns ? ns_to_seconds(last_measured_ns - measure_start_ns)
                                               : 0;
  }
};

struct ServerAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

// The first address getaddrinfo gives for host:port. Throws std::runtime_error naming --host
// when it does not resolve.
ServerAddress resolve_server(const std::string& host, std::uint16_t port);

// One completion as copied out of the CQ: `data` is the SQE's user_data, null for the
// completions that carry none (cancels, liburing's own wait timeout on old kernels).
struct LoadCompletion {
  void* data;
  int res;
};

class LoadRing {
 public:
  // Sized so that `max_in_flight` operations never overflow the CQ (the kernel clamps very
  // large requests). Throws std::runtime_error, with a hint, when io_uring cannot be set up.
  explicit LoadRing(unsigned max_in_flight);
  ~LoadRing();
  LoadRing(const LoadRing&) = delete;
  LoadRing& operator=(const LoadRing&) = delete;

  // The setup flags the kernel accepted, for the report.
  const std::string& mode() const { return mode_; }

  // A fresh SQE whose completion will carry `data`. An operation with data counts as in
  // flight until its completion is handed out; one without (a cancel) is not waited for. A full
  // SQ is not an error: the batch so far is handed to the kernel and a fresh entry taken.
  io_uring_sqe* sqe(void* data);
  unsigned in_flight() const { return in_flight_; }

  // One turn of a load loop, one system call: submits everything prepared and waits for a
  // completion or until `deadline_ns` (monotonic; UINT64_MAX waits for a completion only),
  // then calls handle(const LoadCompletion&) for every completion ready. Each batch is copied
  // out and the CQ head advanced once before any is handled, so a handler may prepare SQEs.
  // now_ns is set to the clock read after the wait before any handler runs (a handler that
  // times a response reads when it was reaped, not when the loop went to sleep), and again
  // after each batch's handlers, for the next batch and for what the caller does next.
  template <typename Handle>
  void turn(std::uint64_t& now_ns, std::uint64_t deadline_ns, Handle&& handle) {
    submit_and_wait(deadline_ns);
    now_ns = core::monotonic_ns();
    for (;;) {
      const std::size_t n = copy_out();
      if (n > 0) quiet_since_ns_ = now_ns;
      for (std::size_t i = 0; i < n; ++i)
        handle(batch_[i]);
      if (n > 0) now_ns = core::monotonic_ns();  // these handlers took time
      if (n < batch_.size()) return;
    }
  }

  // Operations are in flight and none has completed for `quiet_ns` while something was owed:
  // what was shut down or cancelled did not come back, and a run should leave it to the ring's
  // teardown rather than hang.
  bool stalled(std::uint64_t now_ns, std::uint64_t quiet_ns) const {
    return in_flight_ > 0 && now_ns - quiet_since_ns_ > quiet_ns;
  }
  // Nothing in flight is owed a completion now (an idle connection's receive waits on no
  // request, however long the gap to the next): the quiet time of a stall starts again here.
  void nothing_owed(std::uint64_t now_ns) { quiet_since_ns_ = now_ns; }

 private:
  void submit_and_wait(std::uint64_t deadline_ns);
  std::size_t copy_out();

  io_uring ring_{};
  std::string mode_;
  std::vector<LoadCompletion> batch_;
  unsigned in_flight_ = 0;
  std::uint64_t quiet_since_ns_ = core::monotonic_ns();  // the last completion, or nothing_owed
};

}  // namespace rs::perf
