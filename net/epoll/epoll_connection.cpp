#include "net/epoll/epoll_connection.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "net/epoll/epoll_poller.hpp"

namespace rs::net::epoll {

EpollConnection::EpollConnection(EpollPoller& poller, ConnectionContext& context, int fd,
                                 std::uint64_t id)
    : DrivenConnection(fd, id, context), poller_(poller) {
  bind<&EpollConnection::on_ready>(watch_, this);
}

void EpollConnection::set_receiving(bool on) {
  if (!on) starved_ = false;  // the connection left the starved list too
  update_interest();
}

// Level-triggered: the kernel reports a socket as long as it is readable (or writable), so
// one recv per report never misses data and never costs a recv that is known to return EAGAIN,
// which edge-triggered mode needs to learn that the socket is drained. The price is an
// epoll_ctl whenever the interest changes: pause and resume (rare), and EPOLLOUT, which is in
// the set only while a send could not finish.
std::uint32_t EpollConnection::wanted_events() const {
  std::uint32_t want = 0;
  if (receiving_wanted() && !starved_) want |= EPOLLIN;
  // Paused: the peer's FIN behind the unread bytes is still worth knowing (it may have gone).
  if (watching_hangup()) want |= EPOLLRDHUP;
  if (write_blocked_) want |= EPOLLOUT;
  return want;
}

// Only noted here; the loop applies the turn's changes together (apply_interest).
void EpollConnection::update_interest() {
  if (!transport_closed_) poller_.interest_changed(*this);
}

void EpollConnection::apply_interest() {
  if (transport_closed_) return;
  const std::uint32_t want = wanted_events();
  if (want == registered_ && (in_epoll_ || want == 0)) return;
  if (!poller_.watch(fd(), watch_, want, in_epoll_)) {
    abort();  // the epoll set is full (max_user_watches): logged by the loop
    return;
  }
  // Reading again after a pause: the readiness model's counterpart of re-arming a receive.
  if (in_epoll_ && (want & ~registered_ & EPOLLIN) != 0) poller_.counters().recv_rearms.add();
  in_epoll_ = true;
  registered_ = want;
}

void EpollConnection::on_ready(std::uint32_t events) {
  if (transport_closed_) return;
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0 && write_blocked_) {
    write_blocked_ = false;
    if (!send_pending()) flush();  // EINTR: settle, and send again, at the end of the turn
    if (transport_closed_) return;
  }
  // What this turn wants, not what the kernel was last told: a pause decided earlier in the
  // turn holds even though the kernel still reports the socket.
  if ((wanted_events() & EPOLLIN) != 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
    receive();  // an error or the end of input comes back from recv itself
  } else if ((events & EPOLLRDHUP) != 0 && watching_hangup()) {
    deliver_hangup();  // the interest drops EPOLLRDHUP: reported once
  } else if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
    // Not reading, and the peer reset the connection (or both directions are shut): reported
    // again every turn (level-triggered) until the descriptor goes.
    poller_.counters().recv_errors.add();
    abort();
  }
}

void EpollConnection::receive() {
  sync::RecvBuffers& buffers = poller_.buffers();
  LoopCounters& counters = poller_.counters();
  const std::uint32_t id = buffers.acquire();
  if (id == sync::RecvBuffers::kNone) {
    // Every buffer is held by a pending answer: stop asking until one comes back, or the
    // readable socket would be reported (and skipped) on every turn.
    counters.enobufs.add();
    starved_ = true;
    turn().wait_for_buffers(*this);
    update_interest();
    return;
  }
  const std::span<std::byte> room = buffers.bytes(id);
  const ssize_t n = ::recv(fd(), room.data(), room.size(), 0);
  counters.recv_calls.add();
  if (n > 0) {
    counters.recv_completions.add();
    counters.bytes_in.add(static_cast<std::uint64_t>(n));
    // The handler borrows the buffer; it is free again when the last hold is released.
    deliver(room.first(static_cast<std::size_t>(n)), &buffers, id);
    buffers.release_buffer(id);
    return;
  }
  const int error = errno;
  buffers.release_buffer(id);
  if (n == 0) {
    deliver_end();
  } else if (error != EAGAIN && error != EINTR) {
    counters.recv_errors.add();
    abort();
  }
}

void EpollConnection::buffers_returned() {
  starved_ = false;
  update_interest();
}

bool EpollConnection::send_pending() {
  core::BufferChain& out = pending_output();
  if (write_blocked_ || transport_closed_ || out.empty()) return false;
  // One sendmsg over the front of the chain; what the kernel did not take stays queued. The
  // iovec array is on the stack: the kernel is done with it when sendmsg returns, so an idle
  // connection does not carry one.
  iovec iov[kMaxIov];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = out.gather(iov, kMaxIov);
  std::size_t gathered = 0;
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i)
    gathered += iov[i].iov_len;
  const ssize_t n = ::sendmsg(fd(), &msg, MSG_NOSIGNAL);
  LoopCounters& counters = poller_.counters();
  counters.send_calls.add();
  if (n < 0) {
    if (errno == EAGAIN) {
      write_blocked_ = true;
      update_interest();
    } else if (errno != EINTR) {  // EINTR: settling puts it back for the next turn
      // EPIPE, ECONNRESET: the peer is gone; nothing queued can be delivered.
      counters.send_errors.add();
      abort();
    }
    return false;
  }
  // A short send means the socket buffer is full: the rest goes when EPOLLOUT says so.
  write_blocked_ = static_cast<std::size_t>(n) < gathered;
  update_interest();
  counters.bytes_out.add(static_cast<std::uint64_t>(n));
  output_sent(static_cast<std::size_t>(n));
  return true;
}

void EpollConnection::close_transport() {
  // Closing the descriptor also takes it out of the epoll set (it was never duplicated).
  ::close(fd());
  transport_closed_ = true;
  starved_ = false;
  poller_.retire(*this);
}

void EpollConnection::shutdown_write() {
  ::shutdown(fd(), SHUT_WR);
}

}  // namespace rs::net::epoll
