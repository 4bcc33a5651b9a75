// Accepts on one listener (a loop has one per --listen), never far past the connection cap. While
// the cap leaves more room than every loop's backlog holds, one multishot accept takes clients as
// they come (the kernel ends one now and then: errors, cancellation; it is re-armed whenever
// accepting is wanted). Nearer the cap a multishot accept could take a whole backlog past it, so
// single accepts take over, one at a time and only while a place is left: at most one per
// listener of each loop can pass the cap (they race for the last place), and the loop parks it
// until a place frees. Pausing
// cancels, so waiting clients stay in the listen backlog instead of being accepted and dropped.
#pragma once

#include <cstdint>

#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/uring/operation.hpp"
#include "net/uring/ring.hpp"

namespace rs::net::uring {

class AcceptHandler {
 public:
  // The listener's settings (TLS, PROXY, use) with the accepted fd.
  virtual void on_accepted(ListenSocket accepted) = 0;
  // The room under the cap fell to the multishot margin: every loop should hear of it.
  virtual void on_near_cap() = 0;
  // No place is left for the next accept: the handler waits for a close, then resumes.
  virtual void on_cap_full() = 0;
  // With no place left, an idle connection could still make room for the next client.
  virtual bool can_reclaim() = 0;
  // EMFILE, ENFILE, ENOBUFS, ENOMEM: the handler pauses accepting and retries later.
  virtual void on_accept_exhausted(int error) = 0;

 protected:
  ~AcceptHandler() = default;
};

class Acceptor {
 public:
  Acceptor(Ring& ring, ListenSocket listener, AcceptHandler& handler, LoopCounters& counters,
           ConnectionCap& cap, std::uint64_t multishot_room);
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;
  ~Acceptor();

  void resume();
  void pause();
  // Stops accepting for good; the listener is closed once no operation names it.
  void close();
  bool paused() const { return !wanted_; }
  // The room is at the multishot margin: a multishot accept armed while it was large gives way.
  // True when it was cancelled now.
  bool near_cap();
  bool idle() const { return in_flight_ == 0 && listen_fd_ < 0; }

 private:
  void arm();
  void cancel();
  void on_accept(std::int32_t res, std::uint32_t flags);
  void on_cancel(std::int32_t res, std::uint32_t flags);
  void after_completion();

  Ring& ring_;
  int listen_fd_;
  const ListenSocket listener_;  // what accepted sockets copy (its fd: listen_fd_ until closed)
  AcceptHandler& handler_;
  LoopCounters& counters_;
  ConnectionCap& cap_;
  const std::uint64_t multishot_room_;
  Operation accept_op_;
  Operation cancel_op_;
  bool wanted_ = false;
  bool armed_ = false;
  bool multishot_ = false;  // what is (or was last) armed
  bool cancel_pending_ = false;
  bool closing_ = false;
  int in_flight_ = 0;
};

}  // namespace rs::net::uring
