#include "net/epoll/epoll_poller.hpp"

#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "core/log.hpp"
#include "net/loop/event_loop.hpp"
#include "net/loop/loop_support.hpp"

namespace rs::net {
// The loop of this backend is compiled once, here.
template class EventLoop<epoll::EpollPoller>;
}  // namespace rs::net

namespace rs::net::epoll {

EpollPoller::EpollPoller(EventLoop<EpollPoller>& loop, const EpollOptions& /*options*/,
                         std::vector<ListenSocket>& listeners)
    : loop_(loop),
      counters_(loop.counters()),
      buffers_(loop.config().buffer_count, loop.config().buffer_size),
      log_(loop.timers(), counters_, loop.config().access_log_path,
           loop.config().access_log_max_buffered_bytes),
      files_(loop.chunks()) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  bind<&EpollPoller::on_wake_ready>(wake_watch_, this);
  bind<&EpollPoller::on_signal_ready>(signal_watch_, this);
  const LoopContext& context = loop.context();
  if (!watch(context.wake_fd, wake_watch_, EPOLLIN, false) ||
      (context.signal_fd >= 0 && !watch(context.signal_fd, signal_watch_, EPOLLIN, false))) {
    const int error = errno;
    ::close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "epoll_ctl");
  }
  try {
    listeners_.reserve(listeners.size());
  } catch (...) {
    ::close(epoll_fd_);
    throw;
  }
  // Taken once nothing else can fail.
  for (ListenSocket& socket : listeners) {
    Listener& listener = listeners_.emplace_back();
    listener.poller = this;
    listener.socket = std::exchange(socket, ListenSocket{});
    bind<&Listener::on_ready>(listener.watch, &listener);
  }
  listeners.clear();
}

EpollPoller::~EpollPoller() {
  for (const Listener& listener : listeners_) {
    if (listener.socket.fd >= 0) ::close(listener.socket.fd);
  }
  ::close(epoll_fd_);
}

bool EpollPoller::watch(int fd, Watch& w, std::uint32_t events, bool modify) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &w;
  if (::epoll_ctl(epoll_fd_, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0) return true;
  const int error = errno;
  if (!watch_error_reported_) {
    watch_error_reported_ = true;
    core::log_error("epoll_ctl: {}; the connection is closed (raise fs.epoll.max_user_watches?)",
                    std::strerror(error));
  }
  errno = error;  // for the caller, whatever logging did to it
  return false;
}

// Interest changes of the whole turn, once each: a connection that stopped reading and closed
// within the turn never costs an epoll_ctl. Applied before the wait, or a socket nobody reads
// would be reported again (level-triggered).
void EpollPoller::end_turn() {
  while (EpollConnection* conn = interest_.pop_front())
    conn->apply_interest();
}

void EpollPoller::wait(std::optional<std::uint64_t> timeout_ms) {
  const int timeout =
      timeout_ms ? static_cast<int>(std::min<std::uint64_t>(*timeout_ms, INT32_MAX)) : -1;
  ready_ = ::epoll_wait(epoll_fd_, events_.data(), kMaxEvents, timeout);
  counters_.wait_calls.add();
  if (ready_ < 0) {
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
    ready_ = 0;
  }
}

void EpollPoller::dispatch() {
  for (int i = 0; i < ready_; ++i) {
    Watch& w = *static_cast<Watch*>(events_[static_cast<std::size_t>(i)].data.ptr);
    w.ready(w, events_[static_cast<std::size_t>(i)].events);
  }
  ready_ = 0;
  files_.deliver_posted();
}

void EpollPoller::update_gauges(LoopCounters& counters) const {
  counters.buffers_held.set(buffers_.held());
}

void EpollPoller::interest_changed(EpollConnection& conn) {
  if (!conn.interest_node.linked()) interest_.push_back(conn);
}

void EpollPoller::retire(EpollConnection& conn) {
  if (conn.interest_node.linked()) interest_.remove(conn);
  loop_.retire(conn);
}

void EpollPoller::on_listener_ready(Listener& listener) {
  for (int i = 0; i < kAcceptBatch && accepting_; ++i) {
    const int fd = ::accept4(listener.socket.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ListenSocket accepted = listener.socket;
      accepted.fd = fd;
      loop_.on_accepted(accepted);  // at the cap, it stops accepting
      continue;
    }
    const int error = errno;
    if (error == EAGAIN || error == EINTR) return;
    if (error == ECONNABORTED || error == EPROTO) continue;  // that client is gone
    counters_.accept_errors.add();
    loop_.on_accept_exhausted(error);
    return;
  }
}

void EpollPoller::set_accepting(bool on) {
  if (on == accepting_ || listeners_.empty() || listeners_.front().socket.fd < 0) return;
  if (!on) {
    accepting_ = false;
    counters_.accept_pauses.add();
    for (const Listener& listener : listeners_)
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listener.socket.fd, nullptr);
    return;
  }
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    Listener& listener = listeners_[i];
    if (!watch(listener.socket.fd, listener.watch, EPOLLIN, false)) {
      for (std::size_t j = 0; j < i; ++j)  // all or none: the pause above takes them all out
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listeners_[j].socket.fd, nullptr);
      loop_.retry_accepting_later();  // not given up (watch() said why)
      return;
    }
  }
  accepting_ = true;
  counters_.accept_rearms.add();
}

void EpollPoller::stop_accepting() {
  for (Listener& listener : listeners_) {
    if (listener.socket.fd < 0) continue;
    // Out of the set first: a socket another process or loop still holds (systemd's, or the
    // dup() each loop has of an inherited one) outlives this close, and its registration with
    // it, which would report a waiting client for ever and spin the loop through its grace.
    if (accepting_) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listener.socket.fd, nullptr);
    ::close(std::exchange(listener.socket.fd, -1));
  }
  accepting_ = false;
}

void EpollPoller::on_wake_ready(std::uint32_t /*events*/) {
  std::uint64_t value = 0;
  const ssize_t n = ::read(loop_.context().wake_fd, &value, sizeof(value));
  if (n < 0 && errno != EAGAIN && errno != EINTR) {
    core::log_error("eventfd read failed: {}; stopping this loop", std::strerror(errno));
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, loop_.context().wake_fd, nullptr);
    loop_.begin_stop();
    return;
  }
  loop_.take_messages();
}

void EpollPoller::on_signal_ready(std::uint32_t /*events*/) {
  signalfd_siginfo info{};
  const int signal_fd = loop_.context().signal_fd;
  const ssize_t n = ::read(signal_fd, &info, sizeof(info));
  if (n == static_cast<ssize_t>(sizeof(info))) {
    handle_loop_signal(loop_.context(), info.ssi_signo);
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    core::log_error("signalfd read failed: {}; signals are no longer handled",
                    std::strerror(errno));
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, signal_fd, nullptr);
  }
}

}  // namespace rs::net::epoll
