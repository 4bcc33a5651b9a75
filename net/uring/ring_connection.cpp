#include "net/uring/ring_connection.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "core/log.hpp"
#include "net/uring/kernel_abi.hpp"
#include "net/uring/ring_poller.hpp"

namespace rs::net::uring {

RingConnection::RingConnection(RingPoller& poller, ConnectionContext& context, int fd,
                               std::uint64_t id)
    : DrivenConnection(fd, id, context), poller_(poller) {
  bind<&RingConnection::on_completion>(op_, this);
}

RingConnection::ZeroCopy::ZeroCopy(RingConnection& conn, core::ChunkPool& chunks)
    : retired(chunks) {
  for (ZcSend& send : sends) {
    send.conn = &conn;
    send.op.owner = &send;
    send.op.complete = [](Operation& op, std::int32_t res, std::uint32_t flags, unsigned) {
      ZcSend& self = op.owner_as<ZcSend>();
      self.conn->on_zc_completion(self, res, flags);
    };
  }
}

// Freed after the last completion that names the connection, so no zero-copy send is out.
RingConnection::~RingConnection() {
  poller_.zero_copies().destroy(zc_);
}

void RingConnection::send_pending() {
  core::BufferChain& out = pending_output();
  if (send_in_flight_ || transport_closed_ || out.empty()) return;
  // One send over the front of the chain; a short send continues from the first unsent byte
  // on a later turn because only what the kernel took is consumed. A single piece (the usual
  // unpipelined answer) goes as IORING_OP_SEND, which spares the kernel copying and checking a
  // msghdr and an iovec array; several go as one sendmsg.
  iovec iov[SendMsgs::kMaxIov];
  const std::size_t pieces = out.gather(iov, SendMsgs::kMaxIov);
  ZcSend* zc = nullptr;
  if (const unsigned zc_min = poller_.ring().send_zc_min_bytes(); zc_min > 0 && !kernel_tls()) {
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < pieces; ++i)
      bytes += iov[i].iov_len;
    if (bytes >= zc_min) zc = free_zc_slot();
  }
  send_zc_ = zc != nullptr ? static_cast<std::uint8_t>(zc - zc_->sends) : kPlainSend;
  io_uring_sqe* sqe = zc != nullptr ? poller_.ring().sqe(zc->op) : poller_.ring().sqe(op_, kSend);
  if (zc != nullptr) {
    prep_send_zc(sqe, *zc, iov, pieces, out.shared_buffer_index(pieces));
  } else if (pieces == 1) {
    io_uring_prep_send(sqe, fd(), iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    io_uring_prep_sendmsg(sqe, fd(), poller_.send_msgs().take(iov, pieces), MSG_NOSIGNAL);
  }
  set_target(sqe);
  send_in_flight_ = true;
  ++in_flight_;
  poller_.counters().send_sqes.add();
}

// Zero copy: the kernel sends from the output chunks themselves and posts a notification once it
// no longer needs them; chunks used up meanwhile wait in zc_->retired. Chunks of one registered
// buffer are sent as that buffer (IORING_RECVSEND_FIXED_BUF): the kernel takes the pages pinned
// at registration instead of pinning and unpinning them for this send. A vectored send may name
// only one buffer, so pieces from chunks of different slabs go as plain zero-copy sends.
void RingConnection::prep_send_zc(io_uring_sqe* sqe, ZcSend& zc, const iovec* iov,
                                  std::size_t pieces, std::uint32_t buffer_index) {
  zc.seq = zc_->next_seq++;
  RegisteredBuffers& registered = poller_.registered_buffers();
  const bool fixed =
      buffer_index != core::kNoBufferIndex && (pieces == 1 || registered.vectored_sends());
  zc.vectored_fixed = fixed && pieces > 1;
  if (pieces == 1) {
    io_uring_prep_send_zc(sqe, fd(), iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL, 0);
  } else {
    io_uring_prep_sendmsg_zc(sqe, fd(), poller_.send_msgs().take(iov, pieces), MSG_NOSIGNAL);
  }
  sqe->ioprio |= abi::kSendZcReportUsage;
  if (fixed) {
    sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
    sqe->buf_index = static_cast<std::uint16_t>(buffer_index);
    poller_.counters().fixed_sends.add();
  }
  poller_.counters().send_zc.add();
}

RingConnection::ZcSend* RingConnection::free_zc_slot() {
  if (zc_ == nullptr) zc_ = poller_.zero_copies().make(*this, services().chunks());
  for (ZcSend& send : zc_->sends) {
    if (send.seq == 0) return &send;
  }
  return nullptr;
}

// A slot is taken from the send until its notification (or a failure without one), so this
// also covers a zero-copy send still in flight.
bool RingConnection::zc_out() const {
  if (zc_ == nullptr) return false;  // never sent zero-copy: the usual case, one compare
  for (const ZcSend& send : zc_->sends) {
    if (send.seq != 0) return true;
  }
  return false;
}

void RingConnection::set_target(io_uring_sqe* sqe) const {
  if (fixed_slot_ >= 0) {
    sqe->fd = fixed_slot_;
    sqe->flags |= IOSQE_FIXED_FILE;
  }
}

void RingConnection::on_completion(std::int32_t res, std::uint32_t flags, unsigned tag) {
  switch (tag) {
    case kRecv:
      on_recv(res, flags);
      return;
    case kSend:
      finish_send(res);
      return;
    case kCancelRecv:
      on_recv_cancelled();
      return;
    case kHangup:
      on_hangup_poll(res);
      return;
    case kFixedClosed:
      // The slot is empty now and may take the next connection. A failed close leaves it out
      // of circulation: what it holds is unknown.
      if (res >= 0) poller_.ring().free_fixed_slot(fixed_slot_);
      break;
    default:
      break;
  }
  --in_flight_;
  release_if_done();
}

// A zero-copy send completes twice: its result (flagged F_MORE when a notification follows),
// then the notification that the kernel no longer reads its pages.
void RingConnection::on_zc_completion(ZcSend& send, std::int32_t res, std::uint32_t flags) {
  if ((flags & IORING_CQE_F_NOTIF) != 0) {
    // Loopback and devices without scatter-gather make the kernel copy after all; it says so.
    if ((static_cast<std::uint32_t>(res) & abi::kNotifUsageZcCopied) != 0) {
      poller_.counters().send_zc_copied.add();
    }
    --in_flight_;
    zc_done(send);
    release_if_done();
    return;
  }
  // A notification follows (F_MORE) even for a send that failed, since Linux 6.1 ("don't skip
  // notifs for failed requests"): the bookkeeping first, then what the result says.
  if ((flags & IORING_CQE_F_MORE) != 0) {
    ++in_flight_;  // the notification
  } else {
    zc_done(send);  // failed before it reached the socket: nothing to wait for
  }
  if (res == -EINVAL && send.vectored_fixed) {
    // A kernel before 6.15 takes registered buffers only in SEND_ZC: this loop's sends of
    // several pieces go without them from now on, and this output goes again.
    poller_.registered_buffers().refuse_vectored_sends();
    res = 0;
  } else if (res == -EINVAL || res == -EOPNOTSUPP || res == -ENOMEM) {
    // A kernel without zero-copy sends (or their usage report), a socket that cannot take them
    // (one the kernel's TLS layer holds: a kTLS connection whose keys it refused), or pages the
    // kernel could not pin (ENOMEM: outside registered buffers each zero-copy send is charged to
    // RLIMIT_MEMLOCK until its notification) sent nothing: zero copy goes off for every
    // connection of the loop, and this output goes again as a plain send.
    core::log_warn("zero-copy send refused ({}): --uring-send-zc is off for this loop",
                   res == -EINVAL   ? "EINVAL"
                   : res == -ENOMEM ? "ENOMEM"
                                    : "EOPNOTSUPP");
    poller_.ring().refuse_send_zc();
    res = 0;
  }
  finish_send(res);
}

// A zero-copy send's slot comes free: chunks retired under a tag below every send still out go
// back to the pool, and once none is out a close that waited for them goes ahead.
void RingConnection::zc_done(ZcSend& send) {
  send.seq = 0;
  const std::uint64_t newest = zc_->next_seq - 1;
  std::uint64_t done = newest;
  for (const ZcSend& other : zc_->sends) {
    if (other.seq != 0) done = std::min(done, other.seq - 1);
  }
  zc_->retired.release_through(done);
  if (done == newest) end_close_wait(false);
}

void RingConnection::finish_send(std::int32_t res) {
  send_in_flight_ = false;
  --in_flight_;
  if (res >= 0) {
    poller_.counters().bytes_out.add(static_cast<std::uint64_t>(res));
    // While any zero-copy send may still read them, used-up chunks are retired under the
    // newest such send, not freed.
    const bool retire = zc_out();
    if (retire) zc_->retired.set_tag(zc_->next_seq - 1);
    output_sent(static_cast<std::size_t>(res), retire ? &zc_->retired : nullptr);
  } else if (res != -ECANCELED) {
    // EPIPE, ECONNRESET: the peer is gone; nothing queued can be delivered.
    poller_.counters().send_errors.add();
    abort();
  }
  release_if_done();
}

void RingConnection::set_receiving(bool on) {
  if (on) {
    if (!recv_armed_ && !recv_cancel_pending_ && !transport_closed_) arm_receive();
  } else if (recv_armed_) {
    cancel_receive();
  }
  watch_hangup(on || watching_hangup());
}

// A one-shot poll for POLLRDHUP (POLLERR and POLLHUP come with it), armed while reading and
// while input is paused. Paused, no receive is armed, so a client that closes would be noticed
// only once reading resumes; the poll sees its FIN behind the unread bytes. Reading, it backs up
// the multishot receive, which can miss a reset: when the bytes and the reset both arrive between
// the receive's first attempt (an empty socket) and the arming of its internal poll, that poll's
// first wake-up reads the bytes, finds the socket empty (a reset, unlike a FIN, leaves nothing
// that counts as unread) and waits for a wake-up that came before it listened. The connection
// would then sit until its deadline (Linux 6.18; seen as about 1 in 500 reset clients).
void RingConnection::watch_hangup(bool on) {
  if (on && !hangup_armed_ && !transport_closed_) {
    io_uring_sqe* sqe = poller_.ring().sqe(op_, kHangup);
    io_uring_prep_poll_add(sqe, fd(), POLLRDHUP);
    set_target(sqe);
    hangup_armed_ = true;
    ++in_flight_;
  } else if (!on && hangup_armed_) {
    cancel(op_.user_data(kHangup));  // a cancel that finds it done already is harmless
  }
}

void RingConnection::on_hangup_poll(std::int32_t res) {
  hangup_armed_ = false;
  --in_flight_;
  if (res > 0 && receiving_wanted()) {
    // The peer has gone or is going: a fresh receive reads what is left, then the end or the
    // error, whether or not the one armed would have. The poll stays off (it would fire at once)
    // until reading pauses or resumes.
    if (recv_armed_) cancel_receive();  // on_recv_cancelled arms the next one
  } else if (res > 0) {
    deliver_hangup();  // POLLRDHUP, or POLLHUP/POLLERR: the peer has gone either way
  } else if (res == -ECANCELED && (receiving_wanted() || watching_hangup())) {
    watch_hangup(true);  // cancelled for a pause or resume that was undone meanwhile
  }
  release_if_done();
}

void RingConnection::arm_receive() {
  // Multishot: one SQE keeps posting a CQE per received chunk, each in a buffer the kernel
  // picks from the provided-buffer ring, until an error, EOF, ENOBUFS or a cancel ends it.
  io_uring_sqe* sqe = poller_.ring().sqe(op_, kRecv);
  io_uring_prep_recv_multishot(sqe, fd(), nullptr, 0, 0);
  set_target(sqe);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = poller_.buffers().group_id();
  // A bundle: one completion may fill several buffers (for_each_piece splits it).
  if (poller_.ring().recv_bundle()) sqe->ioprio |= abi::kRecvSendBundle;
  // It ends after the low-water mark's worth of bytes and is armed again if input is still
  // wanted: a client that pipelines without reading cannot make one turn read far past the point
  // where the connection pauses (the kernel would fill buffer after buffer into the stash).
  recv_limited_ = poller_.ring().recv_limit();
  if (recv_limited_) {
    const std::size_t limit =
        std::max<std::size_t>(limits().output_low_water_bytes, poller_.buffers().buffer_size());
    sqe->file_index = static_cast<std::uint32_t>(  // sqe->optlen (see kernel_abi.hpp)
        std::min<std::size_t>(limit, UINT32_MAX));
  }
  if (recv_armed_before_) poller_.counters().recv_rearms.add();
  recv_armed_before_ = true;
  recv_armed_ = true;
  ++in_flight_;
  poller_.counters().recv_sqes.add();
}

void RingConnection::retry_receive() {
  if (receiving_wanted() && !recv_armed_ && !recv_cancel_pending_ && !transport_closed_) {
    arm_receive();
  }
}

void RingConnection::cancel_receive() {
  if (recv_cancel_pending_) return;
  recv_cancel_pending_ = true;
  io_uring_prep_cancel64(poller_.ring().sqe(op_, kCancelRecv), op_.user_data(kRecv), 0);
  ++in_flight_;
}

void RingConnection::cancel(std::uint64_t target) {
  io_uring_prep_cancel64(poller_.ring().sqe(op_, kDone), target, 0);
  ++in_flight_;
}

void RingConnection::on_recv(std::int32_t res, std::uint32_t flags) {
  if ((flags & IORING_CQE_F_MORE) == 0) {
    recv_armed_ = false;
    --in_flight_;
  }
  if (res > 0) {
    const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    BufferRing& buffers = poller_.buffers();
    LoopCounters& counters = poller_.counters();
    counters.recv_completions.add();
    counters.bytes_in.add(static_cast<std::uint64_t>(res));
    // The handler borrows each buffer; it returns to the ring when the last hold is released.
    buffers.for_each_piece(id, static_cast<std::size_t>(res), flags,
                           [&](std::span<const std::byte> bytes, std::uint16_t buffer_id) {
                             deliver(bytes, &buffers, buffer_id);
                           });
  } else if (res == 0) {
    deliver_end();
  } else if (res == -ENOBUFS) {
    // The ring ran dry: the data waits in the socket. Re-arm once buffers have come back,
    // not at once, or an empty ring would spin.
    poller_.counters().enobufs.add();
    if (receiving_wanted() && !transport_closed_) turn().wait_for_buffers(*this);
  } else if (res == -EINVAL && recv_limited_) {
    // A kernel without the multishot limit: every receive of the loop goes without it, this one
    // again at once (receives armed before the first refusal came back are refused too, each
    // re-armed the same way).
    if (poller_.ring().recv_limit()) {
      core::log_warn("multishot receive limit refused (EINVAL): receives go without it");
      poller_.ring().refuse_recv_limit();
    }
  } else if (res != -ECANCELED) {
    poller_.counters().recv_errors.add();
    abort();
  }
  if (res != -ENOBUFS && res != 0 && !recv_armed_) retry_receive();
  release_if_done();
}

void RingConnection::on_recv_cancelled() {
  recv_cancel_pending_ = false;
  --in_flight_;
  // Input may have been wanted again while the cancel was on its way.
  if (!recv_armed_) retry_receive();
  release_if_done();
}

void RingConnection::close_transport() {
  transport_closed_ = true;
  const bool zc_held = zc_out();
  // A cut: output still queued, or the stop's grace ran out.
  const bool cut = zc_held && (sendable_bytes() != 0 || poller_.grace_expired());
  // Cancel while the descriptor is still open, then close; the connection is freed only when
  // every completion that names it (cancels and the close included) has arrived.
  if (recv_armed_) cancel_receive();
  watch_hangup(false);
  if (send_in_flight_) {
    cancel(send_zc_ != kPlainSend ? zc_->sends[send_zc_].op.user_data() : op_.user_data(kSend));
  }
  // A socket in the file table stays open until its slot is emptied as well.
  if (fixed_slot_ >= 0) {
    io_uring_prep_close_direct(poller_.ring().sqe(op_, kFixedClosed),
                               static_cast<unsigned>(fixed_slot_));
    ++in_flight_;
  }
  if (zc_held && !cut) {
    // Everything was handed over, but the kernel still holds zero-copy pages until the peer
    // acknowledges them. Closed now, the socket would be orphaned with them, and a peer that
    // does not read would keep them (and this connection's place) until TCP gives up. Open,
    // it can still be reset if the peer has not taken the data in time. The FIN goes now,
    // behind the data, so a peer reading to the end does not wait for the wait to end.
    ::shutdown(fd(), SHUT_WR);
    poller_.counters().send_zc_close_waits.inc();
    zc_->close_wait_timer.set(&RingConnection::on_close_wait_expired, this);
    poller_.timers().arm(zc_->close_wait_timer, poller_.zc_close_wait_ms());
    return;
  }
  // A cut while the kernel holds zero-copy pages: a reset empties the socket's queues, so the
  // notifications come now rather than when (if ever) a peer that stopped reading takes the data.
  close_socket(zc_held);
}

void RingConnection::close_socket(bool reset) {
  if (reset) {
    const linger abortive{1, 0};
    ::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
    poller_.counters().send_zc_resets.add();
  }
  io_uring_sqe* sqe = poller_.ring().sqe(op_, kDone);
  io_uring_prep_close(sqe, fd());
  ++in_flight_;
}

// The close wait lasts exactly while its timer is armed.
void RingConnection::end_close_wait(bool reset) {
  if (zc_ == nullptr || !zc_->close_wait_timer.armed()) return;
  poller_.timers().cancel(zc_->close_wait_timer);
  close_after_wait(reset);
}

void RingConnection::on_close_wait_expired(core::Timer& timer) {
  static_cast<RingConnection*>(timer.context())->close_after_wait(true);
}

void RingConnection::close_after_wait(bool reset) {
  poller_.counters().send_zc_close_waits.dec();
  close_socket(reset);
}

// A direct call, not IORING_OP_SHUTDOWN: the kernel runs that op on an io-wq worker, which
// looks the descriptor number up only when it runs. When the peer's end arrives in the same
// turn, the close that follows may run first, and an accept may hand the number to a new
// client before the worker half-closes it (that client's answer then failed with EPIPE).
void RingConnection::shutdown_write() {
  ::shutdown(fd(), SHUT_WR);
}

void RingConnection::release_if_done() {
  if (transport_closed_ && in_flight_ == 0) poller_.release(*this);
}

}  // namespace rs::net::uring
