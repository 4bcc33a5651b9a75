// Multishot accept on one listener. The kernel ends a multishot accept now and then (errors,
// cancellation); it is re-armed whenever accepting is wanted. Pausing cancels it, so waiting
// clients stay in the listen backlog instead of being accepted and dropped.
#pragma once

#include <cstdint>

#include "net/loop_counters.hpp"
#include "net/uring/operation.hpp"
#include "net/uring/ring.hpp"

namespace rs::net::uring {

class AcceptHandler {
 public:
  virtual void on_accepted(int fd) = 0;
  // EMFILE, ENFILE, ENOBUFS, ENOMEM: the handler pauses accepting and retries later.
  virtual void on_accept_exhausted(int error) = 0;

 protected:
  ~AcceptHandler() = default;
};

class Acceptor {
 public:
  Acceptor(Ring& ring, int listen_fd, AcceptHandler& handler, LoopCounters& counters);
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;
  ~Acceptor();

  void resume();
  void pause();
  // Stops accepting for good; the listener is closed once no operation names it.
  void close();
  bool paused() const { return !wanted_; }
  bool idle() const { return in_flight_ == 0 && listen_fd_ < 0; }

 private:
  void arm();
  void cancel();
  void on_accept(std::int32_t res, std::uint32_t flags);
  void on_cancel(std::int32_t res, std::uint32_t flags);
  void after_completion();

  Ring& ring_;
  int listen_fd_;
  AcceptHandler& handler_;
  LoopCounters& counters_;
  Operation accept_op_;
  Operation cancel_op_;
  bool wanted_ = false;
  bool armed_ = false;
  bool cancel_pending_ = false;
  bool closing_ = false;
  int in_flight_ = 0;
};

}  // namespace rs::net::uring
