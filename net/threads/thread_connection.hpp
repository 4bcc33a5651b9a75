// A connection served by its own thread: blocking recv(2) and sendmsg(2) on a blocking socket.
// The transport hooks only record what the worker's loop (worker.cpp) does next; nothing here
// waits.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "net/connection.hpp"
#include "net/loop_counters.hpp"
#include "net/sync/recv_buffers.hpp"

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

class ThreadConnection final : public DrivenConnection {
 public:
  ThreadConnection(ConnectionContext& context, int fd, std::uint64_t id, sync::RecvBuffers& buffers,
                   WorkerWake& wake);
  ~ThreadConnection() = default;

  // One blocking recv (bounded by SO_RCVTIMEO); false when it timed out or was interrupted.
  bool receive();
  // One blocking sendmsg of the queued output (bounded by SO_SNDTIMEO). True when the kernel
  // took bytes (and the connection settled).
  bool send_pending();

  bool receiving() const { return receiving_; }
  bool transport_closed() const { return transport_closed_; }

 private:
  static constexpr int kMaxIov = 32;

  // Transport
  void set_receiving(bool on) override { receiving_ = on; }
  bool send_in_flight() const override { return false; }  // sends finish before they return
  void close_transport() override;
  void shutdown_write() override;

  sync::RecvBuffers& buffers_;
  WorkerWake& wake_;
  msghdr msg_{};
  iovec iov_[kMaxIov]{};
  bool receiving_ = false;
  bool transport_closed_ = false;
  bool stalled_ = false;  // the last send took nothing within its time slice
};

}  // namespace rs::net::threads
