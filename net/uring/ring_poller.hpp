// The completion backend's poller for net::EventLoop: the ring, the provided-buffer ring, an
// acceptor per listener, and the reads of the wake eventfd and the signalfd as operations. A wait
// is one submit-and-wait that hands the kernel everything the turn prepared (sends, re-armed
// receives, log writes) and returns with completions, which are reaped in batches (one CQ head
// advance per batch) and then run, each through its operation's function pointer.
#pragma once

#include <sys/signalfd.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/connection.hpp"
#include "net/loop/poller.hpp"
#include "net/loop_counters.hpp"
#include "net/uring/acceptor.hpp"
#include "net/uring/buffer_ring.hpp"
#include "net/uring/registered_buffers.hpp"
#include "net/uring/ring.hpp"
#include "net/uring/ring_connection.hpp"
#include "net/uring/ring_files.hpp"
#include "net/uring/ring_log.hpp"
#include "net/uring/ring_options.hpp"
#include "net/uring/send_msgs.hpp"

namespace rs::net::uring {

class RingPoller final : private AcceptHandler {
 public:
  using Connection = RingConnection;
  using Options = RingOptions;

  RingPoller(EventLoop<RingPoller>& loop, const RingOptions& options,
             std::vector<ListenSocket>& listeners);

  // The poller operations net::EventLoop calls (see net/loop/event_loop.hpp).
  void start();
  void set_accepting(bool on);
  void stop_accepting();
  // A loop neared the connection cap: multishot accepts give way to single ones.
  void near_cap();
  void adopt(RingConnection& conn);
  bool send(RingConnection& conn) {
    conn.send_pending();
    return false;  // the kernel answers with a completion, in a later turn
  }
  void readmit(RingConnection& conn) { conn.retry_receive(); }
  // Buffers returned this turn count once published: publishing first lets starved receives
  // re-arm in the turn their buffers came back.
  unsigned free_receive_buffers() {
    buffers_.publish();
    return buffers_.available();
  }
  // Nothing to tell the kernel before the wait: the wait itself submits and publishes.
  void end_turn() {}
  bool has_work() const { return false; }
  void wait(std::optional<std::uint64_t> timeout_ms);
  void dispatch();
  bool idle() const;
  void on_grace_expired(ConnectionList& open);
  void update_gauges(LoopCounters& counters) const;
  std::uint64_t pool_grows() const { return zero_copies_.grows() + send_msgs_.grows(); }
  RingLog& log() { return log_; }
  const RingLog& log() const { return log_; }
  RingFiles& files() { return files_; }
  const RingFiles& files() const { return files_; }
  std::string describe() const;

  // For RingConnection.
  Ring& ring() { return ring_; }
  BufferRing& buffers() { return buffers_; }
  LoopCounters& counters() { return counters_; }
  core::TimerWheel& timers();
  // The last completion that names conn arrived after its transport closed: it can go.
  void release(RingConnection& conn);
  bool grace_expired() const;  // a stop is cutting what is left
  std::uint64_t zc_close_wait_ms() const { return options_.send_zc_close_wait_ms; }
  core::SlabPool<RingConnection::ZeroCopy>& zero_copies() { return zero_copies_; }
  RegisteredBuffers& registered_buffers() { return registered_buffers_; }
  SendMsgs& send_msgs() { return send_msgs_; }

 private:
  static constexpr std::size_t kBatch = 256;

  void on_accepted(ListenSocket accepted) override;
  void on_cap_full() override;
  bool can_reclaim() override;
  void on_near_cap() override;
  void on_accept_exhausted(int error) override;
  void arm_wake();
  void arm_signal();
  void on_wake(std::int32_t res, std::uint32_t flags);
  void on_signal(std::int32_t res, std::uint32_t flags);

  EventLoop<RingPoller>& loop_;
  const RingOptions& options_;
  LoopCounters& counters_;
  Operation wake_op_;
  Operation signal_op_;
  std::uint64_t wake_value_ = 0;
  signalfd_siginfo siginfo_{};
  std::array<Completion, kBatch> batch_{};
  // The access log: its writes and opens are operations, so it is declared before ring_.
  RingLog log_;
  RingFiles files_;  // static files: their operations live in pooled files, so before ring_
  // Zero-copy sends' operations (before ring_ too), and the turn's sendmsg headers.
  core::SlabPool<RingConnection::ZeroCopy> zero_copies_{16};
  SendMsgs send_msgs_;
  // Declared after everything of the poller the kernel may write to (operations, wake and
  // signal buffers) so the ring is torn down before they are; the buffer ring and the acceptors
  // need the ring and go just before it. The connections live in the loop, which destroys the
  // poller (and so the ring) first.
  Ring ring_;
  BufferRing buffers_;
  // The chunk pool's slabs in the ring's buffer table; before the ring goes, the chunks stop
  // naming them.
  RegisteredBuffers registered_buffers_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;  // one per listener
};

}  // namespace rs::net::uring
