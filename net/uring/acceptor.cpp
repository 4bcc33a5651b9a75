#include "net/uring/acceptor.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace rs::net::uring {

Acceptor::Acceptor(Ring& ring, ListenSocket listener, AcceptHandler& handler,
                   LoopCounters& counters, ConnectionCap& cap, std::uint64_t multishot_room)
    : ring_(ring),
      listen_fd_(listener.fd),
      listener_(listener),
      handler_(handler),
      counters_(counters),
      cap_(cap),
      multishot_room_(multishot_room) {
  bind<&Acceptor::on_accept>(accept_op_, this);
  bind<&Acceptor::on_cancel>(cancel_op_, this);
}

Acceptor::~Acceptor() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void Acceptor::resume() {
  if (closing_) return;
  wanted_ = true;
  // While a cancel is in flight the terminal completion re-arms (see after_completion).
  if (!armed_ && !cancel_pending_) arm();
}

void Acceptor::pause() {
  if (wanted_) counters_.accept_pauses.add();
  wanted_ = false;
  cancel();
}

void Acceptor::close() {
  closing_ = true;
  wanted_ = false;
  cancel();
  after_completion();
}

void Acceptor::arm() {
  const std::uint64_t room = cap_.room();
  if (room == 0 && !handler_.can_reclaim()) {
    handler_.on_cap_full();
    return;
  }
  // Hysteresis: back to multishot only well above the margin, so churn around it does not
  // switch (and tell every loop) at every accept.
  multishot_ = room > (multishot_ ? multishot_room_ : 2 * multishot_room_);
  io_uring_sqe* sqe = ring_.sqe(accept_op_);
  if (multishot_) {
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }
  armed_ = true;
  ++in_flight_;
}

void Acceptor::cancel() {
  if (!armed_ || cancel_pending_) return;
  io_uring_sqe* sqe = ring_.sqe(cancel_op_);
  io_uring_prep_cancel64(sqe, accept_op_.user_data(), 0);
  cancel_pending_ = true;
  ++in_flight_;
}

void Acceptor::on_accept(std::int32_t res, std::uint32_t flags) {
  if ((flags & IORING_CQE_F_MORE) == 0) {
    armed_ = false;
    --in_flight_;
  }
  if (res >= 0) {
    if (closing_) {
      ::close(res);
    } else {
      ListenSocket accepted = listener_;
      accepted.fd = res;
      handler_.on_accepted(accepted);
    }
    // Near the cap the multishot accept gives way to single ones (after_completion arms one
    // once its last completion is in), on every loop.
    if (near_cap()) handler_.on_near_cap();
    after_completion();
    return;
  }
  if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    counters_.accept_errors.add();
    if (!closing_) handler_.on_accept_exhausted(-res);
  } else if (res != -ECANCELED) {
    // ECONNABORTED and friends concern one client only: keep accepting.
    counters_.accept_errors.add();
  }
  after_completion();
}

bool Acceptor::near_cap() {
  if (!multishot_ || !armed_ || cancel_pending_ || cap_.room() > multishot_room_) return false;
  cancel();
  return true;
}

void Acceptor::on_cancel(std::int32_t /*res*/, std::uint32_t /*flags*/) {
  cancel_pending_ = false;
  --in_flight_;
  after_completion();
}

void Acceptor::after_completion() {
  if (!armed_ && !cancel_pending_ && wanted_) {
    counters_.accept_rearms.add();
    arm();
  }
  // Cancel first, close after the last completion: no operation may outlive the descriptor.
  if (closing_ && in_flight_ == 0 && listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

}  // namespace rs::net::uring
