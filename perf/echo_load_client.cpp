#include "perf/echo_load_client.hpp"

#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/clock.hpp"

namespace rs::perf {
namespace {

// Every connection's byte stream is one pseudo-random pattern repeating with a prime period,
// entered at a per-connection offset. Message k is stream bytes [k*size, (k+1)*size), so a send
// of any run of messages is one pointer into the (extended) pattern, and an echo that is
// shifted, duplicated, cut short or taken from another connection fails the compare.
constexpr std::size_t kPatternPeriod = 65521;
constexpr std::size_t kMaxSendBytes = std::size_t{256} * 1024;
constexpr std::size_t kMaxRecvBytes = std::size_t{16} * 1024;
constexpr std::size_t kReapBatch = 1024;
constexpr std::uint64_t kScanIntervalNs = 100'000'000;
constexpr std::uint64_t kNsPerS = 1'000'000'000;

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

struct Reaped {
  Op* op;
  int res;
};

std::uint64_t seconds_to_ns(double s) {
  return static_cast<std::uint64_t>(s * static_cast<double>(kNsPerS));
}

class LoadRun {
 public:
  explicit LoadRun(const LoadConfig& config);
  ~LoadRun();
  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  LoadResult run();

 private:
  void resolve();
  void setup_ring();
  void fill_pattern();

  void launch_due_connections();
  void launch(Connection& c);
  bool may_issue() const;
  void issue(Connection& c);
  void flush_send(Connection& c);
  void arm_recv(Connection& c);

  void wait();
  void reap();
  void dispatch(const Reaped& r);
  void on_connect(Connection& c, int res);
  void on_send(Connection& c, int res);
  void on_recv(Connection& c, int res);
  void complete_messages(Connection& c);
  void fail(Connection& c, std::uint64_t& counter, const char* what, int err);
  void close_if_done(Connection& c);
  void scan_for_stuck();
  std::uint64_t next_deadline_ns() const;
  io_uring_sqe* sqe(Op* op);

  const LoadConfig& cfg_;
  io_uring ring_{};
  bool ring_ready_ = false;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::vector<std::uint8_t> pattern_;
  std::vector<Connection> conns_;
  std::vector<std::uint64_t> issue_ns_;
  std::vector<std::uint8_t> rx_;
  std::vector<Reaped> batch_;
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
};

LoadRun::LoadRun(const LoadConfig& config) : cfg_(config) {
  if (cfg_.connections == 0 || cfg_.size == 0 || cfg_.depth == 0) {
    throw std::runtime_error("--connections, --size and --depth must be at least 1");
  }
  resolve();
  fill_pattern();
  const std::uint64_t window = std::uint64_t{cfg_.depth} * cfg_.size;
  rx_size_ = static_cast<std::size_t>(std::min<std::uint64_t>(window, kMaxRecvBytes));
  // Everything a message needs is allocated here, once: the ring loop allocates nothing.
  conns_.resize(cfg_.connections);
  issue_ns_.resize(std::size_t{cfg_.connections} * cfg_.depth);
  rx_.resize(std::size_t{cfg_.connections} * rx_size_);
  batch_.resize(kReapBatch);
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    Connection& c = conns_[i];
    c.salt = (i * 2654435761U) % kPatternPeriod;
    c.issue_ns = issue_ns_.data() + i * cfg_.depth;
    c.rx = rx_.data() + i * rx_size_;
    c.connect_op = {&c, OpKind::kConnect};
    c.send_op = {&c, OpKind::kSend};
    c.recv_op = {&c, OpKind::kRecv};
  }
  setup_ring();
}

LoadRun::~LoadRun() {
  // Exiting the ring first cancels anything still in flight (only after a stuck run).
  if (ring_ready_) io_uring_queue_exit(&ring_);
  for (Connection& c : conns_) {
    if (c.fd >= 0) ::close(c.fd);
  }
}

void LoadRun::resolve() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(cfg_.port);
  const int rc = ::getaddrinfo(cfg_.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    throw std::runtime_error(fmt::format("cannot resolve --host {}: {}", cfg_.host,
                                         rc != 0 ? ::gai_strerror(rc) : "no address"));
  }
  std::memcpy(&addr_, found->ai_addr, found->ai_addrlen);
  addr_len_ = found->ai_addrlen;
  ::freeaddrinfo(found);
}

void LoadRun::setup_ring() {
  // Each connection has at most two operations in flight (connect, or send and receive), so
  // a CQ of twice the connections never overflows; the kernel clamps very large requests.
  const unsigned n = cfg_.connections;
  const unsigned sq_entries = std::bit_ceil(std::clamp(2 * n, 64U, 4096U));
  const unsigned cq_entries = std::bit_ceil(std::clamp(2 * n + 64, 256U, 1U << 20));
  const struct {
    unsigned flags;
    const char* name;
  } modes[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
      {0, "plain"},
  };
  int rc = 0;
  for (const auto& mode : modes) {
    io_uring_params params{};
    params.flags = mode.flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = cq_entries;
    rc = io_uring_queue_init_params(sq_entries, &ring_, &params);
    if (rc == 0) {
      ring_ready_ = true;
      result_.ring_mode = mode.name;
      return;
    }
  }
  throw std::runtime_error(fmt::format(
      "io_uring_setup failed: {} (io_uring disabled by kernel.io_uring_disabled, a seccomp "
      "profile or the container runtime?)",
      std::strerror(-rc)));
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
    wait();
    now_ns_ = core::monotonic_ns();
    reap();
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
  c.fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    fail(c, result_.errors.connect, "socket", errno);
    return;
  }
  // Messages leave as soon as they are issued; Nagle would hold back every second one.
  const int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.state = State::kConnecting;
  c.connect_busy = true;
  ++ops_in_flight_;
  io_uring_prep_connect(sqe(&c.connect_op), c.fd, reinterpret_cast<const sockaddr*>(&addr_),
                        addr_len_);
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
  io_uring_prep_send(sqe(&c.send_op), c.fd, from, len, MSG_NOSIGNAL);
  c.send_busy = true;
  ++ops_in_flight_;
}

// A receive is armed only while an echo is owed, so a finished connection has nothing in
// flight and needs no cancel.
void LoadRun::arm_recv(Connection& c) {
  if (c.state != State::kOpen || c.recv_busy || c.completed == c.issued) return;
  io_uring_prep_recv(sqe(&c.recv_op), c.fd, c.rx, rx_size_, 0);
  c.recv_busy = true;
  ++ops_in_flight_;
}

io_uring_sqe* LoadRun::sqe(Op* op) {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s == nullptr) {
    // A full SQ is not an error: hand the batch to the kernel and carry on.
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
    if (s == nullptr) throw std::runtime_error("io_uring submission queue stays full");
  }
  io_uring_sqe_set_data(s, op);
  return s;
}

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

// One system call per turn: submit everything prepared, wait for at least one completion or
// the next deadline (a connection due, the end of the run, the stuck-connection scan).
void LoadRun::wait() {
  io_uring_cqe* cqe = nullptr;
  const std::uint64_t deadline = next_deadline_ns();
  int rc = 0;
  if (deadline == UINT64_MAX) {
    rc = io_uring_submit_and_wait(&ring_, 1);
  } else {
    const std::uint64_t wait_ns = deadline > now_ns_ ? deadline - now_ns_ : 0;
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(wait_ns / kNsPerS);
    ts.tv_nsec = static_cast<long long>(wait_ns % kNsPerS);
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  // ETIME and EINTR mean only that nothing arrived; EBUSY/EAGAIN clear once we reap.
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
    throw std::runtime_error(fmt::format("io_uring_enter: {}", std::strerror(-rc)));
  }
}

// Completions are copied out and the CQ head advanced once per batch, then handled.
void LoadRun::reap() {
  for (;;) {
    unsigned head = 0;
    unsigned n = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == batch_.size()) break;
      // Cancels carry no user_data; liburing's own wait timeout (old kernels) has a marker.
      Op* op = cqe->user_data == LIBURING_UDATA_TIMEOUT
                   ? nullptr
                   : static_cast<Op*>(io_uring_cqe_get_data(cqe));
      batch_[n++] = {op, cqe->res};
    }
    if (n == 0) return;
    io_uring_cq_advance(&ring_, n);
    last_cqe_ns_ = now_ns_;
    for (unsigned i = 0; i < n; ++i)
      dispatch(batch_[i]);
    if (n < batch_.size()) return;
  }
}

void LoadRun::dispatch(const Reaped& r) {
  Op* op = r.op;
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
  if (c.connect_busy) io_uring_prep_cancel(sqe(nullptr), &c.connect_op, 0);
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
