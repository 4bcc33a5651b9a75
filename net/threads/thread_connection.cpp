#include "net/threads/thread_connection.hpp"

#include <unistd.h>

#include <cerrno>

#include "core/clock.hpp"

namespace rs::net::threads {

ThreadConnection::ThreadConnection(ConnectionContext& context, int fd, std::uint64_t id,
                                   sync::RecvBuffers& buffers, WorkerWake& wake)
    : DrivenConnection(fd, id, context), buffers_(buffers), wake_(wake) {
  msg_.msg_iov = iov_;
}

bool ThreadConnection::receive() {
  const std::uint32_t id = buffers_.acquire();
  if (id == sync::RecvBuffers::kNone) {
    // Every buffer is held by answers still pending: they complete on a timer, which the
    // worker waits for instead of reading.
    counters().enobufs.add();
    return false;
  }
  const std::span<std::byte> room = buffers_.bytes(id);
  const ssize_t n = ::recv(fd(), room.data(), room.size(), 0);
  const int error = errno;
  // Before anything is counted: once bytes_in shows this input, the stop decision for it has
  // been made (tests wait on the counter, then stop).
  if (n >= 0) wake_.on_wake(*this);
  counters().recv_calls.add();
  if (n > 0) {
    counters().recv_completions.add();
    counters().bytes_in.add(static_cast<std::uint64_t>(n));
    if (transport_closed_) {  // the stop cut the connection: what came is dropped with it
      buffers_.release_buffer(id);
      return true;
    }
    deliver(room.first(static_cast<std::size_t>(n)), &buffers_, id);
    buffers_.release_buffer(id);
    return true;
  }
  buffers_.release_buffer(id);
  if (transport_closed_) return true;
  if (n == 0) {
    deliver_end();
    return true;
  }
  if (error == EAGAIN || error == EINTR) return false;  // the timeout (a timer is due) or stop
  counters().recv_errors.add();
  abort();
  return true;
}

bool ThreadConnection::send_pending() {
  core::BufferChain& out = pending_output();
  if (transport_closed_ || out.empty()) return false;
  msg_.msg_iovlen = out.gather(iov_, kMaxIov);
  const std::uint64_t before = core::monotonic_ms();
  const ssize_t n = ::sendmsg(fd(), &msg_, MSG_NOSIGNAL);
  const int error = errno;
  wake_.move_clock();
  note_blocked_send(services().now_ms() - before);
  counters().send_calls.add();
  if (n < 0) {
    // EAGAIN: SO_SNDTIMEO passed with nothing taken. The peer is not reading, and this thread
    // reads nothing while it sends: input is paused, as the event loops pause it above the
    // high-water mark. The worker runs its timers (--send-timeout-ms) and tries again.
    if (error == EAGAIN) {
      if (!stalled_) counters().input_pauses.add();
      stalled_ = true;
      return false;  // settling puts it back for the next pass, once the timers ran
    }
    if (error == EINTR) return false;
    counters().send_errors.add();
    abort();
    return false;
  }
  stalled_ = false;
  counters().bytes_out.add(static_cast<std::uint64_t>(n));
  output_sent(static_cast<std::size_t>(n));
  return true;
}

void ThreadConnection::close_transport() {
  transport_closed_ = true;
  receiving_ = false;
  ::close(fd());
}

void ThreadConnection::shutdown_write() {
  ::shutdown(fd(), SHUT_WR);
}

}  // namespace rs::net::threads
