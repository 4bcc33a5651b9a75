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
#include "perf/load_ring.hpp"

namespace rs::perf {
namespace {

// Every connection's byte stream is one pseudo-random pattern repeating with a prime period,
// entered at a per-connection offset. Message k is stream bytes [k*size, (k+1)*size), so a send
// of any run of messages is one pointer into the (extended) pattern, and an echo that is
// shifted, duplicated, cut short or taken from another connection fails the compare.
constexpr std::size_t kPatternPeriod = 65521;
constexpr std::size_t kMaxSendBytes = std::size_t{256} * 1024;
constexpr std::size_t kMaxRecvBytes = std::size_t{16} * 1024;
constexpr std::uint64_t kScanIntervalNs = 100'000'000;

enum class OpKind : std::uint8_t { kConnect, kSend, kRecv };

struct Connection;
// An operation in flight is embedded in its connection; its address is the SQE's user_data.
struct Op {
  Connection* conn = nullptr;
  OpKind kind = OpKind::kConnect;
};

enum class State : std::uint8_t { kIdle, kConnecting, kOpen, kFailed };

struct Connection {
  int fd = -1;
  State state = State::kIdle;
  bool connect_busy = false;
  bool send_busy = false;
  bool recv_busy = false;
  std::uint64_t salt = 0;       // where this connection's stream enters the pattern
  std::uint64_t issued = 0;     // messages issued
  std::uint64_t completed = 0;  // messages echoed back whole
  std::uint64_t sent = 0;       // stream bytes the kernel has taken
  std::uint64_t received = 0;   // stream bytes echoed back and checked
  std::uint64_t connect_ns = 0;
  std::uint64_t* issue_ns = nullptr;  // `depth` slots: message k was issued at [k % depth]
  std::uint8_t* rx = nullptr;
  Op connect_op;
  Op send_op;
  Op recv_op;
  bool idle() const { return !connect_busy && !send_busy && !recv_busy; }
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
  ~LoadRun();
  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  LoadResult run();

 private:
  void fill_pattern();

  void launch_due_connections();
  void launch(Connection& c);
  bool may_issue() const;
  void issue(Connection& c);
  void flush_send(Connection& c);
  void arm_recv(Connection& c);

  void dispatch(const LoadCompletion& r);
  void on_connect(Connection& c, int res);
  void on_send(Connection& c, int res);
  void on_recv(Connection& c, int res);
  void complete_messages(Connection& c);
  void fail(Connection& c, std::uint64_t& counter, const char* what, int err);
  void close_if_done(Connection& c);
  void scan_for_stuck();
  std::uint64_t next_deadline_ns() const;

  const LoadConfig& cfg_;
  ServerAddress address_;
  std::vector<std::uint8_t> pattern_;
  std::vector<Connection> conns_;
  std::vector<std::uint64_t> issue_ns_;
  std::vector<std::uint8_t> rx_;
  std::size_t rx_size_ = 0;
  unsigned launched_ = 0;
  unsigned ops_in_flight_ = 0;
  bool stopping_ = false;
  std::uint64_t budget_ = UINT64_MAX;  // messages still to issue after warm-up
  std::uint64_t now_ns_ = 0;
  std::uint64_t start_ns_ = 0;
  std::uint64_t measure_start_ns_ = 0;
  std::uint64_t issue_end_ns_ = UINT64_MAX;
  std::uint64_t timeout_ns_ = 0;
  std::uint64_t next_scan_ns_ = 0;
  std::uint64_t last_cqe_ns_ = 0;
  std::uint64_t last_measured_ns_ = 0;
  LoadResult result_;
  // Each connection has at most two operations in flight (connect, or send and receive). Last,
  // so that it is torn down first: its exit cancels what a stuck run left in flight before the
  // buffers those operations name are freed.
  LoadRing ring_;
};

LoadRun::LoadRun(const LoadConfig& config)
    : cfg_(checked(config)),
      address_(resolve_server(config.host, config.port)),
      ring_(2 * config.connections) {
  result_.ring_mode = ring_.mode();
  fill_pattern();
  const std::uint64_t window = std::uint64_t{cfg_.depth} * cfg_.size;
  rx_size_ = static_cast<std::size_t>(std::min<std::uint64_t>(window, kMaxRecvBytes));
  // Everything a message needs is allocated here, once: the ring loop allocates nothing.
  conns_.resize(cfg_.connections);
  issue_ns_.resize(std::size_t{cfg_.connections} * cfg_.depth);
  rx_.resize(std::size_t{cfg_.connections} * rx_size_);
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    Connection& c = conns_[i];
    c.salt = (i * 2654435761U) % kPatternPeriod;
    c.issue_ns = issue_ns_.data() + i * cfg_.depth;
    c.rx = rx_.data() + i * rx_size_;
    c.connect_op = {&c, OpKind::kConnect};
    c.send_op = {&c, OpKind::kSend};
    c.recv_op = {&c, OpKind::kRecv};
  }
}

LoadRun::~LoadRun() {
  for (Connection& c : conns_) {
    if (c.fd >= 0) ::close(c.fd);
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
  start_ns_ = now_ns_ = core::monotonic_ns();
  measure_start_ns_ = start_ns_ + seconds_to_ns(cfg_.warmup_s);
  if (cfg_.count > 0) {
    budget_ = cfg_.count;
  } else {
    issue_end_ns_ = measure_start_ns_ + seconds_to_ns(cfg_.duration_s);
  }
  timeout_ns_ = seconds_to_ns(cfg_.timeout_s);
  next_scan_ns_ = now_ns_ + kScanIntervalNs;
  last_cqe_ns_ = now_ns_;
  for (;;) {
    if ((cfg_.stop != nullptr && cfg_.stop->load(std::memory_order_relaxed)) ||
        now_ns_ >= issue_end_ns_) {
      stopping_ = true;
    }
    launch_due_connections();
    if (ops_in_flight_ == 0 && (stopping_ || launched_ == conns_.size())) break;
    ring_.submit_and_wait(now_ns_, next_deadline_ns());
    now_ns_ = core::monotonic_ns();
    ring_.reap([this](const LoadCompletion& r) { dispatch(r); });
    if (now_ns_ >= next_scan_ns_) {
      scan_for_stuck();
      next_scan_ns_ = now_ns_ + kScanIntervalNs;
    }
    // Stuck connections were shut down or cancelled at timeout_s; if even that brought
    // nothing back, leave the rest to ring teardown rather than hang.
    if (ops_in_flight_ > 0 && now_ns_ - last_cqe_ns_ > 2 * timeout_ns_ + kNsPerS) break;
  }
  if (last_measured_ns_ > measure_start_ns_) {
    result_.elapsed_s =
        static_cast<double>(last_measured_ns_ - measure_start_ns_) / static_cast<double>(kNsPerS);
  }
  return std::move(result_);
}

void LoadRun::launch_due_connections() {
  if (stopping_) return;
  std::size_t due = conns_.size();
  if (cfg_.connect_rate > 0) {
    const double elapsed_s =
        static_cast<double>(now_ns_ - start_ns_) / static_cast<double>(kNsPerS);
    due = static_cast<std::size_t>(
        std::min(elapsed_s * cfg_.connect_rate + 1.0, static_cast<double>(conns_.size())));
  }
  while (launched_ < due)
    launch(conns_[launched_++]);
}

void LoadRun::launch(Connection& c) {
  c.connect_ns = now_ns_;
  const int fd = open_client_socket(address_);
  if (fd < 0) {
    fail(c, result_.errors.connect, "socket", -fd);
    return;
  }
  c.fd = fd;
  c.state = State::kConnecting;
  c.connect_busy = true;
  ++ops_in_flight_;
  io_uring_prep_connect(ring_.sqe(&c.connect_op), c.fd, address_.sockaddr_ptr(), address_.len);
}

bool LoadRun::may_issue() const {
  if (stopping_ || now_ns_ >= issue_end_ns_) return false;
  return now_ns_ < measure_start_ns_ || budget_ > 0;
}

void LoadRun::issue(Connection& c) {
  if (c.state != State::kOpen) return;
  while (c.issued - c.completed < cfg_.depth && may_issue()) {
    c.issue_ns[c.issued % cfg_.depth] = now_ns_;
    if (now_ns_ >= measure_start_ns_) --budget_;
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
  ++ops_in_flight_;
}

// A receive is armed only while an echo is owed, so a finished connection has nothing in
// flight and needs no cancel.
void LoadRun::arm_recv(Connection& c) {
  if (c.state != State::kOpen || c.recv_busy || c.completed == c.issued) return;
  io_uring_prep_recv(ring_.sqe(&c.recv_op), c.fd, c.rx, rx_size_, 0);
  c.recv_busy = true;
  ++ops_in_flight_;
}

// The longest a turn waits for a completion: until a connection is due, the run ends, or the
// stuck-connection scan.
std::uint64_t LoadRun::next_deadline_ns() const {
  std::uint64_t deadline = UINT64_MAX;
  if (!stopping_) {
    if (launched_ < conns_.size() && cfg_.connect_rate > 0) {
      const double after_s = static_cast<double>(launched_) / cfg_.connect_rate;
      deadline = start_ns_ + seconds_to_ns(after_s);
    }
    deadline = std::min(deadline, issue_end_ns_);
  }
  if (ops_in_flight_ > 0) deadline = std::min(deadline, next_scan_ns_);
  return deadline;
}

void LoadRun::dispatch(const LoadCompletion& r) {
  last_cqe_ns_ = now_ns_;
  auto* op = static_cast<Op*>(r.data);
  if (op == nullptr) return;
  --ops_in_flight_;
  switch (op->kind) {
    case OpKind::kConnect:
      on_connect(*op->conn, r.res);
      break;
    case OpKind::kSend:
      on_send(*op->conn, r.res);
      break;
    case OpKind::kRecv:
      on_recv(*op->conn, r.res);
      break;
  }
}

void LoadRun::on_connect(Connection& c, int res) {
  c.connect_busy = false;
  if (c.state == State::kFailed) return close_if_done(c);
  if (res < 0) return fail(c, result_.errors.connect, "connect", -res);
  c.state = State::kOpen;
  ++result_.connected;
  issue(c);
  flush_send(c);
  arm_recv(c);
}

void LoadRun::on_send(Connection& c, int res) {
  c.send_busy = false;
  if (c.state == State::kFailed) return close_if_done(c);
  if (res < 0) return fail(c, result_.errors.reset, "send", -res);
  c.sent += static_cast<std::uint64_t>(res);
  flush_send(c);
}

void LoadRun::on_recv(Connection& c, int res) {
  c.recv_busy = false;
  if (c.state == State::kFailed) return close_if_done(c);
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
    if (issued_ns >= measure_start_ns_) {
      ++result_.messages;
      result_.latency.record(now_ns_ - issued_ns);
      last_measured_ns_ = now_ns_;
    }
  }
}

// One error per connection. Its messages in flight are lost (not counted); shutdown ends the
// send and receive still in flight, a cancel ends a connect, and the fd closes once the last
// completion naming it has arrived.
void LoadRun::fail(Connection& c, std::uint64_t& counter, const char* what, int err) {
  if (c.state == State::kFailed) return;
  ++counter;
  if (result_.first_error.empty()) {
    result_.first_error = err != 0 ? fmt::format("{}: {}", what, std::strerror(err)) : what;
  }
  c.state = State::kFailed;
  if (c.fd >= 0 && (c.send_busy || c.recv_busy)) ::shutdown(c.fd, SHUT_RDWR);
  if (c.connect_busy) io_uring_prep_cancel(ring_.sqe(nullptr), &c.connect_op, 0);
  close_if_done(c);
}

void LoadRun::close_if_done(Connection& c) {
  if (c.fd >= 0 && c.idle()) {
    ::close(c.fd);
    c.fd = -1;
  }
}

void LoadRun::scan_for_stuck() {
  for (unsigned i = 0; i < launched_; ++i) {
    Connection& c = conns_[i];
    if (c.state == State::kConnecting && now_ns_ - c.connect_ns > timeout_ns_) {
      fail(c, result_.errors.connect, "connect timed out (--timeout-s)", 0);
    } else if (c.state == State::kOpen && c.completed < c.issued &&
               now_ns_ - c.issue_ns[c.completed % cfg_.depth] > timeout_ns_) {
      fail(c, result_.errors.timeout, "no echo within --timeout-s", 0);
    }
  }
}

}  // namespace

LoadResult run_echo_load(const LoadConfig& config) {
  LoadRun run(config);
  return run.run();
}

}  // namespace rs::perf
