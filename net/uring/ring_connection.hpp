// A connection on the ring: multishot receive from the provided-buffer ring, one ordered
// send in flight, and a close that cancels before it closes and frees only after the last
// completion that names the connection has arrived. Where the loop has a registered file table
// the socket is also in a slot of it, and every operation names the slot instead of the
// descriptor.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "core/timer_wheel.hpp"
#include "net/connection.hpp"
#include "net/transport.hpp"
#include "net/uring/operation.hpp"
#include "net/uring/retired_chunks.hpp"

namespace rs::net::uring {

class RingPoller;

class RingConnection final : public DrivenConnection {
  static constexpr std::size_t kZcSlots = 8;

  // One zero-copy send: its own operation, so its notification says which send is done.
  struct ZcSend {
    Operation op;
    RingConnection* conn = nullptr;
    std::uint64_t seq = 0;        // 0: free
    bool vectored_fixed = false;  // a SENDMSG_ZC naming a registered buffer (Linux 6.15)
  };

 public:
  // What a connection needs for zero-copy sends, made at its first one (with --uring-send-zc
  // off, never) from the poller's pool, and given back with the connection.
  struct ZeroCopy {
    ZeroCopy(RingConnection& conn, core::ChunkPool& chunks);
    // While all are taken, output goes as plain (copying) sends.
    ZcSend sends[kZcSlots];
    std::uint64_t next_seq = 1;
    RetiredChunks retired;         // sent output the kernel may still read, until then
    core::Timer close_wait_timer;  // armed exactly while the close waits for notifications
  };

  RingConnection(RingPoller& poller, ConnectionContext& context, int fd, std::uint64_t id);
  ~RingConnection();
  RingConnection(const RingConnection&) = delete;
  RingConnection& operator=(const RingConnection&) = delete;

  // Before start(): operations name this registered file slot from now on.
  void use_fixed_slot(int slot) { fixed_slot_ = slot; }
  // The turn's send: one send (or zero-copy send) of the front of pending_output().
  void send_pending();
  // Receive ended with ENOBUFS; buffers came back.
  void retry_receive();
  // A close waiting for zero-copy notifications goes ahead: with a reset when the wait or a
  // stop's grace ran out, gracefully once the last notification came.
  void end_close_wait(bool reset);

 private:
  // Transport
  void set_receiving(bool on) override;
  bool send_in_flight() const override { return send_in_flight_; }
  void close_transport() override;
  void shutdown_write() override;

  void arm_receive();
  void set_target(io_uring_sqe* sqe) const;
  void prep_send_zc(io_uring_sqe* sqe, ZcSend& zc, const iovec* iov, std::size_t pieces,
                    std::uint32_t buffer_index);
  void finish_send(std::int32_t res);
  ZcSend* free_zc_slot();
  bool zc_out() const;  // a zero-copy send whose pages the kernel may still read
  void on_zc_completion(ZcSend& send, std::int32_t res, std::uint32_t flags);
  void zc_done(ZcSend& send);
  void close_socket(bool reset);
  void close_after_wait(bool reset);
  static void on_close_wait_expired(core::Timer& timer);
  void cancel_receive();
  void watch_hangup(bool on);
  void on_hangup_poll(std::int32_t res);
  void cancel(std::uint64_t target);
  void on_completion(std::int32_t res, std::uint32_t flags, unsigned tag);
  void on_recv(std::int32_t res, std::uint32_t flags);
  void on_recv_cancelled();
  void release_if_done();

  // The tags of op_'s completions: what each SQE of the connection was.
  enum Tag : unsigned {
    kRecv,         // the multishot receive
    kSend,         // a plain send (a zero-copy send has its slot's own operation)
    kCancelRecv,   // a cancel of the receive
    kDone,         // a cancel of a send, or the close: only counted
    kFixedClosed,  // the registered file slot emptied
    kHangup,       // a poll for the peer's FIN or reset (POLLRDHUP): see watch_hangup
  };

  RingPoller& poller_;
  Operation op_;  // every SQE of the connection but zero-copy sends, told apart by Tag
  int in_flight_ = 0;
  int fixed_slot_ = -1;     // registered file slot, or -1: the plain descriptor
  ZeroCopy* zc_ = nullptr;  // from the first zero-copy send on
  static constexpr std::uint8_t kPlainSend = 0xff;
  std::uint8_t send_zc_ = kPlainSend;  // the zero-copy slot of the send in flight, or kPlainSend
  bool recv_armed_before_ = false;     // a receive was armed before (the next one is a re-arm)
  bool hangup_armed_ = false;          // the POLLRDHUP poll (kHangup) is in flight
  bool recv_armed_ = false;
  bool recv_limited_ = false;  // the receive armed last carries the multishot limit
  bool recv_cancel_pending_ = false;
  bool send_in_flight_ = false;
  bool transport_closed_ = false;
};

}  // namespace rs::net::uring
