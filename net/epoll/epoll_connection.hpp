// A connection on the epoll loop: level-triggered readiness, one recv(2) per readiness report
// into a receive buffer lent to the protocol, output sent with one sendmsg(2) per loop turn, and
// EPOLLOUT in the interest set only while the socket's send buffer is full.
#pragma once

#include <sys/socket.h>

#include <cstdint>

#include "core/intrusive_list.hpp"
#include "net/connection.hpp"
#include "net/epoll/watch.hpp"
#include "net/transport.hpp"

namespace rs::net::epoll {

class EpollPoller;

class EpollConnection final : public DrivenConnection {
 public:
  core::ListNode interest_node;  // on the poller's list: its epoll interest changed this turn

  EpollConnection(EpollPoller& poller, ConnectionContext& context, int fd, std::uint64_t id);

  // The turn's send: one sendmsg of pending_output(). True when the kernel answered (and the
  // connection settled); false when the send buffer was already known to be full.
  bool send_pending();
  void buffers_returned();  // was starved of receive buffers; some came back
  void apply_interest();  // at the end of the turn: tell the kernel what update_interest() decided

 private:
  static constexpr std::size_t kMaxIov = 32;

  // Transport
  void set_receiving(bool on) override;
  // Output waits for EPOLLOUT: the kernel has not taken it yet, so a close waits too.
  bool send_in_flight() const override { return write_blocked_; }
  void close_transport() override;
  void shutdown_write() override;

  void on_ready(std::uint32_t events);
  void receive();
  void update_interest();
  std::uint32_t wanted_events() const;

  EpollPoller& poller_;
  Watch watch_;
  std::uint32_t registered_ = 0;  // the interest set the kernel has
  bool in_epoll_ = false;
  bool write_blocked_ = false;  // the send buffer was full: waiting for EPOLLOUT
  bool starved_ = false;        // no receive buffer was free: EPOLLIN left out until one is
  bool transport_closed_ = false;
};

}  // namespace rs::net::epoll
