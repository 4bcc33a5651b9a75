#include "perf/http_load_client.hpp"

#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "perf/http_response_parser.hpp"
#include "perf/load_socket.hpp"

namespace rs::perf {
namespace {

constexpr std::uint64_t kLateNs = 1'000'000;
constexpr std::size_t kMinRecvBytes = 4096;
constexpr std::size_t kMaxRecvBytes = 16384;

// kClosed: between two sockets, or for good once the run stops. kDead: closed during the run
// and not replaced (its connect failed, or the server shed it before any answer): an
// unreachable or refusing server must not be hammered with connects.
enum class State : std::uint8_t { kClosed, kConnecting, kOpen, kRetiring, kDead };

struct Connection : LoadSocket {
  State state = State::kClosed;
  bool queued = false;          // in the ready queue
  bool dirty = false;           // issued to this turn; its send goes out at the end of the turn
  bool reopen = false;          // once retired, a new connection takes its place
  bool close_issued = false;    // its last request (Connection: close, --churn) is issued
  std::uint64_t issued = 0;     // requests issued on this socket
  std::uint64_t completed = 0;  // responses read whole on this socket
  std::uint64_t unsent = 0;     // request bytes issued that no send has taken yet
  std::uint64_t room_ns = 0;    // when it last gained room for a request (connected, or a
                                // response freed a full pipeline)
  std::uint64_t* intended_ns = nullptr;  // `depth` slots: request k at [k % depth]
  std::uint64_t* sent_ns = nullptr;
  char* rx = nullptr;
  HttpResponseParser parser;
  std::uint64_t outstanding() const { return issued - completed; }
};

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\t'; });
}

std::string host_field(const HttpLoadConfig& config) {
  const bool ipv6 = config.host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + config.host + "]" : config.host;
  return config.port == 80 ? host : fmt::format("{}:{}", host, config.port);
}

void check(const HttpLoadConfig& config) {
  if (config.connections == 0 || config.depth == 0) {
    throw std::invalid_argument("--connections and --depth must be at least 1");
  }
  if (config.rate < 0 || config.duration_s <= 0 || config.warmup_s < 0 || config.timeout_s <= 0) {
    throw std::invalid_argument(
        "--rate and --warmup must not be negative, --duration and --timeout must be positive");
  }
}

// One run, once: the connections, the schedule and the counts (not copyable: its connections
// and ring stay where the kernel's operations point).
class HttpLoadRun {
 public:
  explicit HttpLoadRun(const HttpLoadConfig& config);
  HttpLoadResult run();

 private:
  // The shared turn calls the completion handlers and the stuck-connection scan below.
  template <typename Conn, typename Handler>
  friend void perf::route_completion(const LoadCompletion& completion, Handler& handler);
  template <typename Conn, typename Run>
  friend bool perf::run_turn(LoadRing& ring, LoadTimeline& time, std::uint64_t deadline_ns,
                             Run& run);

  bool open_loop() const { return cfg_.rate > 0; }
  bool measured(std::uint64_t intended_ns) const {
    return intended_ns >= time_.measure_start_ns && intended_ns < time_.issue_end_ns;
  }

  void open(Connection& c);
  bool has_room(const Connection& c) const;
  void make_ready(Connection& c);
  Connection* take_ready();
  void issue_due();
  void issue(Connection& c, std::uint64_t intended_ns);
  void flush_turn();
  void flush_send(Connection& c);
  void arm_recv(Connection& c);
  bool issuing_done() const;
  void begin_stop();
  void stall();

  void on_connect(Connection& c, int res);
  void on_send(Connection& c, int res);
  void on_recv(Connection& c, int res);
  void on_eof(Connection& c);
  bool on_response(Connection& c);
  void after_recv(Connection& c);
  void retire(Connection& c, bool reopen);
  void fail(Connection& c, std::uint64_t& counter, bool reopen, const std::string& what);
  void close_if_done(Connection& c);
  bool scan_for_stuck();
  std::uint64_t next_deadline_ns() const;

  const HttpLoadConfig& cfg_;
  ServerAddress address_;
  // A connection's unsent requests are always the tail of one of these: `depth` requests,
  // the last of which is the Connection: close one in close_block_ (used once it is issued).
  std::string normal_block_;
  std::string close_block_;
  std::size_t request_bytes_ = 0;
  std::size_t close_request_bytes_ = 0;
  std::size_t rx_size_ = 0;
  std::vector<Connection> conns_;
  std::vector<std::uint64_t> slots_ns_;
  std::vector<char> rx_;
  // Connections with room for another request, in the order they got it; each at most once.
  std::vector<Connection*> ready_;
  std::size_t ready_head_ = 0;
  std::size_t ready_size_ = 0;
  std::vector<Connection*> dirty_;
  // Two copies of the schedule: `due_` counts the requests whose time has come, `next_` hands
  // them out as connections have room. The difference is the backlog.
  RequestSchedule due_;
  RequestSchedule next_;
  std::uint64_t next_due_ns_ = 0;
  std::uint64_t next_send_ns_ = 0;
  std::uint64_t due_count_ = 0;
  std::uint64_t handed_out_ = 0;
  // The generator's own stall: the loop came back (from its wait and its handlers) past the
  // time it was to send a request at, with a connection free for it. Requests due from `from`
  // to `until` are late by its doing.
  std::uint64_t overslept_from_ns_ = 0;
  std::uint64_t overslept_until_ns_ = 0;
  unsigned alive_ = 0;  // connections that are not dead: when none is left, the run stops
  bool stopping_ = false;
  LoadTimeline time_;
  HttpLoadResult result_;
  // Per connection: a connect, or a send and a receive, and a cancel. Last, so that it is
  // torn down first: its exit cancels what a stuck run left in flight before the buffers
  // those operations name are freed.
  LoadRing ring_;
};

HttpLoadRun::HttpLoadRun(const HttpLoadConfig& config)
    : cfg_(config),
      address_(resolve_server(config.host, config.port)),
      conns_(config.connections),
      // Closed loop (rate 0) has no schedule; any rate above 0, however low, is kept.
      due_(config.schedule, config.rate > 0 ? config.rate : 1.0, config.seed),
      next_(config.schedule, config.rate > 0 ? config.rate : 1.0, config.seed),
      ring_(3 * config.connections) {
  result_.ring_mode = ring_.mode();
  const std::string request = build_request(cfg_, false);
  const std::string last = build_request(cfg_, true);
  request_bytes_ = request.size();
  close_request_bytes_ = last.size();
  // Everything a request needs is allocated here, once: the ring loop allocates nothing.
  for (unsigned i = 0; i < cfg_.depth; ++i)
    normal_block_ += request;
  close_block_ = normal_block_.substr(request.size()) + last;
  rx_size_ = std::clamp<std::size_t>(std::size_t{cfg_.depth} * 1024, kMinRecvBytes, kMaxRecvBytes);
  slots_ns_.resize(std::size_t{2} * cfg_.connections * cfg_.depth);
  rx_.resize(std::size_t{cfg_.connections} * rx_size_);
  ready_.resize(cfg_.connections);
  dirty_.reserve(cfg_.connections);
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    Connection& c = conns_[i];
    c.intended_ns = slots_ns_.data() + 2 * i * cfg_.depth;
    c.sent_ns = c.intended_ns + cfg_.depth;
    c.rx = rx_.data() + i * rx_size_;
  }
}

HttpLoadResult HttpLoadRun::run() {
  const std::uint64_t cpu_start_ns = core::clock_ns(CLOCK_THREAD_CPUTIME_ID);
  time_.begin(cfg_.warmup_s, cfg_.timeout_s);
  time_.issue_end_ns = time_.measure_start_ns + seconds_to_ns(cfg_.duration_s);
  next_due_ns_ = time_.start_ns + due_.next_ns();
  next_send_ns_ = time_.start_ns + next_.next_ns();
  alive_ = cfg_.connections;
  for (Connection& c : conns_)
    open(c);
  for (;;) {
    if (cfg_.stop != nullptr && cfg_.stop->load(std::memory_order_relaxed)) begin_stop();
    issue_due();
    // Nothing can be sent any more (every connect failed): the rest of the run would only
    // count the backlog.
    if (issuing_done() || alive_ == 0) begin_stop();
    flush_turn();
    if (stopping_ && ring_.in_flight() == 0) break;
    // A connection has room: the wait ends by the next request's time at the latest.
    const bool send_waits = open_loop() && !stopping_ && ready_size_ > 0;
    const std::uint64_t send_at_ns = next_send_ns_;
    if (!run_turn<Connection>(ring_, time_, next_deadline_ns(), *this)) {
      stall();
      break;
    }
    if (send_waits && time_.now_ns > send_at_ns + kLateNs) {
      overslept_from_ns_ = send_at_ns;
      overslept_until_ns_ = time_.now_ns;
    }
  }
  for (const Connection& c : conns_)
    result_.lost += c.outstanding();
  result_.elapsed_s = time_.measured_s();
  const double wall_s = static_cast<double>(time_.now_ns - time_.start_ns) / 1e9;
  const std::uint64_t cpu_ns = core::clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start_ns;
  if (wall_s > 0) result_.client_cpu_busy = static_cast<double>(cpu_ns) / 1e9 / wall_s;
  return std::move(result_);
}

void HttpLoadRun::open(Connection& c) {
  const int rc = start_connect(ring_, c, address_, time_.now_ns);
  if (rc < 0) {
    c.state = State::kDead;
    --alive_;
    ++result_.errors.connect;
    if (result_.first_error.empty()) {
      result_.first_error = fmt::format("socket: {}", std::strerror(-rc));
    }
    return;
  }
  c.state = State::kConnecting;
  c.issued = c.completed = c.unsent = 0;
  c.close_issued = false;
  c.parser = HttpResponseParser{};
  ++result_.connections_opened;
}

bool HttpLoadRun::has_room(const Connection& c) const {
  return !stopping_ && c.state == State::kOpen && c.outstanding() < cfg_.depth &&
         (cfg_.churn == 0 || c.issued < cfg_.churn);
}

void HttpLoadRun::make_ready(Connection& c) {
  if (c.queued || !has_room(c)) return;
  c.queued = true;
  ready_[(ready_head_ + ready_size_++) % ready_.size()] = &c;
}

// The connection that has waited longest for a request; connections that lost their room
// while queued (failed, retired) are dropped on the way.
Connection* HttpLoadRun::take_ready() {
  while (ready_size_ > 0) {
    Connection* c = ready_[ready_head_];
    ready_head_ = (ready_head_ + 1) % ready_.size();
    --ready_size_;
    c->queued = false;
    if (has_room(*c)) return c;
  }
  return nullptr;
}

// Open loop: every request whose time has come goes to a connection with room, in the order
// of the schedule, with its intended time; what finds none waits in the backlog. Closed loop:
// every free slot gets a request now.
void HttpLoadRun::issue_due() {
  if (stopping_) return;
  if (!open_loop()) {
    while (Connection* c = take_ready())
      issue(*c, time_.now_ns);
    return;
  }
  // Past the window only its backlog is handed out (the drain): nothing new becomes due.
  const std::uint64_t horizon = std::min(time_.now_ns + 1, time_.issue_end_ns);
  while (next_due_ns_ < horizon) {
    ++due_count_;
    next_due_ns_ = time_.start_ns + due_.next_ns();
  }
  while (next_send_ns_ < horizon) {
    Connection* c = take_ready();
    if (c == nullptr) break;
    issue(*c, next_send_ns_);
    ++handed_out_;
    next_send_ns_ = time_.start_ns + next_.next_ns();
  }
  if (time_.now_ns >= time_.measure_start_ns) {
    result_.backlog_max = std::max(result_.backlog_max, due_count_ - handed_out_);
  }
}

void HttpLoadRun::issue(Connection& c, std::uint64_t intended_ns) {
  const std::size_t slot = c.issued % cfg_.depth;
  c.intended_ns[slot] = intended_ns;
  c.sent_ns[slot] = time_.now_ns;
  ++c.issued;
  ++result_.sent;
  if (measured(intended_ns) && time_.now_ns - intended_ns > kLateNs) {
    ++result_.late_sends;
    // Late by the generator's doing, not the server's: the connection had room before the
    // request was due (the loop was busy elsewhere), or the request fell due while the loop
    // slept or worked past its time (descheduled, stopped, handling). An estimate: the requests
    // that then queue behind those for a connection are not counted, and all that fell due during
    // an oversleep are, though some would have waited for the server anyway.
    if (c.room_ns <= intended_ns ||
        (intended_ns >= overslept_from_ns_ && intended_ns < overslept_until_ns_)) {
      ++result_.client_late_sends;
    }
  }
  if (cfg_.churn > 0 && c.issued == cfg_.churn) {
    c.close_issued = true;
    c.unsent += close_request_bytes_;
  } else {
    c.unsent += request_bytes_;
  }
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(&c);
  }
  make_ready(c);
}

// The requests issued to a connection this turn leave in one send, submitted with the rest of
// the turn's operations.
void HttpLoadRun::flush_turn() {
  for (Connection* c : dirty_) {
    c->dirty = false;
    flush_send(*c);
  }
  dirty_.clear();
}

// One send in flight per connection keeps the requests in order; those issued meanwhile go
// out together in the next one.
void HttpLoadRun::flush_send(Connection& c) {
  if (c.state != State::kOpen || c.send_busy || c.unsent == 0) return;
  const std::string& block = c.close_issued ? close_block_ : normal_block_;
  // Unsent requests are outstanding ones, at most `depth`, unless the server answered a
  // request before the whole of it was sent; the block holds no more than that.
  if (c.unsent > block.size()) {
    return fail(c, result_.errors.bad_response, true, "a response came before its request");
  }
  const char* from = block.data() + block.size() - c.unsent;
  io_uring_prep_send(ring_.sqe(&c.send_op), c.fd, from, c.unsent, MSG_NOSIGNAL);
  c.send_busy = true;
}

// A receive stays armed while the connection is open, owed or not, so a server that closes an
// idle connection is seen at once and the connection replaced before a request is lost on it.
void HttpLoadRun::arm_recv(Connection& c) {
  if (c.state != State::kOpen || c.recv_busy) return;
  io_uring_prep_recv(ring_.sqe(&c.recv_op), c.fd, c.rx, rx_size_, 0);
  c.recv_busy = true;
}

// Closed loop issues until the window ends. Open loop goes on past it until every request due
// in the window has been handed to a connection (they waited longest: leaving them out would
// understate the tail at saturation), for --timeout at most.
bool HttpLoadRun::issuing_done() const {
  if (time_.now_ns < time_.issue_end_ns) return false;
  return !open_loop() || handed_out_ == due_count_ ||
         time_.now_ns >= time_.issue_end_ns + time_.timeout_ns;
}

// No request is issued after this; the connections with nothing outstanding close now, the
// others once their last response is in (or their timeout passes). Requests still in the
// backlog are never sent: each measured one is in the latency at what it has waited so far,
// a lower bound of what it would have shown.
void HttpLoadRun::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  if (open_loop()) {
    result_.unsent = due_count_ - handed_out_;
    for (std::uint64_t i = 0; i < result_.unsent; ++i) {
      if (measured(next_send_ns_)) result_.latency.record(time_.now_ns - next_send_ns_);
      next_send_ns_ = time_.start_ns + next_.next_ns();
    }
    handed_out_ = due_count_;
  }
  for (Connection& c : conns_) {
    if (c.state == State::kConnecting || (c.state == State::kOpen && c.outstanding() == 0)) {
      retire(c, false);
    }
  }
}

// Operations owed a completion brought none back: the run ends here, failed, and what was
// outstanding is lost. The ring's teardown cancels what is left.
void HttpLoadRun::stall() {
  ++result_.errors.stalled;
  if (result_.first_error.empty()) {
    result_.first_error = fmt::format(
        "stalled: no completion for {:g} s with operations in flight that were owed one",
        ns_to_seconds(time_.stall_ns()));
  }
  begin_stop();
}

void HttpLoadRun::on_connect(Connection& c, int res) {
  if (c.state != State::kConnecting) return close_if_done(c);
  if (res < 0) {
    return fail(c, result_.errors.connect, false, fmt::format("connect: {}", std::strerror(-res)));
  }
  c.state = State::kOpen;
  c.room_ns = time_.now_ns;
  arm_recv(c);
  make_ready(c);
}

void HttpLoadRun::on_send(Connection& c, int res) {
  if (c.state != State::kOpen) return close_if_done(c);
  if (res < 0)
    return fail(c, result_.errors.reset, true, fmt::format("send: {}", std::strerror(-res)));
  c.unsent -= static_cast<std::uint64_t>(res);
  flush_send(c);
}

void HttpLoadRun::on_recv(Connection& c, int res) {
  if (c.state != State::kOpen) return close_if_done(c);
  if (res == 0) return on_eof(c);
  if (res < 0)
    return fail(c, result_.errors.reset, true, fmt::format("recv: {}", std::strerror(-res)));
  const char* p = c.rx;
  auto left = static_cast<std::size_t>(res);
  while (left > 0) {
    std::size_t used = 0;
    const HttpResponseParser::Result r = c.parser.feed(p, left, used);
    p += used;
    left -= used;
    if (r == HttpResponseParser::Result::kBad) {
      return fail(c, result_.errors.bad_response, true,
                  fmt::format("a malformed response: {}", c.parser.error()));
    }
    // Past a response that ends the connection nothing more is read.
    if (r == HttpResponseParser::Result::kDone && !on_response(c)) return;
  }
  after_recv(c);
}

// The server closed: a response that runs to the close ends here; anything still outstanding
// is lost. The connection is replaced if it had answered or lived a second (an idle timeout);
// one closed at once, before any answer, is not, so that a server that sheds every connection
// that way is not reconnected to in a loop.
void HttpLoadRun::on_eof(Connection& c) {
  if (c.parser.feed_eof() == HttpResponseParser::Result::kDone && !on_response(c)) return;
  const bool reopen = c.completed > 0 || time_.now_ns - c.connect_ns >= kNsPerS;
  if (c.outstanding() > 0) {
    return fail(c, result_.errors.reset, reopen,
                fmt::format("the server closed a connection with {} requests outstanding",
                            c.outstanding()));
  }
  retire(c, reopen);
}

// A whole response: counted, timed from its request's intended send time. False when the
// connection ends with it (Connection: close, or the last of --churn).
bool HttpLoadRun::on_response(Connection& c) {
  if (c.outstanding() == 0) {
    fail(c, result_.errors.bad_response, true, "a response came to no request");
    return false;
  }
  const std::uint64_t intended_ns = c.intended_ns[c.completed % cfg_.depth];
  if (c.outstanding() == cfg_.depth) c.room_ns = time_.now_ns;  // full until now
  ++c.completed;
  ++result_.responses_total;
  const int status = c.parser.status();
  if (status < 200 || status > 299) ++result_.non_2xx;
  if (measured(intended_ns)) {
    ++result_.requests;
    result_.latency.record(time_.now_ns - intended_ns);
    time_.last_measured_ns = time_.now_ns;
  }
  const bool last = cfg_.churn > 0 && c.completed == cfg_.churn;
  if (!last && !c.parser.connection_close()) return true;
  if (c.outstanding() > 0) {
    fail(c, result_.errors.reset, true,
         fmt::format("the server answered Connection: close with {} requests outstanding",
                     c.outstanding()));
  } else {
    retire(c, true);
  }
  return false;
}

void HttpLoadRun::after_recv(Connection& c) {
  if (stopping_ && c.outstanding() == 0) return retire(c, false);
  arm_recv(c);
  make_ready(c);
}

// An orderly end: what is in flight is ended, and the descriptor closes once the last
// completion naming it has arrived.
void HttpLoadRun::retire(Connection& c, bool reopen) {
  c.state = State::kRetiring;
  c.reopen = reopen;
  end_operations(ring_, c);
  close_if_done(c);
}

// One error per connection; its requests in flight are lost (counted in `lost`).
void HttpLoadRun::fail(Connection& c, std::uint64_t& counter, bool reopen,
                       const std::string& what) {
  ++counter;
  result_.lost += c.outstanding();
  c.completed = c.issued;
  if (result_.first_error.empty()) result_.first_error = what;
  retire(c, reopen);
}

// Once closed, the connection is replaced, or not (then it is dead, or the run is ending).
void HttpLoadRun::close_if_done(Connection& c) {
  if (!close_when_idle(c)) return;
  if (stopping_) {
    c.state = State::kClosed;
  } else if (c.reopen) {
    open(c);
  } else {
    c.state = State::kDead;
    --alive_;
  }
}

// Whether an operation in flight on the connection is owed a completion: a connect, a send, a
// receive with a request outstanding, or whatever retire() shut down. An open connection's
// receive with nothing outstanding waits on no request (it only watches for a close), however
// long the gap to the next request.
bool owed(const Connection& c) {
  return c.connect_busy || c.send_busy ||
         (c.recv_busy && (c.state != State::kOpen || c.outstanding() > 0));
}

// Fails the connections stuck past --timeout; true when anything in flight is owed.
bool HttpLoadRun::scan_for_stuck() {
  bool any_owed = false;
  for (Connection& c : conns_) {
    if (c.state == State::kConnecting && time_.now_ns - c.connect_ns > time_.timeout_ns) {
      fail(c, result_.errors.connect, false, "connect timed out (--timeout)");
    } else if (c.state == State::kOpen && c.outstanding() > 0 &&
               time_.now_ns - c.sent_ns[c.completed % cfg_.depth] > time_.timeout_ns) {
      fail(c, result_.errors.timeout, true, "no response within --timeout");
    }
    any_owed = any_owed || owed(c);
  }
  return any_owed;
}

// The longest a turn waits for a completion: until the next request is due (when a connection
// has room for it), the window or the drain after it ends, or the stuck-connection scan.
std::uint64_t HttpLoadRun::next_deadline_ns() const {
  std::uint64_t deadline = UINT64_MAX;
  if (!stopping_) {
    deadline = time_.now_ns < time_.issue_end_ns ? time_.issue_end_ns
                                                 : time_.issue_end_ns + time_.timeout_ns;
    if (open_loop() && ready_size_ > 0) deadline = std::min(deadline, next_send_ns_);
  }
  if (ring_.in_flight() > 0) deadline = std::min(deadline, time_.next_scan_ns);
  return deadline;
}

}  // namespace

std::string build_request(const HttpLoadConfig& config, bool close) {
  if (config.path.empty() || config.path.front() != '/' ||
      config.path.find_first_of(" \t") != std::string::npos || has_control(config.path)) {
    throw std::invalid_argument(fmt::format(
        "--path {:?} must start with / and hold no spaces or control characters", config.path));
  }
  bool has_host = false;
  std::string fields;
  for (const std::string& header : config.headers) {
    const std::size_t colon = header.find(':');
    if (colon == std::string::npos || colon == 0 ||
        !std::all_of(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(colon),
                     is_token_char) ||
        has_control(header)) {
      throw std::invalid_argument(
          fmt::format("--header {:?} is not \"Name: value\" (a token, a colon, a value on one "
                      "line)",
                      header));
    }
    has_host = has_host || (colon == 4 && strncasecmp(header.c_str(), "host", 4) == 0);
    fields += header;
    fields += "\r\n";
  }
  std::string request = fmt::format("GET {} HTTP/1.1\r\n", config.path);
  if (!has_host) request += fmt::format("Host: {}\r\n", host_field(config));
  request += fields;
  if (close) request += "Connection: close\r\n";
  request += "\r\n";
  return request;
}

HttpLoadResult run_http_load(const HttpLoadConfig& config) {
  check(config);
  HttpLoadRun run(config);
  return run.run();
}

}  // namespace rs::perf
