// A connection served by its own thread: blocking recv(2) and sendmsg(2) on a blocking socket.
// The transport hooks only record what the worker's loop (threads_loop.cpp) does next; nothing
// here waits.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "net/connection.hpp"
#include "net/epoll/recv_buffers.hpp"
#include "net/loop_counters.hpp"

namespace rs::net::threads {

class ThreadConnection;

// What the worker does when a blocking call returns, before the protocol hears what it did.
class WorkerWake {
 public:
  // After recv: move the clock, so timers armed for the input count from its arrival, not
  // from before the wait; and act on the owner's stop flags, so input that arrives once a stop
  // has begun is answered as part of the drain (with Connection: close), as the event loops
  // answer it.
  virtual void on_wake(ThreadConnection& conn) = 0;
  // After sendmsg (which may block for a send slice): move the clock, so a timer armed because
  // the output went (the idle deadline) counts from then.
  virtual void move_clock() = 0;

 protected:
  ~WorkerWake() = default;
};

class ThreadConnection final : public net::Connection {
 public:
  ThreadConnection(int fd, std::uint64_t id, LoopServices& services, ResponseSlotPool& slots,
                   const ConnectionLimits& limits, ConnectionEvents& events,
                   epoll::RecvBuffers& buffers, LoopCounters& counters, WorkerWake& wake);
  ~ThreadConnection() = default;

  void attach_protocol(Protocol* protocol) { start(protocol); }
  void shutdown() { begin_shutdown(); }
  void settle_now() { settle(); }
  void redeliver_stash() { redeliver(); }

  // One blocking recv (bounded by SO_RCVTIMEO); false when it timed out or was interrupted.
  bool receive();
  // One blocking sendmsg of the queued output (bounded by SO_SNDTIMEO).
  void send_pending();

  bool wants_settle() const { return settle_wanted_; }
  bool wants_redeliver() const { return redeliver_wanted_; }
  void clear_wants() { settle_wanted_ = redeliver_wanted_ = false; }
  bool receiving() const { return receiving_; }
  bool output_waiting() { return !pending_output().empty(); }
  bool transport_closed() const { return transport_closed_; }

 private:
  static constexpr int kMaxIov = 32;

  void schedule_settle() override { settle_wanted_ = true; }
  void schedule_redeliver() override { redeliver_wanted_ = true; }
  void set_receiving(bool on) override { receiving_ = on; }
  bool send_in_flight() const override { return false; }  // sends finish before they return
  void close_transport() override;
  void shutdown_write() override;

  epoll::RecvBuffers& buffers_;
  LoopCounters& counters_;
  WorkerWake& wake_;
  msghdr msg_{};
  iovec iov_[kMaxIov]{};
  bool settle_wanted_ = false;
  bool redeliver_wanted_ = false;
  bool receiving_ = false;
  bool transport_closed_ = false;
  bool stalled_ = false;  // the last send took nothing within its time slice
};

}  // namespace rs::net::threads
