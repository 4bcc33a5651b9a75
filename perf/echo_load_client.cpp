#include "perf/echo_load_client.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "perf/load_socket.hpp"

namespace rs::perf {
namespace {

// Every connection's byte stream is one pseudo-random pattern repeating with a prime period,
// entered at a per-connection offset. Message k is stream bytes [k*size, (k+1)*size), so a send
// of any run of messages is one pointer into the (extended) pattern, and an echo that is
// shifted, duplicated, cut short or taken from another connection fails the compare.
constexpr std::size_t kPatternPeriod = 65521;
constexpr std::size_t kMaxSendBytes = std::size_t{256} * 1024;
constexpr std::size_t kMaxRecvBytes = std::size_t{16} * 1024;

enum class State : std::uint8_t { kIdle, kConnecting, kOpen, kFailed };

struct Connection : LoadSocket {
  State state = State::kIdle;
  std::uint64_t salt = 0;             // where this connection's stream enters the pattern
  std::uint64_t issued = 0;           // messages issued
  std::uint64_t completed = 0;        // messages echoed back whole
  std::uint64_t sent = 0;             // stream bytes the kernel has taken
  std::uint64_t received = 0;         // stream bytes echoed back and checked
  std::uint64_t* issue_ns = nullptr;  // `depth` slots: message k was issued at [k % depth]
  std::uint8_t* rx = nullptr;
};

const LoadConfig& checked(const LoadConfig& config) {
  if (config.connections == 0 || config.size == 0 || config.depth == 0) {
    throw std::runtime_error("--connections, --size and --depth must be at least 1");
  }
  return config;
}

class LoadRun {
 public:
  explicit LoadRun(const LoadConfig& config);
  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  LoadResult run();

  // What run_turn calls: the completions, as route_completion hands them out, and the scan.
  void on_connect(Connection& c, int res);
  void on_send(Connection& c, int res);
  void on_recv(Connection& c, int res);
  bool scan_for_stuck();

 private:
  void fill_pattern();

  void launch_due_connections();
  void launch(Connection& c);
  bool may_issue() const;
  void issue(Connection& c);
  void flush_send(Connection& c);
  void arm_recv(Connection& c);

  void complete_messages(Connection& c);
  void fail(Connection& c, std::uint64_t& counter, const char* what, int err);
  std::uint64_t next_deadline_ns() const;

  const LoadConfig& cfg_;
  ServerAddress address_;
  std::vector<std::uint8_t> pattern_;
  std::vector<Connection> conns_;
  std::vector<std::uint64_t> issue_ns_;
  std::vector<std::uint8_t> rx_;
  std::size_t rx_size_ = 0;
  unsigned launched_ = 0;
  bool stopping_ = false;
  std::uint64_t budget_ = UINT64_MAX;  // messages still to issue after warm-up
  LoadTimeline time_;
  LoadResult result_;
  // Each connection has at most two operations in flight (connect, or send and receive). Last,
  // so that it is torn down first: its exit cancels what a stuck run left in flight before the
  // buffers those operations name are freed.
  LoadRing ring_;
};

LoadRun::LoadRun(const LoadConfig& config)
    : cfg_(checked(config)),
      address_(resolve_server(config.host, config.port)),
      conns_(config.connections),
      ring_(2 * config.connections) {
  result_.ring_mode = ring_.mode();
  fill_pattern();
  const std::uint64_t window = std::uint64_t{cfg_.depth} * cfg_.size;
  rx_size_ = static_cast<std::size_t>(std::min<std::uint64_t>(window, kMaxRecvBytes));
  // Everything a message needs is allocated here, once: the ring loop allocates nothing.
  issue_ns_.resize(std::size_t{cfg_.connections} * cfg_.depth);
  rx_.resize(std::size_t{cfg_.connections} * rx_size_);
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    Connection& c = conns_[i];
    c.salt = (i * 2654435761U) % kPatternPeriod;
    c.issue_ns = issue_ns_.data() + i * cfg_.depth;
    c.rx = rx_.data() + i * rx_size_;
  }
}

void LoadRun::fill_pattern() {
  pattern_.resize(kPatternPeriod + std::max(kMaxSendBytes, kMaxRecvBytes));
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (std::size_t i = 0; i < kPatternPeriod; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pattern_[i] = static_cast<std::uint8_t>(x >> 32);
  }
  // The tail repeats the start, so any window up to the largest send or receive is contiguous.
  for (std::size_t i = kPatternPeriod; i < pattern_.size(); ++i) {
    pattern_[i] = pattern_[i - kPatternPeriod];
  }
}

LoadResult LoadRun::run() {
  time_.begin(cfg_.warmup_s, cfg_.timeout_s);
  if (cfg_.count > 0) {
    budget_ = cfg_.count;
  } else {
    time_.issue_end_ns = time_.measure_start_ns + seconds_to_ns(cfg_.duration_s);
  }
  for (;;) {
    if ((cfg_.stop != nullptr && cfg_.stop->load(std::memory_order_relaxed)) ||
        time_.now_ns >= time_.issue_end_ns) {
      stopping_ = true;
    }
    launch_due_connections();
    if (ring_.in_flight() == 0 && (stopping_ || launched_ == conns_.size())) break;
    if (!run_turn<Connection>(ring_, time_, next_deadline_ns(), *this)) break;
  }
  result_.elapsed_s = time_.measured_s();
  return std::move(result_);
}

void LoadRun::launch_due_connections() {
  if (stopping_) return;
  std::size_t due = conns_.size();
  if (cfg_.connect_rate > 0) {
    const double elapsed_s =
        static_cast<double>(time_.now_ns - time_.start_ns) / static_cast<double>(kNsPerS);
    due = static_cast<std::size_t>(
        std::min(elapsed_s * cfg_.connect_rate + 1.0, static_cast<double>(conns_.size())));
  }
  while (launched_ < due)
    launch(conns_[launched_++]);
}

void LoadRun::launch(Connection& c) {
  const int rc = start_connect(ring_, c, address_, time_.now_ns);
  if (rc < 0) return fail(c, result_.errors.connect, "socket", -rc);
  c.state = State::kConnecting;
}

bool LoadRun::may_issue() const {
  if (stopping_ || time_.now_ns >= time_.issue_end_ns) return false;
  return time_.now_ns < time_.measure_start_ns || budget_ > 0;
}

void LoadRun::issue(Connection& c) {
  if (c.state != State::kOpen) return;
  while (c.issued - c.completed < cfg_.depth && may_issue()) {
    c.issue_ns[c.issued % cfg_.depth] = time_.now_ns;
    if (time_.now_ns >= time_.measure_start_ns) --budget_;
    ++c.issued;
  }
}

// One send in flight per connection keeps the stream in order; messages issued meanwhile go
// out together in the next one.
void LoadRun::flush_send(Connection& c) {
  if (c.state != State::kOpen || c.send_busy) return;
  const std::uint64_t end = c.issued * cfg_.size;
  if (c.sent == end) return;
  const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(end - c.sent, kMaxSendBytes));
  const std::uint8_t* from = pattern_.data() + (c.salt + c.sent) % kPatternPeriod;
  io_uring_prep_send(ring_.sqe(&c.send_op), c.fd, from, len, MSG_NOSIGNAL);
  c.send_busy = true;
}

// A receive is armed only while an echo is owed, so a finished connection has nothing in
// flight and needs no cancel.
void LoadRun::arm_recv(Connection& c) {
  if (c.state != State::kOpen || c.recv_busy || c.completed == c.issued) return;
  io_uring_prep_recv(ring_.sqe(&c.recv_op), c.fd, c.rx, rx_size_, 0);
  c.recv_busy = true;
}

// The longest a turn waits for a completion: until a connection is due, the run ends, or the
// stuck-connection scan.
std::uint64_t LoadRun::next_deadline_ns() const {
  std::uint64_t deadline = UINT64_MAX;
  if (!stopping_) {
    if (launched_ < conns_.size() && cfg_.connect_rate > 0) {
      const double after_s = static_cast<double>(launched_) / cfg_.connect_rate;
      deadline = time_.start_ns + seconds_to_ns(after_s);
    }
    deadline = std::min(deadline, time_.issue_end_ns);
  }
  if (ring_.in_flight() > 0) deadline = std::min(deadline, time_.next_scan_ns);
  return deadline;
}

void LoadRun::on_connect(Connection& c, int res) {
  if (c.state == State::kFailed) {
    close_when_idle(c);
    return;
  }
  if (res < 0) return fail(c, result_.errors.connect, "connect", -res);
  c.state = State::kOpen;
  ++result_.connected;
  issue(c);
  flush_send(c);
  arm_recv(c);
}

void LoadRun::on_send(Connection& c, int res) {
  if (c.state == State::kFailed) {
    close_when_idle(c);
    return;
  }
  if (res < 0) return fail(c, result_.errors.reset, "send", -res);
  c.sent += static_cast<std::uint64_t>(res);
  flush_send(c);
}

void LoadRun::on_recv(Connection& c, int res) {
  if (c.state == State::kFailed) {
    close_when_idle(c);
    return;
  }
  if (res == 0) return fail(c, result_.errors.reset, "the server closed a connection", 0);
  if (res < 0) return fail(c, result_.errors.reset, "recv", -res);
  const auto n = static_cast<std::uint64_t>(res);
  if (c.received + n > c.issued * cfg_.size) {
    return fail(c, result_.errors.mismatch, "more bytes came back than were sent", 0);
  }
  const std::uint8_t* expected = pattern_.data() + (c.salt + c.received) % kPatternPeriod;
  if (std::memcmp(c.rx, expected, n) != 0) {
    return fail(c, result_.errors.mismatch, "echoed bytes differ from those sent", 0);
  }
  c.received += n;
  complete_messages(c);
  issue(c);
  flush_send(c);
  arm_recv(c);
}

void LoadRun::complete_messages(Connection& c) {
  while (c.completed < c.issued && c.received >= (c.completed + 1) * cfg_.size) {
    const std::uint64_t issued_ns = c.issue_ns[c.completed % cfg_.depth];
    ++c.completed;
    ++result_.total_messages;
    if (issued_ns >= time_.measure_start_ns) {
      ++result_.messages;
      result_.latency.record(time_.now_ns - issued_ns);
      time_.last_measured_ns = time_.now_ns;
    }
  }
}

// One error per connection. Its messages in flight are lost (not counted); its operations are
// ended, and the fd closes once the last completion naming it has arrived.
void LoadRun::fail(Connection& c, std::uint64_t& counter, const char* what, int err) {
  if (c.state == State::kFailed) return;
  ++counter;
  if (result_.first_error.empty()) {
    result_.first_error = err != 0 ? fmt::format("{}: {}", what, std::strerror(err)) : what;
  }
  c.state = State::kFailed;
  end_operations(ring_, c);
  close_when_idle(c);
}

// True: a receive is armed only while an echo is owed, so whatever is in flight is owed.
bool LoadRun::scan_for_stuck() {
  for (unsigned i = 0; i < launched_; ++i) {
    Connection& c = conns_[i];
    if (c.state == State::kConnecting && time_.now_ns - c.connect_ns > time_.timeout_ns) {
      fail(c, result_.errors.connect, "connect timed out (--timeout-s)", 0);
    } else if (c.state == State::kOpen && c.completed < c.issued &&
               time_.now_ns - c.issue_ns[c.completed % cfg_.depth] > time_.timeout_ns) {
      fail(c, result_.errors.timeout, "no echo within --timeout-s", 0);
    }
  }
  return true;
}

}  // namespace

LoadResult run_echo_load(const LoadConfig& config) {
  LoadRun run(config);
  return run.run();
}

}  // namespace rs::perf
