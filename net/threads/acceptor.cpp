#include "net/threads/acceptor.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <exception>
#include <system_error>
#include <utility>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "net/loop/log_file.hpp"
#include "net/loop/loop_support.hpp"
#include "net/threads/shared_log.hpp"

namespace rs::net::threads {

namespace {

// While stopping, workers that have not noticed yet are interrupted again this often.
constexpr int kStopPollMs = 50;

// SIGUSR1 interrupts a worker's blocking recv, send or sleep (no SA_RESTART): the worker then
// looks at the stop flags. The handler itself does nothing.
void on_interrupt(int /*signo*/) {}

}  // namespace

Acceptor::Acceptor(const LoopConfig& config, LoopContext& context)
    : config_(config), context_(context), counters_(*context.counters) {
  // What may fail comes first: the listener is taken (and closed by us) only once nothing can.
  log_ = std::make_unique<SharedLog>(counters_, config_);
  idle_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (idle_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  struct sigaction action {};
  action.sa_handler = &on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: blocked calls return EINTR
  ::sigaction(SIGUSR1, &action, nullptr);
  listeners_ = std::exchange(context.listeners, {});
  // glibc reads the time zone file at the process's first time conversion (a Date header) and
  // keeps what it read: here, so that it is not the first worker's thread that allocates it.
  ::tzset();
}

Acceptor::~Acceptor() {
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
  collect_ended();  // those that ended on their own are joined and counted as such
  {
    std::lock_guard lock(mutex_);
    exit_workers_ = true;
    for (auto& w : workers_)
      w->wake.notify_one();
  }
  // Without the mutex, which the workers take on their way out.
  for (auto& w : workers_)
    w->join();
  idle_.clear();
  ended_.clear();
  workers_.clear();
  counters_.worker_threads.set(0);
  close_listeners();
  ::close(idle_fd_);
}

void Acceptor::run() {
  const ConnectionCap& cap = *context_.cap;
  std::uint64_t grace_deadline = 0;
  for (;;) {
    pollfd fds[3 + kMaxListeners];
    nfds_t n = 0;
    fds[n++] = {context_.wake_fd, POLLIN, 0};
    fds[n++] = {idle_fd_, POLLIN, 0};
    const nfds_t signal_at = context_.signal_fd >= 0 ? n : 0;
    if (context_.signal_fd >= 0) fds[n++] = {context_.signal_fd, POLLIN, 0};
    // At the cap the listener is left alone: clients wait in the backlog until a worker is
    // free, and an idle worker says so through idle_fd_.
    const bool accepting = !stopping() && !listeners_.empty() && listeners_.front().fd >= 0 &&
                           !cap.full() && core::monotonic_ms() >= accept_paused_until_;
    const nfds_t listen_at = accepting ? n : 0;
    if (accepting) {
      for (const ListenSocket& listener : listeners_)
        fds[n++] = {listener.fd, POLLIN, 0};
    }
    int timeout = -1;
    if (stopping()) {
      timeout = kStopPollMs;
    } else if (accept_paused_until_ != 0) {
      const std::uint64_t now = core::monotonic_ms();
      timeout = now >= accept_paused_until_ ? 0 : static_cast<int>(accept_paused_until_ - now);
      if (now >= accept_paused_until_) accept_paused_until_ = 0;
    }
    // Lines wait after a failed write (a full disk): the acceptor retries them, since no
    // worker may have lines to hand over for a long time.
    constexpr int kLogRetryMs = static_cast<int>(LogFile::kRetryMs);
    if (log_->backlogged() && (timeout < 0 || timeout > kLogRetryMs)) timeout = kLogRetryMs;
    const int ready = ::poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    counters_.wait_calls.add();
    if (ready > 0) {
      if ((fds[0].revents & POLLIN) != 0) take_messages();
      if ((fds[1].revents & POLLIN) != 0) {
        std::uint64_t value = 0;
        [[maybe_unused]] auto r = ::read(idle_fd_, &value, sizeof(value));
        collect_ended();
      }
      if (signal_at != 0 && (fds[signal_at].revents & POLLIN) != 0) {
        signalfd_siginfo info{};
        if (::read(context_.signal_fd, &info, sizeof(info)) == sizeof(info)) {
          handle_loop_signal(context_, info.ssi_signo);
        }
      }
      // Until accepting pauses (an error, no thread to be had) or the cap is reached.
      for (std::size_t i = 0; listen_at != 0 && i < listeners_.size() && !stopping() &&
                              accept_paused_until_ == 0 && !cap.full();
           ++i) {
        if ((fds[listen_at + i].revents & POLLIN) != 0) accept_ready(listeners_[i]);
      }
    }
    if (log_->backlogged()) log_->flush();
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

void Acceptor::pause_accepting() {
  counters_.accept_pauses.add();
  accept_paused_until_ = core::monotonic_ms() + config_.accept_retry_ms;
}

void Acceptor::take_messages() {
  std::uint64_t value = 0;
  [[maybe_unused]] auto r = ::read(context_.wake_fd, &value, sizeof(value));
  const std::uint32_t messages = net::take_messages(context_);
  if ((messages & loop_message::kStop) != 0) begin_stop();
  if ((messages & loop_message::kReopenLogs) != 0) log_->reopen();
}

void Acceptor::accept_ready(const ListenSocket& listener) {
  ConnectionCap& cap = *context_.cap;
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (!cap.try_acquire()) {
      counters_.accept_pauses.add();
      return;
    }
    // Blocking, unlike the listener: the worker waits in recv and send.
    const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
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
    ListenSocket accepted = listener;
    accepted.fd = fd;
    hand_over(accepted);
    if (accept_paused_until_ != 0) return;  // refused: no worker could be had
  }
}

void Acceptor::hand_over(ListenSocket accepted) {
  const int fd = accepted.fd;
  {
    std::lock_guard lock(mutex_);
    if (Worker* w = idle_.pop_back()) {
      w->next = accepted;
      w->busy = true;
      ++busy_;
      w->wake.notify_one();
      return;
    }
  }
  // None waits: a new worker, made here on the acceptor's thread with everything it holds
  // (net/threads/worker.hpp), and without the mutex, which workers take to go idle while this
  // may wait for others' locks (the HTTP counters', held by a /metrics that sums them). Only
  // this thread makes workers: a worker that went idle meanwhile waits for the next client.
  std::unique_ptr<Worker> made;
  LoopCounters* counters = nullptr;
  try {
    counters = &counters_for_worker();
    made = std::make_unique<Worker>(*this, *counters, *log_);
    if (workers_.size() == workers_.capacity()) {
      workers_.reserve(std::max<std::size_t>(2 * workers_.capacity(), 8));
    }
  } catch (const std::exception& e) {
    made.reset();
    if (counters != nullptr) give_back(*counters);
    core::log_warn("no worker for a new connection: {}; pausing accepts for {} ms", e.what(),
                   config_.accept_retry_ms);
    refuse(fd);
    return;
  }
  Worker* worker = made.get();
  {
    // In the list before its thread runs, so nothing can leave a running thread unowned; busy
    // before it can go idle.
    std::lock_guard lock(mutex_);
    worker->place = workers_.size();
    workers_.push_back(std::move(made));  // reserved above: no allocation, no throw
    worker->busy = true;
    ++busy_;
  }
  // Before the thread runs, so that what it answers (GET /metrics) counts it.
  counters_.worker_threads.set(static_cast<std::int64_t>(workers_.size()));
  if (const int rc = worker->start(accepted); rc != 0) {
    // Out of threads (RLIMIT_NPROC, a container's pids limit, memory).
    {
      std::lock_guard lock(mutex_);
      worker->busy = false;
      --busy_;
    }
    remove_worker(*worker);
    counters_.worker_threads.set(static_cast<std::int64_t>(workers_.size()));
    core::log_warn("no thread for a new connection: {}; pausing accepts for {} ms",
                   std::strerror(rc), config_.accept_retry_ms);
    refuse(fd);
  }
}

// A client no worker can take is closed, and the next ones wait in the backlog for a while
// rather than be accepted and dropped.
void Acceptor::refuse(int fd) {
  ::close(fd);
  context_.cap->release();
  counters_.rejected_over_cap.add();
  pause_accepting();
}

LoopCounters& Acceptor::counters_for_worker() {
  if (spare_counters_.empty()) {
    // Room for every set to come back first, so that giving one back (in the destructor too)
    // never allocates.
    if (spare_counters_.capacity() <= counter_sets_) {
      spare_counters_.reserve(std::max<std::size_t>(2 * counter_sets_, 8));
    }
    LoopCounters& counters = context_.add_counters();
    ++counter_sets_;
    return counters;
  }
  LoopCounters& counters = *spare_counters_.back();
  spare_counters_.pop_back();
  return counters;
}

void Acceptor::give_back(LoopCounters& counters) {
  spare_counters_.push_back(&counters);
}

// The worker's thread is not running (never started, or joined). Its counters stay in the sums
// /metrics shows and serve the next new worker; its pools are gone.
void Acceptor::remove_worker(Worker& worker) {
  LoopCounters& counters = worker.counters();
  const std::size_t place = worker.place;
  if (place + 1 != workers_.size()) {
    workers_[place] = std::move(workers_.back());
    workers_[place]->place = place;
  }
  workers_.pop_back();  // frees the worker: on this thread, the one its memory came from
  give_back(counters);
}

void Acceptor::collect_ended() {
  core::IntrusiveList<Worker, &Worker::idle_node> ended;
  {
    std::lock_guard lock(mutex_);
    ended.splice_back(ended_);
  }
  if (ended.empty()) return;
  // Without the mutex: an ended worker no longer takes it, but its thread may still be on its
  // way out.
  while (Worker* w = ended.pop_front()) {
    w->join();
    remove_worker(*w);
    counters_.worker_threads_reaped.add();
  }
  counters_.worker_threads.set(static_cast<std::int64_t>(workers_.size()));
}

bool Acceptor::wait_for_connection(Worker& worker, ListenSocket& accepted) {
  std::unique_lock lock(mutex_);
  worker.busy = false;
  --busy_;
  idle_.push_back(worker);
  context_.cap->release();
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(idle_fd_, &one, sizeof(one));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.thread_idle_timeout_ms);
  if (!worker.wake.wait_until(lock, deadline,
                              [&] { return worker.next.fd >= 0 || exit_workers_; })) {
    // Idle too long: the worker leaves the idle list (no connection can be handed to it now)
    // and ends; the acceptor joins it and frees what it held.
    idle_.remove(worker);
    ended_.push_back(worker);
    [[maybe_unused]] auto w = ::write(idle_fd_, &one, sizeof(one));
    return false;
  }
  if (worker.next.fd < 0) return false;
  accepted = std::exchange(worker.next, ListenSocket{});
  return true;
}

void Acceptor::begin_stop() {
  if (stopping()) return;
  stopping_.store(true, std::memory_order_release);
  notice_.fetch_add(1, std::memory_order_acq_rel);
  close_listeners();
  interrupt_workers();
}

void Acceptor::close_listeners() {
  for (ListenSocket& listener : listeners_) {
    if (listener.fd >= 0) ::close(std::exchange(listener.fd, -1));
  }
}

// Workers blocked in recv, send or a sleep do not see a flag change: interrupt each busy one
// until it has acknowledged the latest notice.
void Acceptor::interrupt_workers() {
  const std::uint32_t notice = notice_.load(std::memory_order_acquire);
  std::lock_guard lock(mutex_);
  for (auto& w : workers_) {
    if (w->busy && w->seen() != notice) w->interrupt();
  }
}

}  // namespace rs::net::threads
