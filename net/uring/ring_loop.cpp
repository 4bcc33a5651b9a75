#include "net/uring/ring_loop.hpp"

#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "net/loop_support.hpp"
#include "net/socket.hpp"

namespace rs::net::uring {

namespace {
constexpr std::uint16_t kBufferGroup = 0;
}

RingLoop::RingLoop(const LoopConfig& config, LoopContext& context)
    : config_(config),
      context_(context),
      counters_(*context.counters),
      now_ms_(core::monotonic_ms()),
      timers_(now_ms_),
      chunks_(config.chunk_bytes),
      accept_retry_timer_(&RingLoop::on_accept_retry, this),
      grace_timer_(&RingLoop::on_grace_expired, this),
      log_(ring_, timers_, counters_, config.access_log_path, config.access_log_max_buffered_bytes),
      files_(ring_, chunks_),
      ring_(config.ring, counters_),
      buffers_(*ring_.raw(), kBufferGroup, config.buffer_count, config.buffer_size,
               config.ring.incremental_buffers),
      acceptor_(ring_, std::exchange(context.listen_fd, -1), *this, counters_) {
  if (buffers_.incremental()) ring_.refuse_recv_bundle_beside_incremental();
  bind<&RingLoop::on_wake>(wake_op_, this);
  bind<&RingLoop::on_signal>(signal_op_, this);
  parked_.reserve(kMaxParked);
  protocols_ = context.make_protocols(*this);
}

RingLoop::~RingLoop() = default;

std::string RingLoop::ring_knobs() const {
  const char* incremental = buffers_.incremental()             ? "on"
                            : config_.ring.incremental_buffers ? "unsupported"
                                                               : "off";
  return fmt::format("{}, incremental buffers {}", ring_.knobs(), incremental);
}

void RingLoop::run() {
  arm_wake();
  if (context_.signal_fd >= 0) arm_signal();
  acceptor_.resume();
  while (!finished()) {
    end_of_turn();
    std::optional<std::uint64_t> timeout_ns;
    if (auto next = timers_.next_expiry_ms()) {
      timeout_ns = (*next > now_ms_ ? *next - now_ms_ : 0) * 1000000ULL;
    }
    ring_.submit_and_wait(timeout_ns);
    // The wheel's clock moves before any continuation runs, so a timer armed by one counts
    // from now, not from before the wait; timers fire after the completions, so a client whose
    // bytes arrived is served even if the loop was slow to look.
    now_ms_ = core::monotonic_ms();
    timers_.set_now(now_ms_);
    dispatch_completions();
    timers_.advance(now_ms_);
    counters_.loop_turns.add();
  }
  update_gauges();
}

// Everything a turn produced leaves in one submit: returned buffers become visible to the
// kernel, connections that wrote output send it, connections starved of buffers re-arm.
void RingLoop::end_of_turn() {
  // Redelivered input may produce output, so it runs before the sends. The list is taken
  // whole first: a protocol that pauses and resumes itself lands in the next turn's list.
  core::IntrusiveList<RingConnection, &RingConnection::resumed_node> resumed;
  resumed.splice_back(work_.resumed);
  while (RingConnection* conn = resumed.pop_front())
    conn->redeliver_stash();
  buffers_.publish();
  // settle() finishes closes and tells protocols about aborts; then the one send per turn.
  while (RingConnection* conn = work_.dirty.pop_front()) {
    conn->settle_now();
    conn->send_pending();
  }
  // Re-arm no more starved receives than there are buffers to fill, oldest first.
  for (unsigned free = buffers_.available(); free > 0 && !work_.starved.empty(); --free) {
    work_.starved.pop_front()->retry_receive();
  }
  // Log lines of every response of this turn leave in (at most) one write.
  log_.flush();
  update_gauges();
}

void RingLoop::update_gauges() {
  counters_.pool_connections.set(static_cast<std::int64_t>(connections_.outstanding()));
  counters_.pool_chunks.set(static_cast<std::int64_t>(chunks_.outstanding()));
  counters_.pool_response_slots.set(static_cast<std::int64_t>(slots_.outstanding()));
  counters_.pool_files.set(static_cast<std::int64_t>(files_.open_files()));
  counters_.pool_grows.set(
      static_cast<std::int64_t>(chunks_.grows() + slots_.grows() + connections_.grows()));
  counters_.buffers_held.set(buffers_.held());
  counters_.recv_buffers_used.set(buffers_.used());
  counters_.fixed_files_in_use.set(static_cast<std::int64_t>(ring_.fixed_files_in_use()));
}

void RingLoop::dispatch_completions() {
  // The CQ head moves once per batch (in reap); continuations run after it has moved.
  for (;;) {
    const std::size_t n = ring_.reap(batch_);
    for (std::size_t i = 0; i < n; ++i) {
      Completion& c = batch_[i];
      c.op->complete(*c.op, c.res, c.flags);
    }
    if (n < batch_.size()) break;
  }
}

void RingLoop::on_accepted(int fd) {
  if (stopping_) {
    ::close(fd);
    return;
  }
  ConnectionCap& cap = *context_.cap;
  if (cap.try_acquire()) {
    open_connection(fd);
  } else if (parked_.size() < kMaxParked) {
    // Accepted in the same batch as the one that filled the cap (or by another loop's
    // race): keep it waiting here, as it would have in the backlog, until a place frees.
    parked_.push_back(fd);
  } else {
    ::close(fd);
    counters_.rejected_over_cap.add();
  }
  // At the cap, stop accepting so further clients wait in the backlog instead of being
  // accepted and dropped; a close (or the retry timer, for other loops' closes) resumes.
  if (cap.full() && !accept_paused_for_cap_) {
    accept_paused_for_cap_ = true;
    acceptor_.pause();
    timers_.arm(accept_retry_timer_, config_.accept_retry_ms);
  }
}

void RingLoop::open_connection(int fd) {
  auto* conn = connections_.make(*this, fd, next_connection_id_++);
  if (config_.ring.fixed_files > 0) {
    const int slot = ring_.install_fixed(fd);
    if (slot >= 0) {
      conn->use_fixed_slot(slot);
    } else {
      counters_.fixed_file_misses.add();
    }
  }
  all_.push_back(*conn);
  note_connection_opened(counters_);
  conn->attach_protocol(protocols_->open(*conn));
}

// Parked clients go first, in arrival order, whenever the cap has room.
void RingLoop::admit_parked() {
  std::size_t admitted = 0;
  while (admitted < parked_.size() && context_.cap->try_acquire()) {
    open_connection(parked_[admitted++]);
  }
  parked_.erase(parked_.begin(), parked_.begin() + static_cast<std::ptrdiff_t>(admitted));
}

void RingLoop::on_accept_exhausted(int error) {
  // Out of descriptors or memory: retrying at once would spin on the same error.
  core::log_warn("accept: {}; pausing accepts for {} ms", std::strerror(error),
                 config_.accept_retry_ms);
  acceptor_.pause();
  timers_.arm(accept_retry_timer_, config_.accept_retry_ms);
}

void RingLoop::on_accept_retry(core::Timer& timer) {
  auto& self = *static_cast<RingLoop*>(timer.context());
  if (self.stopping_) return;
  self.admit_parked();
  if (self.context_.cap->full() || !self.parked_.empty()) {
    self.timers_.arm(self.accept_retry_timer_, self.config_.accept_retry_ms);
    return;
  }
  self.accept_paused_for_cap_ = false;
  self.acceptor_.resume();
}

void RingLoop::release(RingConnection& conn) {
  conn.settle_now();  // the protocol hears of the close before the memory goes
  work_.forget(conn);
  all_.remove(conn);
  connections_.destroy(&conn);
  note_connection_closed(counters_, *context_.cap);
  if (stopping_) return;
  admit_parked();
  if (accept_paused_for_cap_ && parked_.empty() && !context_.cap->full()) {
    accept_paused_for_cap_ = false;
    timers_.cancel(accept_retry_timer_);
    acceptor_.resume();
  }
}

void RingLoop::arm_wake() {
  io_uring_sqe* sqe = ring_.sqe(wake_op_);
  io_uring_prep_read(sqe, context_.wake_fd, &wake_value_, sizeof(wake_value_), 0);
}

void RingLoop::on_wake(std::int32_t res, std::uint32_t /*flags*/) {
  // Senders set their bits before writing the eventfd, and the eventfd was read before the
  // bits are taken, so no message is lost: one set after this exchange wakes us again.
  if (res > 0) {
    const std::uint32_t messages = context_.messages.exchange(0, std::memory_order_acquire);
    if ((messages & loop_message::kStop) != 0) begin_stop();
    if ((messages & loop_message::kReopenLogs) != 0) log_.reopen();
  }
  if (res > 0 || res == -EINTR || res == -EAGAIN) {
    arm_wake();
  } else {
    // Re-arming on a persistent error would spin; stopping is all it could have said.
    core::log_error("eventfd read failed: {}; stopping this loop", std::strerror(-res));
    begin_stop();
  }
}

void RingLoop::arm_signal() {
  io_uring_sqe* sqe = ring_.sqe(signal_op_);
  io_uring_prep_read(sqe, context_.signal_fd, &siginfo_, sizeof(siginfo_), 0);
}

void RingLoop::on_signal(std::int32_t res, std::uint32_t /*flags*/) {
  if (res == static_cast<std::int32_t>(sizeof(siginfo_))) {
    handle_loop_signal(context_, siginfo_.ssi_signo);
  } else if (res != -EINTR && res != -EAGAIN) {
    core::log_error("signalfd read failed: {}; signals are no longer handled", std::strerror(-res));
    return;
  }
  if (!stopping_) arm_signal();
}

void RingLoop::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  acceptor_.close();
  timers_.cancel(accept_retry_timer_);
  for (int fd : parked_)
    ::close(fd);
  parked_.clear();
  shut_down_all(all_);
  timers_.arm(grace_timer_, config_.grace_ms);
}

void RingLoop::on_grace_expired(core::Timer& timer) {
  auto& self = *static_cast<RingLoop*>(timer.context());
  self.grace_expired_ = true;
  abort_all(self.all_);
  // Closed connections still waiting for zero-copy notifications are reset, not waited for.
  for (RingConnection& conn : self.all_)
    conn.end_close_wait(true);
  self.log_.abandon();  // lines the disk has not taken by now are dropped and counted
}

bool RingLoop::finished() const {
  // The log last: closing connections write their final lines, which must reach the file.
  return stopping_ && connections_.outstanding() == 0 && acceptor_.idle() && files_.idle() &&
         log_.idle();
}

}  // namespace rs::net::uring
