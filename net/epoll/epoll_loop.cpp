#include "net/epoll/epoll_loop.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "net/loop_support.hpp"

namespace rs::net::epoll {

EpollLoop::EpollLoop(const LoopConfig& config, LoopContext& context)
    : config_(config),
      context_(context),
      counters_(*context.counters),
      now_ms_(core::monotonic_ms()),
      timers_(now_ms_),
      chunks_(config.chunk_bytes),
      buffers_(config.buffer_count, config.buffer_size),
      accept_retry_timer_(&EpollLoop::on_accept_retry, this),
      grace_timer_(&EpollLoop::on_grace_expired, this),
      log_(timers_, counters_, config.access_log_path, config.access_log_max_buffered_bytes),
      files_(chunks_) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  bind<&EpollLoop::on_listener_ready>(listen_watch_, this);
  bind<&EpollLoop::on_wake_ready>(wake_watch_, this);
  bind<&EpollLoop::on_signal_ready>(signal_watch_, this);
  listen_fd_ = std::exchange(context.listen_fd, -1);
  if (!watch(context_.wake_fd, wake_watch_, EPOLLIN, false) ||
      (context_.signal_fd >= 0 && !watch(context_.signal_fd, signal_watch_, EPOLLIN, false))) {
    const int error = errno;
    ::close(listen_fd_);
    ::close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "epoll_ctl");
  }
  protocols_ = context.make_protocols(*this);
}

EpollLoop::~EpollLoop() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  ::close(epoll_fd_);
}

bool EpollLoop::watch(int fd, Watch& w, std::uint32_t events, bool modify) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &w;
  if (::epoll_ctl(epoll_fd_, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0) return true;
  if (!watch_error_reported_) {
    watch_error_reported_ = true;
    core::log_error("epoll_ctl: {}; the connection is closed (raise fs.epoll.max_user_watches?)",
                    std::strerror(errno));
  }
  return false;
}

void EpollLoop::run() {
  resume_accepting();
  for (;;) {
    // Connections closed this turn are freed here, so whether the loop is done is known only
    // after it, before a wait that might have nothing left to wake it.
    end_of_turn();
    if (finished()) break;
    int timeout_ms = -1;
    if (has_work()) {
      timeout_ms = 0;
    } else if (auto next = timers_.next_expiry_ms()) {
      timeout_ms = static_cast<int>(
          std::min<std::uint64_t>(*next > now_ms_ ? *next - now_ms_ : 0, INT32_MAX));
    }
    const int n = ::epoll_wait(epoll_fd_, events_.data(), kMaxEvents, timeout_ms);
    counters_.enter_calls.add();
    if (n < 0 && errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    // The wheel's clock moves before any handler runs, so a timer armed by one counts from now;
    // timers fire after the events, so input that has arrived beats a deadline it met.
    now_ms_ = core::monotonic_ms();
    timers_.set_now(now_ms_);
    for (int i = 0; i < n; ++i) {
      Watch& w = *static_cast<Watch*>(events_[static_cast<std::size_t>(i)].data.ptr);
      w.ready(w, events_[static_cast<std::size_t>(i)].events);
    }
    files_.deliver_posted();
    timers_.advance(now_ms_);
    counters_.loop_turns.add();
  }
  update_gauges();
}

// Work that is already known: waiting in epoll_wait for it would only add latency.
bool EpollLoop::has_work() const {
  return !work_.dirty.empty() || !work_.resumed.empty() || files_.has_posted() || !retired_.empty();
}

void EpollLoop::end_of_turn() {
  // Redelivered input may produce output, so it runs before the sends. Each list is taken
  // whole first: what a pass adds (a protocol that pauses and resumes itself, output produced
  // as output drains) waits for the next turn, which then does not block.
  core::IntrusiveList<EpollConnection, &EpollConnection::resumed_node> resumed;
  resumed.splice_back(work_.resumed);
  while (EpollConnection* conn = resumed.pop_front())
    conn->redeliver_stash();
  core::IntrusiveList<EpollConnection, &EpollConnection::dirty_node> dirty;
  dirty.splice_back(work_.dirty);
  while (EpollConnection* conn = dirty.pop_front()) {
    // Send first: settling a connection that still has output queued and no send under way
    // would mark it dirty again and cost the next turn a needless epoll_wait(0).
    conn->send_pending();
    conn->settle_now();
  }
  // Let back in as many readers starved of buffers as there are buffers, oldest first.
  for (unsigned free = buffers_.available(); free > 0 && !work_.starved.empty(); --free) {
    work_.starved.pop_front()->buffers_returned();
  }
  log_.flush();
  // Interest changes of the whole turn, once each: a connection that stopped reading and
  // closed within the turn never costs an epoll_ctl. Applied before the wait, or a socket
  // nobody reads would be reported again (level-triggered).
  while (EpollConnection* conn = interest_.pop_front())
    conn->apply_interest();
  release_retired();
  update_gauges();
}

void EpollLoop::release_retired() {
  while (EpollConnection* conn = retired_.pop_front()) {
    conn->settle_now();  // the protocol hears of the close before the memory goes
    work_.forget(*conn);
    all_.remove(*conn);
    connections_.destroy(conn);
    note_connection_closed(counters_, *context_.cap);
  }
  if (paused_for_cap_ && !stopping_ && !context_.cap->full()) {
    paused_for_cap_ = false;
    timers_.cancel(accept_retry_timer_);
    resume_accepting();
  }
}

void EpollLoop::update_gauges() {
  counters_.pool_connections.set(static_cast<std::int64_t>(connections_.outstanding()));
  counters_.pool_chunks.set(static_cast<std::int64_t>(chunks_.outstanding()));
  counters_.pool_response_slots.set(static_cast<std::int64_t>(slots_.outstanding()));
  counters_.pool_files.set(static_cast<std::int64_t>(files_.open_files()));
  counters_.pool_grows.set(
      static_cast<std::int64_t>(chunks_.grows() + slots_.grows() + connections_.grows()));
  counters_.buffers_held.set(buffers_.held());
}

void EpollLoop::interest_changed(EpollConnection& conn) {
  if (!conn.interest_node.linked()) interest_.push_back(conn);
}

void EpollLoop::retire(EpollConnection& conn) {
  if (conn.interest_node.linked()) interest_.remove(conn);
  // Not freed now: later events of this turn's batch may still name it.
  if (!conn.retired_node.linked()) retired_.push_back(conn);
}

void EpollLoop::on_listener_ready(std::uint32_t /*events*/) {
  ConnectionCap& cap = *context_.cap;
  for (int i = 0; i < kAcceptBatch && accepting_; ++i) {
    // A place first: at the cap the client waits in the listen backlog, not accepted and
    // dropped.
    if (!cap.try_acquire()) {
      pause_accepting();
      paused_for_cap_ = true;  // a close here resumes; the timer covers other loops' closes
      timers_.arm(accept_retry_timer_, config_.accept_retry_ms);
      return;
    }
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      cap.release();
      if (error == EAGAIN || error == EINTR) return;
      if (error == ECONNABORTED || error == EPROTO) continue;  // that client is gone
      counters_.accept_errors.add();
      // Out of descriptors or memory: retrying at once would spin on the same error.
      core::log_warn("accept: {}; pausing accepts for {} ms", std::strerror(error),
                     config_.accept_retry_ms);
      pause_accepting();
      timers_.arm(accept_retry_timer_, config_.accept_retry_ms);
      return;
    }
    auto* conn = connections_.make(*this, fd, next_connection_id_++);
    all_.push_back(*conn);
    note_connection_opened(counters_);
    conn->attach_protocol(protocols_->open(*conn));
  }
}

void EpollLoop::pause_accepting() {
  if (!accepting_) return;
  accepting_ = false;
  counters_.accept_pauses.add();
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
}

void EpollLoop::resume_accepting() {
  if (accepting_ || stopping_ || listen_fd_ < 0) return;
  if (!watch(listen_fd_, listen_watch_, EPOLLIN, false)) {
    timers_.arm(accept_retry_timer_, config_.accept_retry_ms);  // try again, do not give up
    return;
  }
  accepting_ = true;
  counters_.accept_rearms.add();
}

void EpollLoop::on_accept_retry(core::Timer& timer) {
  auto& self = *static_cast<EpollLoop*>(timer.context());
  if (self.stopping_) return;
  if (self.context_.cap->full()) {
    self.timers_.arm(self.accept_retry_timer_, self.config_.accept_retry_ms);
    return;
  }
  self.paused_for_cap_ = false;
  self.resume_accepting();
}

void EpollLoop::on_wake_ready(std::uint32_t /*events*/) {
  std::uint64_t value = 0;
  const ssize_t n = ::read(context_.wake_fd, &value, sizeof(value));
  if (n < 0 && errno != EAGAIN && errno != EINTR) {
    core::log_error("eventfd read failed: {}; stopping this loop", std::strerror(errno));
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, context_.wake_fd, nullptr);
    begin_stop();
    return;
  }
  // Senders set their bits before writing the eventfd, and the eventfd was read before the
  // bits are taken, so no message is lost: one set after this exchange wakes us again.
  const std::uint32_t messages = context_.messages.exchange(0, std::memory_order_acquire);
  if ((messages & loop_message::kStop) != 0) begin_stop();
  if ((messages & loop_message::kReopenLogs) != 0) log_.reopen();
}

void EpollLoop::on_signal_ready(std::uint32_t /*events*/) {
  signalfd_siginfo info{};
  const ssize_t n = ::read(context_.signal_fd, &info, sizeof(info));
  if (n == static_cast<ssize_t>(sizeof(info))) {
    handle_loop_signal(context_, info.ssi_signo);
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    core::log_error("signalfd read failed: {}; signals are no longer handled",
                    std::strerror(errno));
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, context_.signal_fd, nullptr);
  }
}

void EpollLoop::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  accepting_ = false;
  if (listen_fd_ >= 0) ::close(std::exchange(listen_fd_, -1));
  timers_.cancel(accept_retry_timer_);
  shut_down_all(all_);
  timers_.arm(grace_timer_, config_.grace_ms);
}

void EpollLoop::on_grace_expired(core::Timer& timer) {
  auto& self = *static_cast<EpollLoop*>(timer.context());
  abort_all(self.all_);
  self.log_.abandon();  // lines the disk has not taken by now are dropped and counted
}

bool EpollLoop::finished() const {
  return stopping_ && connections_.outstanding() == 0 && files_.idle() && log_.idle();
}

}  // namespace rs::net::epoll
