#include "net/uring/ring_poller.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "net/loop/event_loop.hpp"
#include "net/loop/loop_support.hpp"

namespace rs::net {
// The loop of this backend is compiled once, here.
template class EventLoop<uring::RingPoller>;
}  // namespace rs::net

namespace rs::net::uring {

namespace {
constexpr std::uint16_t kBufferGroup = 0;
}

RingPoller::RingPoller(EventLoop<RingPoller>& loop, const RingOptions& options,
                       std::vector<ListenSocket>& listeners)
    : loop_(loop),
      options_(options),
      counters_(loop.counters()),
      log_(ring_, loop.timers(), counters_, loop.config().access_log_path,
           loop.config().access_log_max_buffered_bytes),
      files_(ring_, loop.chunks(), counters_),
      ring_(options, counters_),
      buffers_(*ring_.raw(), kBufferGroup, loop.config().buffer_count, loop.config().buffer_size,
               options.incremental_buffers),
      registered_buffers_(*ring_.raw(), loop.chunks(), counters_, options.registered_buffers) {
  if (buffers_.incremental()) ring_.refuse_recv_bundle_beside_incremental();
  // A slab of each up front (their slots cost memory only once used), so that the first
  // answer in several pieces, or the first zero-copy send, does not grow a pool mid-load.
  send_msgs_.reserve();
  if (ring_.send_zc_min_bytes() > 0) zero_copies_.reserve(zero_copies_.objects_per_slab());
  bind<&RingPoller::on_wake>(wake_op_, this);
  bind<&RingPoller::on_signal>(signal_op_, this);
  // Last: the listeners are taken once nothing else can fail (an acceptor that cannot be made
  // leaves the rest with the caller, which closes them).
  acceptors_.reserve(listeners.size());
  for (ListenSocket& listener : listeners) {
    AcceptHandler& handler = *this;
    acceptors_.push_back(std::make_unique<Acceptor>(ring_, listener, handler, counters_,
                                                    *loop.context().cap,
                                                    loop.config().multishot_accept_room));
    listener.fd = -1;
  }
  listeners.clear();
}

std::string RingPoller::describe() const {
  const char* incremental = buffers_.incremental()         ? "on"
                            : options_.incremental_buffers ? "unsupported"
                                                           : "off";
  return fmt::format(
      "io_uring {} ({}), batched wait {}, {}, incremental buffers {}, registered buffers {}",
      to_string(ring_.mode()), ring_.mode_reason(), ring_.wait_mode(), ring_.knobs(), incremental,
      registered_buffers_.describe());
}

core::TimerWheel& RingPoller::timers() {
  return loop_.timers();
}

bool RingPoller::grace_expired() const {
  return loop_.grace_expired();
}

void RingPoller::start() {
  arm_wake();
  if (loop_.context().signal_fd >= 0) arm_signal();
  set_accepting(true);
}

void RingPoller::set_accepting(bool on) {
  // At the cap with nothing to reclaim, the loop pauses them all and retries later: decided
  // once here, not by each acceptor in turn (each would pause the others and count a pause).
  if (on && loop_.context().cap->room() == 0 && !loop_.can_reclaim()) {
    loop_.on_cap_full();
    return;
  }
  for (auto& acceptor : acceptors_) {
    if (on) {
      acceptor->resume();
    } else {
      acceptor->pause();
    }
  }
}

void RingPoller::stop_accepting() {
  for (auto& acceptor : acceptors_)
    acceptor->close();
}

void RingPoller::near_cap() {
  for (auto& acceptor : acceptors_)
    acceptor->near_cap();
}

bool RingPoller::idle() const {
  return std::all_of(acceptors_.begin(), acceptors_.end(),
                     [](const auto& acceptor) { return acceptor->idle(); });
}

void RingPoller::adopt(RingConnection& conn) {
  if (options_.fixed_files == 0) return;
  const int slot = ring_.install_fixed(conn.fd());
  if (slot >= 0) {
    conn.use_fixed_slot(slot);
  } else {
    counters_.fixed_file_misses.add();
  }
}

// Everything the turn prepared goes in this one submit. Buffers that came back since the readmit
// step (a closed connection's protocol letting go of them) are published first, so the kernel
// does not report ENOBUFS while they sit unpublished.
void RingPoller::wait(std::optional<std::uint64_t> timeout_ms) {
  buffers_.publish();
  std::optional<std::uint64_t> timeout_ns;
  if (timeout_ms) timeout_ns = *timeout_ms * 1000000ULL;
  ring_.submit_and_wait(timeout_ns);
  // The kernel has read every sendmsg header it was handed; one it did not take yet (a full
  // or busy ring) is still in the SQ, and then they all wait for a later submit.
  if (ring_.sq_empty()) send_msgs_.release_all();
}

void RingPoller::dispatch() {
  // The CQ head moves once per batch (in reap); continuations run after it has moved.
  for (;;) {
    const std::size_t n = ring_.reap(batch_);
    for (std::size_t i = 0; i < n; ++i) {
      const Completion& c = batch_[i];
      Operation::dispatch(c.user_data, c.res, c.flags);
    }
    if (n < batch_.size()) break;
  }
}

void RingPoller::release(RingConnection& conn) {
  loop_.retire(conn);
}

void RingPoller::on_grace_expired(ConnectionList& open) {
  // Closed connections still waiting for zero-copy notifications are reset, not waited for.
  for (DrivenConnection& conn : open)
    static_cast<RingConnection&>(conn).end_close_wait(true);
}

void RingPoller::update_gauges(LoopCounters& counters) const {
  counters.buffers_held.set(buffers_.held());
  counters.recv_buffers_used.set(buffers_.used());
  counters.fixed_files_in_use.set(static_cast<std::int64_t>(ring_.fixed_files_in_use()));
}

void RingPoller::on_accepted(ListenSocket accepted) {
  loop_.on_accepted(accepted);
}

bool RingPoller::can_reclaim() {
  return loop_.can_reclaim();
}

void RingPoller::on_near_cap() {
  near_cap();  // this loop's other acceptors at once, the other loops when they wake
  if (loop_.context().near_cap_all) loop_.context().near_cap_all();
}

void RingPoller::on_cap_full() {
  loop_.on_cap_full();
}

void RingPoller::on_accept_exhausted(int error) {
  loop_.on_accept_exhausted(error);
}

void RingPoller::arm_wake() {
  io_uring_sqe* sqe = ring_.sqe(wake_op_);
  io_uring_prep_read(sqe, loop_.context().wake_fd, &wake_value_, sizeof(wake_value_), 0);
}

void RingPoller::on_wake(std::int32_t res, std::uint32_t /*flags*/) {
  if (res > 0) loop_.take_messages();
  if (res > 0 || res == -EINTR || res == -EAGAIN) {
    arm_wake();
  } else {
    // Re-arming on a persistent error would spin; stopping is all it could have said.
    core::log_error("eventfd read failed: {}; stopping this loop", std::strerror(-res));
    loop_.begin_stop();
  }
}

void RingPoller::arm_signal() {
  io_uring_sqe* sqe = ring_.sqe(signal_op_);
  io_uring_prep_read(sqe, loop_.context().signal_fd, &siginfo_, sizeof(siginfo_), 0);
}

void RingPoller::on_signal(std::int32_t res, std::uint32_t /*flags*/) {
  if (res == static_cast<std::int32_t>(sizeof(siginfo_))) {
    handle_loop_signal(loop_.context(), siginfo_.ssi_signo);
  } else if (res != -EINTR && res != -EAGAIN) {
    core::log_error("signalfd read failed: {}; signals are no longer handled", std::strerror(-res));
    return;
  }
  if (!loop_.stopping()) arm_signal();
}

}  // namespace rs::net::uring
