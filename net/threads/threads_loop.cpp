#include "net/threads/threads_loop.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>
#include <utility>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/timer_wheel.hpp"
#include "net/epoll/epoll_files.hpp"
#include "net/epoll/epoll_log.hpp"
#include "net/epoll/recv_buffers.hpp"
#include "net/loop_support.hpp"
#include "net/threads/thread_connection.hpp"

namespace rs::net::threads {

namespace {

// A worker's stack: its loop keeps its state on the heap, so a small stack is plenty, and
// thousands of workers do not reserve gigabytes of address space.
constexpr std::size_t kWorkerStackBytes = 256 << 10;
// Receive buffers per worker: one to read into, one for an answer that holds its bytes.
constexpr unsigned kWorkerBuffers = 2;
// Output chunks per slab of a worker's pool: one connection at a time needs few.
constexpr std::size_t kWorkerChunksPerSlab = 4;
// A blocking send returns after this long without progress, so the worker's timers
// (--send-timeout-ms among them) keep running while a peer does not read.
constexpr int kSendSliceMs = 200;
// While stopping, workers that have not noticed yet are interrupted again this often.
constexpr int kStopPollMs = 50;

// SIGUSR1 interrupts a worker's blocking recv, send or sleep (no SA_RESTART): the worker then
// looks at the stop flags. The handler itself does nothing.
void on_interrupt(int /*signo*/) {}

void set_socket_timeout(int fd, int option, std::int64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

}  // namespace

// The access log of every worker: whole lines into one buffer under a lock, written by whichever
// worker ends a turn. O_APPEND keeps lines whole in the file; the lock keeps the buffer whole.
class SharedLog final : public LogSink {
 public:
  SharedLog(LoopCounters& counters, const LoopConfig& config)
      : timers_(core::monotonic_ms()),
        log_(timers_, counters, config.access_log_path, config.access_log_max_buffered_bytes),
        enabled_(log_.enabled()) {}
  bool enabled() const { return enabled_; }
  void append(std::string_view line) override {
    std::lock_guard lock(mutex_);
    log_.append(line);
  }
  void flush() {
    if (!enabled_) return;  // no lock on the request path when there is no log
    std::lock_guard lock(mutex_);
    timers_.advance(core::monotonic_ms());  // its write-retry timer
    log_.flush();
  }
  void reopen() {
    std::lock_guard lock(mutex_);
    log_.reopen();
    log_.flush();  // switches files now, between whole lines, whether or not a worker is busy
  }
  void abandon() {
    std::lock_guard lock(mutex_);
    log_.abandon();
  }

 private:
  std::mutex mutex_;
  core::TimerWheel timers_;
  epoll::EpollLog log_;
  const bool enabled_;
};

// One thread and the state of the one connection it serves at a time.
class Worker final : public LoopServices, private ConnectionEvents, private WorkerWake {
 public:
  Worker(ThreadsLoop& owner, LoopCounters& counters, SharedLog& log)
      : owner_(owner),
        counters_(counters),
        log_(log),
        now_ms_(core::monotonic_ms()),
        timers_(now_ms_),
        chunks_(owner.config().chunk_bytes, kWorkerChunksPerSlab),
        buffers_(kWorkerBuffers, owner.config().buffer_size),
        files_(chunks_) {}
  ~Worker() { protocols_.reset(); }

  // Starts the thread on its first connection; 0, or the error pthread_create gave.
  int start(int fd) {
    first_fd_ = fd;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kWorkerStackBytes);
    const int rc = ::pthread_create(&thread_, &attr, &Worker::main, this);
    pthread_attr_destroy(&attr);
    started_ = rc == 0;
    if (started_) ::pthread_setname_np(thread_, "rs-worker");
    return rc;
  }
  void join() {
    if (started_) ::pthread_join(thread_, nullptr);
    started_ = false;
  }
  // Makes a blocked recv, send or sleep return (EINTR) so the worker looks at the flags.
  void interrupt() {
    if (started_) ::pthread_kill(thread_, SIGUSR1);
  }
  // The owner's notice number this worker has acted on.
  std::uint32_t seen() const { return seen_.load(std::memory_order_acquire); }

  // Guarded by the owner's mutex.
  std::condition_variable wake;
  int next_fd = -1;
  bool busy = false;

  // LoopServices
  core::TimerWheel& timers() override { return timers_; }
  core::ChunkPool& chunks() override { return chunks_; }
  std::uint64_t now_ms() const override { return now_ms_; }
  LogSink* access_log() override { return log_.enabled() ? &log_ : nullptr; }
  FileService& files() override { return files_; }

 private:
  static void* main(void* self) {
    static_cast<Worker*>(self)->run();
    return nullptr;
  }
  void run();
  void serve(int fd);
  void wait_for_input_or_timer(ThreadConnection& conn);
  void update_gauges() {
    counters_.pool_chunks.set(static_cast<std::int64_t>(chunks_.outstanding()));
    counters_.pool_response_slots.set(static_cast<std::int64_t>(slots_.outstanding()));
    counters_.pool_files.set(static_cast<std::int64_t>(files_.open_files()));
    counters_.pool_grows.set(static_cast<std::int64_t>(chunks_.grows() + slots_.grows()));
    counters_.buffers_held.set(buffers_.held());
  }
  void refresh() {
    move_clock();
    timers_.advance(now_ms_);
  }
  // The clock moves at once; timers fire at the end of the pass, after what the call brought
  // was handled, as on the event loops.
  void on_wake(ThreadConnection& conn) override {
    move_clock();
    observe_owner(conn);
  }
  void move_clock() override {
    now_ms_ = core::monotonic_ms();
    timers_.set_now(now_ms_);
  }
  void observe_owner(ThreadConnection& conn);
  void on_input_paused() override { counters_.input_pauses.add(); }
  void on_stash_overflow() override { counters_.stash_overflows.add(); }

  ThreadsLoop& owner_;
  LoopCounters& counters_;
  SharedLog& log_;
  std::uint64_t now_ms_;
  core::TimerWheel timers_;
  core::ChunkPool chunks_;
  ResponseSlotPool slots_;
  epoll::RecvBuffers buffers_;
  epoll::EpollFiles files_;
  std::unique_ptr<ProtocolFactory> protocols_;
  pthread_t thread_{};
  bool started_ = false;
  int first_fd_ = -1;
  std::uint64_t next_id_ = 1;
  std::int64_t recv_timeout_ms_ = 0;  // SO_RCVTIMEO on the current socket; 0: none
  bool shut_down_ = false;            // the current connection was told of the stop
  bool cut_ = false;                  // the current connection was cut (the grace period ended)
  std::atomic<std::uint32_t> seen_{0};
};

void Worker::run() {
  protocols_ = owner_.context().make_protocols(*this);
  int fd = first_fd_;
  do {
    serve(fd);
    update_gauges();  // the connection's chunks went back with it
  } while (owner_.wait_for_connection(*this, fd));
  protocols_.reset();
}

// One connection, start to close: each pass does what is due (redelivered input, settle and a
// blocking send, file results, the log), then waits in recv (or sleeps) until input or the
// next timer, then fires timers.
void Worker::serve(int fd) {
  ThreadConnection conn(fd, next_id_++, *this, slots_, owner_.config().limits, *this, buffers_,
                        counters_, *this);
  note_connection_opened(counters_);
  set_socket_timeout(fd, SO_SNDTIMEO, kSendSliceMs);
  recv_timeout_ms_ = 0;
  shut_down_ = false;
  cut_ = false;
  refresh();  // the worker may have been idle: the connection's first timers count from now
  conn.attach_protocol(protocols_->open(conn));
  for (;;) {
    const bool redeliver = conn.wants_redeliver();
    const bool settle = conn.wants_settle();
    conn.clear_wants();
    if (redeliver) conn.redeliver_stash();
    if (settle) {
      conn.settle_now();
      conn.send_pending();  // blocks for at most kSendSliceMs without progress
    }
    files_.deliver_posted();
    log_.flush();
    update_gauges();
    if (conn.closed() && !conn.wants_settle()) {
      conn.settle_now();  // the protocol hears of the close
      break;
    }
    observe_owner(conn);
    if (!conn.wants_settle() && !conn.wants_redeliver() && !files_.has_posted() && !cut_) {
      wait_for_input_or_timer(conn);
    }
    // Stashed input waiting to be handed back arrived before any deadline now due: it goes to
    // the protocol (at the top of the next pass) before timers fire.
    move_clock();
    if (!conn.wants_redeliver()) timers_.advance(now_ms_);
  }
  refresh();
  counters_.closed.add();
  counters_.connections_open.dec();
  // Its place under the cap is given back once this worker is idle (wait_for_connection), so
  // the next client finds a thread waiting instead of making one more.
}

// Acts on the owner's stop flags, once each per connection, then acknowledges them. The flags
// are read before the acknowledgement: a notice sent after this load is acted on at the next
// pass, and the owner interrupts until it is acknowledged.
void Worker::observe_owner(ThreadConnection& conn) {
  const std::uint32_t notice = owner_.notice();
  if (owner_.cut() && !cut_) {
    cut_ = true;
    conn.abort();
  } else if (owner_.stopping() && !shut_down_) {
    shut_down_ = true;
    conn.shutdown();
  }
  seen_.store(notice, std::memory_order_release);
}

void Worker::wait_for_input_or_timer(ThreadConnection& conn) {
  std::int64_t timeout_ms = -1;  // no timer: wait for input (or a stop) alone
  if (auto next = timers_.next_expiry_ms()) {
    timeout_ms = static_cast<std::int64_t>(*next > now_ms_ ? *next - now_ms_ : 0);
    if (timeout_ms == 0) return;  // a timer is due now
  }
  // No free buffer (answers still pending hold them all): nothing could be read into; a
  // timer releases them.
  if (conn.receiving() && !conn.transport_closed() && buffers_.available() > 0) {
    // The socket timeout is the next timer. It changes only when the deadline moved by more
    // than a millisecond, so a keep-alive connection re-arming the same idle timeout costs no
    // setsockopt per request.
    const std::int64_t want = timeout_ms < 0 ? 0 : timeout_ms;
    if (want == 0 ? recv_timeout_ms_ != 0
                  : (recv_timeout_ms_ == 0 || want < recv_timeout_ms_ - 1 ||
                     want > recv_timeout_ms_ + 1)) {
      set_socket_timeout(conn.fd(), SO_RCVTIMEO, want);
      recv_timeout_ms_ = want;
    }
    conn.receive();  // returns with input, at the timeout (a timer is due) or on a stop
    return;
  }
  // Nothing to read (input paused, ended, or every buffer held by a pending answer): sleep
  // until the next timer. A pending GET /delay keeps its thread here.
  ::poll(nullptr, 0, static_cast<int>(std::min<std::int64_t>(timeout_ms, INT32_MAX)));
}

ThreadsLoop::ThreadsLoop(const LoopConfig& config, LoopContext& context)
    : config_(config), context_(context), counters_(*context.counters) {
  listen_fd_ = std::exchange(context.listen_fd, -1);
  idle_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (idle_fd_ < 0) {
    const int error = errno;
    ::close(listen_fd_);
    throw std::system_error(error, std::generic_category(), "eventfd");
  }
  struct sigaction action {};
  action.sa_handler = &on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: blocked calls return EINTR
  ::sigaction(SIGUSR1, &action, nullptr);
  log_ = std::make_unique<SharedLog>(counters_, config_);
}

ThreadsLoop::~ThreadsLoop() {
  // After run() returned busy_ is 0. After it threw, workers may still serve: cut them off
  // (interrupting until each has noticed) before joining.
  if (!cut()) {
    stopping_.store(true, std::memory_order_release);
    cut_.store(true, std::memory_order_release);
    notice_.fetch_add(1, std::memory_order_acq_rel);
  }
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (busy_ == 0) break;
    }
    interrupt_workers();
    ::poll(nullptr, 0, kStopPollMs);
  }
  {
    std::lock_guard lock(mutex_);
    exit_workers_ = true;
    for (auto& w : workers_)
      w->wake.notify_one();
  }
  for (auto& w : workers_)
    w->join();
  workers_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  ::close(idle_fd_);
}

void ThreadsLoop::run() {
  const ConnectionCap& cap = *context_.cap;
  std::uint64_t grace_deadline = 0;
  for (;;) {
    pollfd fds[4];
    nfds_t n = 0;
    fds[n++] = {context_.wake_fd, POLLIN, 0};
    fds[n++] = {idle_fd_, POLLIN, 0};
    const nfds_t signal_at = context_.signal_fd >= 0 ? n : 0;
    if (context_.signal_fd >= 0) fds[n++] = {context_.signal_fd, POLLIN, 0};
    // At the cap the listener is left alone: clients wait in the backlog until a worker is
    // free, and an idle worker says so through idle_fd_.
    const bool accepting = !stopping() && listen_fd_ >= 0 && !cap.full() &&
                           core::monotonic_ms() >= accept_paused_until_;
    const nfds_t listen_at = accepting ? n : 0;
    if (accepting) fds[n++] = {listen_fd_, POLLIN, 0};
    int timeout = -1;
    if (stopping()) {
      timeout = kStopPollMs;
    } else if (accept_paused_until_ != 0) {
      const std::uint64_t now = core::monotonic_ms();
      timeout = now >= accept_paused_until_ ? 0 : static_cast<int>(accept_paused_until_ - now);
      if (now >= accept_paused_until_) accept_paused_until_ = 0;
    }
    const int ready = ::poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    counters_.enter_calls.add();
    counters_.loop_turns.add();
    if (ready > 0) {
      if ((fds[0].revents & POLLIN) != 0) take_messages();
      if ((fds[1].revents & POLLIN) != 0) {
        std::uint64_t value = 0;
        [[maybe_unused]] auto r = ::read(idle_fd_, &value, sizeof(value));
      }
      if (signal_at != 0 && (fds[signal_at].revents & POLLIN) != 0) {
        signalfd_siginfo info{};
        if (::read(context_.signal_fd, &info, sizeof(info)) == sizeof(info)) {
          handle_loop_signal(context_, info.ssi_signo);
        }
      }
      if (listen_at != 0 && (fds[listen_at].revents & POLLIN) != 0 && !stopping()) {
        accept_ready();
      }
    }
    if (!stopping()) continue;
    if (grace_deadline == 0) grace_deadline = core::monotonic_ms() + config_.grace_ms;
    {
      std::lock_guard lock(mutex_);
      if (busy_ == 0) {
        log_->flush();  // what the last workers logged reaches the file before the exit
        break;
      }
    }
    if (!cut() && core::monotonic_ms() >= grace_deadline) {
      cut_.store(true, std::memory_order_release);
      notice_.fetch_add(1, std::memory_order_acq_rel);
      log_->abandon();  // lines the disk has not taken by now are dropped and counted
    }
    interrupt_workers();
  }
}

void ThreadsLoop::pause_accepting() {
  counters_.accept_pauses.add();
  accept_paused_until_ = core::monotonic_ms() + config_.accept_retry_ms;
}

void ThreadsLoop::take_messages() {
  std::uint64_t value = 0;
  [[maybe_unused]] auto r = ::read(context_.wake_fd, &value, sizeof(value));
  // Senders set their bits before writing the eventfd, and the eventfd was read first.
  const std::uint32_t messages = context_.messages.exchange(0, std::memory_order_acquire);
  if ((messages & loop_message::kStop) != 0) begin_stop();
  if ((messages & loop_message::kReopenLogs) != 0) log_->reopen();
}

void ThreadsLoop::accept_ready() {
  ConnectionCap& cap = *context_.cap;
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (!cap.try_acquire()) {
      counters_.accept_pauses.add();
      return;
    }
    // Blocking, unlike the listener: the worker waits in recv and send.
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      cap.release();
      if (error == EAGAIN || error == EINTR) return;
      if (error == ECONNABORTED || error == EPROTO) continue;
      counters_.accept_errors.add();
      // Out of descriptors or memory: the listener stays out of poll for a while instead of
      // being reported (level-triggered) and failing again at once.
      core::log_warn("accept: {}; pausing accepts for {} ms", std::strerror(error),
                     config_.accept_retry_ms);
      pause_accepting();
      return;
    }
    hand_over(fd);
  }
}

void ThreadsLoop::hand_over(int fd) {
  std::unique_lock lock(mutex_);
  if (!idle_.empty()) {
    Worker* w = idle_.back();
    idle_.pop_back();
    w->next_fd = fd;
    w->busy = true;
    ++busy_;
    w->wake.notify_one();
    return;
  }
  // In the list before its thread runs, so nothing can leave a running thread unowned.
  workers_.push_back(std::make_unique<Worker>(*this, context_.add_counters(), *log_));
  Worker* worker = workers_.back().get();
  if (const int rc = worker->start(fd); rc != 0) {
    // Out of threads (RLIMIT_NPROC, a container's pids limit, memory): this client is closed,
    // and the next ones wait in the backlog for a while rather than be accepted and dropped.
    workers_.pop_back();
    lock.unlock();
    core::log_warn("no thread for a new connection: {}; pausing accepts for {} ms",
                   std::strerror(rc), config_.accept_retry_ms);
    ::close(fd);
    context_.cap->release();
    counters_.rejected_over_cap.add();
    pause_accepting();
    return;
  }
  worker->busy = true;
  ++busy_;
}

bool ThreadsLoop::wait_for_connection(Worker& worker, int& fd) {
  std::unique_lock lock(mutex_);
  worker.busy = false;
  --busy_;
  idle_.push_back(&worker);
  context_.cap->release();
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(idle_fd_, &one, sizeof(one));
  worker.wake.wait(lock, [&] { return worker.next_fd >= 0 || exit_workers_; });
  if (worker.next_fd < 0) return false;
  fd = std::exchange(worker.next_fd, -1);
  return true;
}

void ThreadsLoop::begin_stop() {
  if (stopping()) return;
  stopping_.store(true, std::memory_order_release);
  notice_.fetch_add(1, std::memory_order_acq_rel);
  if (listen_fd_ >= 0) ::close(std::exchange(listen_fd_, -1));
  interrupt_workers();
}

// Workers blocked in recv, send or a sleep do not see a flag change: interrupt each busy one
// until it has acknowledged the latest notice.
void ThreadsLoop::interrupt_workers() {
  const std::uint32_t notice = notice_.load(std::memory_order_acquire);
  std::lock_guard lock(mutex_);
  for (auto& w : workers_) {
    if (w->busy && w->seen() != notice) w->interrupt();
  }
}

}  // namespace rs::net::threads
