// The event loop, written once for every readiness or completion backend. It owns what a loop
// is beside its kernel interface: the clock and timer wheel, the pools, the connection slab and
// lists, the connection cap and parked accepts, stop and grace, wake messages, the protocol
// factory, the gauges and LoopServices. A backend plugs in as a Poller, chosen at compile time:
// the loop calls it directly, never through a virtual, and the poller's own dispatch reaches
// each connection with one indirect call per event (uring::Operation, epoll::Watch).
//
// A Poller provides (net/loop/poller.hpp checks it: EventPoller):
//   using Connection;                    // derives from net::DrivenConnection
//   using Options;                       // its knobs, from ServerConfig
//   Poller(EventLoop<Poller>&, const Options&, std::vector<ListenSocket>& listeners);
//                                        // takes the listeners (empties the vector) once
//                                        // nothing of its construction can fail
//   void start();                        // wake and signal reads armed, accepting on
//   void set_accepting(bool on);         // pause or resume accepting
//   void stop_accepting();               // for good: the listeners close
//   void adopt(Connection&);             // a new connection, before its protocol starts
//   bool send(Connection&);              // hand pending_output() to the kernel; true when the
//                                        // connection heard output_sent() (and so settled)
//   void readmit(Connection&);           // was starved of receive buffers: some came back
//   unsigned free_receive_buffers();     // free now, as the kernel will see them
//   void end_turn();                     // what the turn changed, made known to the kernel
//   bool has_work() const;               // results already waiting: the wait must not block
//   void wait(std::optional<std::uint64_t> timeout_ms);   // submit, then block for events
//   void dispatch();                     // run what the wait brought
//   bool idle() const;                   // nothing of the poller's left in the kernel
//   void on_grace_expired(ConnectionList&);  // what the poller cuts beside aborting them
//   void update_gauges(LoopCounters&) const;
//   auto& log();  auto& files();         // LogSink and FileService with flush/reopen/abandon/idle
//   std::string describe() const;        // for the start-up line
//
// A turn: wait (until the next timer, or not at all when work is already known), dispatch the
// events, fire timers; then, at its end, redeliver resumed input, flush output, readmit starved
// readers, flush the log, tell the kernel what changed, free what closed.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/buffer.hpp"
#include "core/clock.hpp"
#include "core/intrusive_list.hpp"
#include "core/log.hpp"
#include "core/slab_pool.hpp"
#include "core/timer_wheel.hpp"
#include "net/connection.hpp"
#include "net/loop/loop_config.hpp"
#include "net/loop/loop_state.hpp"
#include "net/loop/loop_support.hpp"
#include "net/loop/poller.hpp"
#include "net/loop_counters.hpp"
#include "net/transport.hpp"

namespace rs::net {

template <class Poller>
class EventLoop final : public LoopServices {
 public:
  using Connection = typename Poller::Connection;

  // Must run on the thread that will call run(): a ring is bound to its creator.
  EventLoop(const LoopConfig& config, LoopContext& context,
            const typename Poller::Options& options);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void run();
  std::string describe() const { return poller_.describe(); }

  // LoopServices
  core::TimerWheel& timers() override { return state_.timers; }
  core::ChunkPool& chunks() override { return state_.chunks; }
  std::uint64_t now_ms() const override { return state_.now_ms; }
  std::uint64_t now_us() const override { return state_.now_us; }
  std::uint64_t wall_clock_s() const override { return state_.wall_clock_s; }
  LogSink* access_log() override { return poller_.log().enabled() ? &poller_.log() : nullptr; }
  FileService& files() override { return poller_.files(); }

  // For the poller and its connections.
  const LoopConfig& config() const { return config_; }
  LoopContext& context() { return context_; }
  LoopCounters& counters() { return counters_; }
  bool stopping() const { return stopping_; }
  bool grace_expired() const { return grace_expired_; }
  // A connection accepted on a listener (a TLS one: tls).
  void on_accepted(ListenSocket accepted);
  // At the cap, an idle connection of this loop could make room for one more waiting client.
  bool can_reclaim() const {
    return !stopping_ && parked_.size() < kMaxParked &&
           state_.turn.idle.size() > unmatched_parked();
  }
  // No place under the cap for the next accept: pause until a close (or the retry timer).
  void on_cap_full();
  // EMFILE, ENFILE, ENOBUFS, ENOMEM on accept: pause, retry later.
  void on_accept_exhausted(int error);
  // Accepting could not go on: it pauses and is tried again after accept_retry_ms.
  void retry_accepting_later();
  // The wake eventfd was read: act on the messages other threads left.
  void take_messages();
  void begin_stop();
  // The transport closed and nothing of the connection is left in the kernel: it is freed when
  // the turn ends (later events of this turn's batch may still name it).
  void retire(Connection& conn);

 private:
  static constexpr std::size_t kMaxParked = 64;
  // Giving memory back: each second, up to 1,024 chunks (16 MiB, about a millisecond of madvise
  // calls) of those that stayed free all through the second before.
  static constexpr std::uint64_t kTrimPeriodMs = 1000;
  static constexpr std::size_t kTlsSessionsPerSlab = 64;
  static constexpr std::size_t kTrimChunksPerPeriod = 1024;

  void end_of_turn();
  void release_retired();
  void open_connection(ListenSocket accepted);
  void admit_parked();
  void resume_accepting_if_room();
  // Parked clients that no close on its way will make room for.
  std::size_t unmatched_parked() const {
    return parked_.size() - std::min(parked_.size(), reclaims_pending_);
  }
  void reclaim_for_parked();
  void make_room_at_cap();
  void update_gauges();
  bool finished() const;
  std::optional<std::uint64_t> wait_ms() const;
  static void on_accept_retry(core::Timer& timer);
  static void on_grace_expired(core::Timer& timer);
  static void on_trim(core::Timer& timer);

  const LoopConfig& config_;
  LoopContext& context_;
  LoopCounters& counters_;
  LoopState state_;
  core::SlabPool<Connection> connections_;
  // Open connections (all_), and those closed whose memory goes at the end of the turn.
  ConnectionList all_;
  ConnectionList retired_;
  core::Timer accept_retry_timer_;
  core::Timer grace_timer_;
  core::Timer trim_timer_;  // armed while the chunk pool holds free chunks
  std::uint64_t next_connection_id_ = 1;
  bool stopping_ = false;
  std::size_t reclaims_pending_ = 0;  // idle connections closed for parked clients, not yet freed
  bool paused_for_cap_ = false;       // accepting stopped at the cap (a close resumes it)
  bool grace_expired_ = false;
  std::vector<ListenSocket>
      parked_;  // accepted over the cap, waiting for a place (reserved up front)
  // Declared after everything the kernel may write to (connections, their buffers) so that a
  // ring is torn down before they are.
  Poller poller_;
  // Last, so destroyed first: whatever a protocol factory holds goes back while the pools and
  // the poller still exist.
  std::unique_ptr<ProtocolFactory> protocols_;
};

template <class Poller>
EventLoop<Poller>::EventLoop(const LoopConfig& config, LoopContext& context,
                             const typename Poller::Options& options)
    : config_(config),
      context_(context),
      counters_(*context.counters),
      state_(*this, config.limits, counters_, config.chunk_bytes),
      accept_retry_timer_(&EventLoop::on_accept_retry, this),
      grace_timer_(&EventLoop::on_grace_expired, this),
      trim_timer_(&EventLoop::on_trim, this),
      poller_(*this, options, context.listeners) {
  static_assert(EventPoller<Poller>, "a poller provides what net/loop/poller.hpp lists");
  if (context.current_tls) state_.use_tls(context.current_tls(), kTlsSessionsPerSlab);
  parked_.reserve(kMaxParked);
  protocols_ = context.make_protocols(*this);
  state_.use_protocols(*protocols_, context.proxy);
}

template <class Poller>
EventLoop<Poller>::~EventLoop() {
  for (const ListenSocket& parked : parked_)
    ::close(parked.fd);
  // Connections outlive a run only when it failed. The turn lists (in state_, destroyed after
  // the connection slab) let go of them first, so no list unlinks a node in freed memory.
  state_.turn.flush.clear();
  state_.turn.resumed.clear();
  state_.turn.starved.clear();
  state_.turn.idle.clear();
}

template <class Poller>
void EventLoop<Poller>::run() {
  poller_.start();
  // Connections closed in a turn are freed at its end, so whether the loop is done is known
  // only then, before a wait that might have nothing left to wake it.
  while (!finished()) {
    poller_.wait(wait_ms());
    // The wheel's clock moves before any continuation runs, so a timer armed by one counts
    // from now, not from before the wait; timers fire after the events, so a client whose
    // bytes arrived is served even if the loop was slow to look.
    state_.move_clock();
    poller_.dispatch();
    state_.timers.advance(state_.now_ms);
    counters_.loop_turns.add();
    end_of_turn();
  }
}

// Work that is already known does not wait: waiting would only add latency.
template <class Poller>
std::optional<std::uint64_t> EventLoop<Poller>::wait_ms() const {
  if (!state_.turn.empty() || poller_.has_work()) return 0;
  if (auto next = state_.timers.next_expiry_ms()) {
    return *next > state_.now_ms ? *next - state_.now_ms : 0;
  }
  return std::nullopt;
}

template <class Poller>
void EventLoop<Poller>::end_of_turn() {
  redeliver_and_flush(state_.turn, [this](DrivenConnection& conn) {
    return poller_.send(static_cast<Connection&>(conn));
  });
  // Let back in as many readers starved of buffers as there are free buffers, oldest first.
  TurnLists& turn = state_.turn;
  for (unsigned free = poller_.free_receive_buffers(); free > 0 && !turn.starved.empty(); --free) {
    poller_.readmit(static_cast<Connection&>(*turn.starved.pop_front()));
  }
  // The log lines of every response of this turn leave in (at most) one write.
  poller_.log().flush();
  // Before the retired are freed: telling the kernel may close a connection (epoll_ctl fails).
  poller_.end_turn();
  release_retired();
  make_room_at_cap();
  if (!trim_timer_.armed() && state_.chunks.holds_free()) {
    state_.timers.arm(trim_timer_, kTrimPeriodMs);
  }
  update_gauges();
}

// Output chunks that a load needed and the next did not (free for a whole period) go back to the
// kernel, a bounded number per period, so RSS returns near its baseline after a burst of slow
// readers or large answers. A chunk in steady use is never released.
template <class Poller>
void EventLoop<Poller>::on_trim(core::Timer& timer) {
  auto& self = *static_cast<EventLoop*>(timer.context());
  self.state_.chunks.release_idle(kTrimChunksPerPeriod);
  // Re-armed at the end of the turn while free chunks are held.
}

template <class Poller>
void EventLoop<Poller>::retire(Connection& conn) {
  all_.remove(conn);
  retired_.push_back(conn);
}

template <class Poller>
void EventLoop<Poller>::release_retired() {
  if (retired_.empty()) return;
  while (DrivenConnection* conn = retired_.pop_front()) {
    conn->turn_done();  // the protocol hears of the close before the memory goes
    state_.turn.forget(*conn);
    connections_.destroy(static_cast<Connection*>(conn));
    note_connection_closed(counters_, *context_.cap);
    if (reclaims_pending_ > 0) --reclaims_pending_;  // a place is free, whoever left
  }
  if (stopping_) return;
  admit_parked();
  resume_accepting_if_room();
}

template <class Poller>
void EventLoop<Poller>::on_accepted(ListenSocket accepted) {
  if (stopping_) {
    ::close(accepted.fd);
    return;
  }
  ConnectionCap& cap = *context_.cap;
  if (cap.try_acquire()) {
    open_connection(accepted);
  } else if (parked_.size() < kMaxParked) {
    // Accepted at the cap (to take an idle connection's place, in the same batch as the one
    // that filled the cap, or by another loop's race): it waits here, as it would have in the
    // backlog, until a place frees.
    // An idle connection is closed for it at the end of the turn (make_room_at_cap), once the
    // bytes of this turn have been handled: not one whose request is arriving right now. The
    // retry timer stays armed while a client is parked, whoever frees a place.
    parked_.push_back(accepted);
    if (!accept_retry_timer_.armed()) {
      state_.timers.arm(accept_retry_timer_, config_.accept_retry_ms);
    }
  } else {
    ::close(accepted.fd);
    counters_.rejected_over_cap.add();
  }
  // At the cap, stop accepting so further clients wait in the backlog instead of being
  // accepted and dropped, unless an idle connection can make room; a close (or the retry timer,
  // for other loops' closes) resumes, and so does a connection becoming idle.
  if (cap.full() && !paused_for_cap_ && !can_reclaim()) {
    paused_for_cap_ = true;
    retry_accepting_later();  // the timer covers other loops' closes
  }
}

template <class Poller>
void EventLoop<Poller>::open_connection(ListenSocket accepted) {
  Connection* conn =
      connections_.make(poller_, state_.connection_context, accepted.fd, next_connection_id_++);
  poller_.adopt(*conn);
  all_.push_back(*conn);
  note_connection_opened(counters_);
  conn->start(*protocols_, accepted);
}

// Parked clients go first, in arrival order, whenever the cap has room.
template <class Poller>
void EventLoop<Poller>::admit_parked() {
  std::size_t admitted = 0;
  while (admitted < parked_.size() && context_.cap->try_acquire()) {
    open_connection(parked_[admitted++]);
  }
  parked_.erase(parked_.begin(), parked_.begin() + static_cast<std::ptrdiff_t>(admitted));
}

// The oldest idle connections close, one for each parked client no close is on its way for
// (nginx's connection reuse): a new client is not kept waiting by clients that have nothing to
// say. Its place frees when it is released, and admit_parked() hands it on.
template <class Poller>
void EventLoop<Poller>::reclaim_for_parked() {
  ConnectionCap& cap = *context_.cap;
  while (!stopping_ && cap.full() && unmatched_parked() > 0 && !state_.turn.idle.empty()) {
    DrivenConnection& idle = *state_.turn.idle.pop_front();
    ++reclaims_pending_;
    counters_.connections_reclaimed.add();
    static_cast<Connection&>(idle).close();
  }
}

// At the end of a turn: parked clients take the places of connections that became idle since,
// and accepting paused at the cap goes on while idle connections can make room.
template <class Poller>
void EventLoop<Poller>::make_room_at_cap() {
  if (state_.turn.idle.empty() || (parked_.empty() && !paused_for_cap_)) return;
  reclaim_for_parked();
  if (paused_for_cap_ && context_.cap->full() && can_reclaim()) {
    paused_for_cap_ = false;
    if (parked_.empty()) state_.timers.cancel(accept_retry_timer_);  // else it stays, as above
    poller_.set_accepting(true);
  }
}

template <class Poller>
void EventLoop<Poller>::resume_accepting_if_room() {
  if (!paused_for_cap_ || !parked_.empty() || context_.cap->full()) return;
  paused_for_cap_ = false;
  state_.timers.cancel(accept_retry_timer_);
  poller_.set_accepting(true);
}

template <class Poller>
void EventLoop<Poller>::on_cap_full() {
  paused_for_cap_ = true;
  retry_accepting_later();  // the timer covers other loops' closes
}

template <class Poller>
void EventLoop<Poller>::on_accept_exhausted(int error) {
  // Out of descriptors or memory: retrying at once would spin on the same error.
  core::log_warn("accept: {}; pausing accepts for {} ms", std::strerror(error),
                 config_.accept_retry_ms);
  retry_accepting_later();
}

template <class Poller>
void EventLoop<Poller>::retry_accepting_later() {
  poller_.set_accepting(false);
  state_.timers.arm(accept_retry_timer_, config_.accept_retry_ms);
}

template <class Poller>
void EventLoop<Poller>::on_accept_retry(core::Timer& timer) {
  auto& self = *static_cast<EventLoop*>(timer.context());
  if (self.stopping_) return;
  self.admit_parked();
  if (self.context_.cap->full() || !self.parked_.empty()) {
    self.state_.timers.arm(self.accept_retry_timer_, self.config_.accept_retry_ms);
    return;
  }
  self.paused_for_cap_ = false;
  self.poller_.set_accepting(true);
}

template <class Poller>
void EventLoop<Poller>::take_messages() {
  const std::uint32_t messages = net::take_messages(context_);
  if ((messages & loop_message::kStop) != 0) begin_stop();
  if ((messages & loop_message::kReopenLogs) != 0) poller_.log().reopen();
  if ((messages & loop_message::kReloadTls) != 0 && state_.tls && context_.current_tls) {
    state_.tls->use(context_.current_tls());
  }
  if ((messages & loop_message::kNearCap) != 0) poller_.near_cap();
}

template <class Poller>
void EventLoop<Poller>::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  poller_.stop_accepting();
  state_.timers.cancel(accept_retry_timer_);
  for (const ListenSocket& parked : parked_)
    ::close(parked.fd);
  parked_.clear();
  shut_down_all(all_);
  state_.timers.arm(grace_timer_, config_.grace_ms);
}

template <class Poller>
void EventLoop<Poller>::on_grace_expired(core::Timer& timer) {
  auto& self = *static_cast<EventLoop*>(timer.context());
  self.grace_expired_ = true;
  abort_all(self.all_);
  self.poller_.on_grace_expired(self.all_);
  self.poller_.log().abandon();  // lines the disk has not taken by now are dropped and counted
}

template <class Poller>
void EventLoop<Poller>::update_gauges() {
  state_.update_gauges(counters_, poller_.files().open_files(),
                       connections_.grows() + poller_.pool_grows() + poller_.log().pool_grows());
  counters_.pool_connections.set(static_cast<std::int64_t>(connections_.outstanding()));
  counters_.connections_idle.set(static_cast<std::int64_t>(state_.turn.idle.size()));
  counters_.connection_bytes.set(
      static_cast<std::int64_t>(connections_.outstanding() * sizeof(Connection)));
  poller_.update_gauges(counters_);
}

template <class Poller>
bool EventLoop<Poller>::finished() const {
  // The log last: closing connections write their final lines, which must reach the file.
  return stopping_ && connections_.outstanding() == 0 && poller_.idle() && poller_.files().idle() &&
         poller_.log().idle();
}

}  // namespace rs::net
