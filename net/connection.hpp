// A connection as protocol code sees it, and the part of it that every backend shares:
// ordered output (immediate and deferred answers), the stash of unconsumed input, input
// pause/resume with backpressure, and graceful close. A backend derives from Connection and
// implements the transport hooks at the bottom.
//
// Re-entrancy rule: a call protocol code makes on its connection never calls back into the
// protocol. Work that may (finishing a close, Protocol::on_close) happens in settle(), which
// the backend runs right after a protocol callback returns or at the end of the loop turn.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "core/slab_pool.hpp"
#include "net/transport.hpp"

namespace rs::net {

// A place in the response order reserved by Connection::defer().
struct ResponseSlot {
  explicit ResponseSlot(core::ChunkPool& pool) : response(pool), after(pool) {}
  core::ListNode node;
  core::BufferChain response;  // the deferred answer, written when it is ready
  core::BufferChain after;     // answers produced later that must wait for this one
  bool done = false;
};
using ResponseSlotPool = core::SlabPool<ResponseSlot>;

struct ConnectionLimits {
  // Above this many queued output bytes input is paused (the peer is not reading); it resumes
  // at or below the low-water mark.
  std::size_t output_high_water_bytes = 1 << 20;
  std::size_t output_low_water_bytes = 256 << 10;
  // Unconsumed input beyond this is a protocol that cannot keep up: the connection is aborted.
  std::size_t max_stash_bytes = 4 << 20;
  // On server stop: how long a closing connection drains the peer's input after its FIN
  // (the grace period bounds it too).
  std::uint64_t shutdown_linger_ms = 1000;
};

// Counters a connection reports into; owned by the loop.
struct ConnectionEvents {
  virtual void on_input_paused() = 0;
  virtual void on_stash_overflow() = 0;

 protected:
  ~ConnectionEvents() = default;
};

class Connection {
 public:
  Connection(int fd, std::uint64_t id, LoopServices& services, ResponseSlotPool& slots,
             const ConnectionLimits& limits, ConnectionEvents& events);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // --- output, leaving in the order it was produced ---
  // The chain the next immediate answer goes to. Bytes appended here inside a protocol
  // callback are sent this loop turn; outside one (a timer) call flush() afterwards.
  core::BufferChain& output();
  void write(std::string_view bytes);
  void flush();
  // Reserves the place of an answer that completes later; answers written after this wait for
  // it. The slot stays valid until Protocol::on_close (complete() after an abort is a no-op).
  ResponseSlot* defer();
  core::BufferChain& deferred_output(ResponseSlot* slot) { return slot->response; }
  void complete(ResponseSlot* slot);
  // Streams what the deferred answer holds so far when it is first in line (a large file read
  // piece by piece); otherwise it waits for the answers before it. The slot stays open.
  void flush_deferred(ResponseSlot* slot);
  bool deferred_is_first(const ResponseSlot* slot) { return slots_.front() == slot; }
  // Every byte owed, deferred answers (and what waits behind them) included.
  std::size_t queued_bytes() const;
  // Only the bytes that can go out now: output not held back behind an unfinished answer.
  std::size_t sendable_bytes() const { return out_.size(); }
  bool has_deferred() const { return !slots_.empty(); }

  // --- input ---
  // While paused the protocol gets no on_input: bytes already received wait in the stash and
  // are delivered again (without waiting for new ones) soon after resume_input().
  void pause_input();
  void resume_input();
  bool input_paused() const { return (pause_reasons_ & kPausedByProtocol) != 0; }
  bool input_ended() const { return input_ended_; }

  // --- lifetime ---
  void close();  // after queued and deferred output has been sent
  // Like close(), then shut down the sending side and read (and drop) the peer's input until
  // it closes or linger_ms pass, so a client still sending gets our last answer, not a reset.
  void close_lingering(std::uint64_t linger_ms);
  void abort();  // now; queued output is dropped; on_close follows at the next settle
  bool open() const { return state_ == State::kOpen; }
  bool closed() const { return state_ == State::kClosed; }

  std::uint64_t bytes_sent() const { return bytes_sent_; }
  const sockaddr_storage& peer();
  LoopServices& services() { return services_; }
  const ConnectionLimits& limits() const { return limits_; }
  std::uint64_t id() const { return id_; }
  int fd() const { return fd_; }
  Protocol* protocol() const { return protocol_; }

 protected:
  ~Connection();
  // Hands the connection to its protocol and starts receiving.
  void start(Protocol* protocol);

  // Called by the backend.
  void deliver(std::span<const std::byte> fresh, BufferOwner* owner, std::uint32_t buffer_id);
  void redeliver();    // the stash again, after resume_input()
  void deliver_end();  // the peer sent FIN
  // n bytes of output() reached the kernel. Chunks it used up go back to the pool, or to retire
  // when the kernel still reads them (a zero-copy send awaiting its notification).
  void output_sent(std::size_t n, core::RetiredChunks* retire = nullptr);
  void begin_shutdown();
  // Finishes a graceful close once drained, applies backpressure, and tells the protocol of a
  // close. Never called while a protocol callback is running.
  void settle();
  core::BufferChain& pending_output() { return out_; }
  bool receiving_wanted() const { return receiving_wanted_; }

  // Implemented by the backend.
  virtual void schedule_settle() = 0;       // settle() and send pending_output() this turn
  virtual void schedule_redeliver() = 0;    // call redeliver() later this loop turn
  virtual void set_receiving(bool on) = 0;  // arm or stop receiving
  virtual bool send_in_flight() const = 0;  // a send of pending_output() is in the kernel
  virtual void close_transport() = 0;       // cancel, close, free after the last completion
  virtual void shutdown_write() = 0;        // send FIN after the queued output

 private:
  // kLingering: output sent and FIN sent, input drained until EOF or the linger timer.
  enum class State : std::uint8_t { kOpen, kClosing, kLingering, kClosed };
  enum PauseReason : std::uint8_t { kPausedByProtocol = 1, kPausedByBackpressure = 2 };

  template <class F>
  void call_protocol(F&& f);
  void update_receiving();
  void update_backpressure();
  void release_slots_in_order();
  void notify_closed();
  static void on_linger_expired(core::Timer& timer);

  int fd_;
  std::uint64_t id_;
  State state_ = State::kOpen;
  std::uint8_t pause_reasons_ = 0;
  bool receiving_wanted_ = false;
  bool input_ended_ = false;
  bool in_protocol_call_ = false;
  bool end_pending_ = false;  // EOF arrived while stashed input still waited
  bool peer_known_ = false;
  std::uint64_t linger_ms_ = 0;  // 0: plain close
  std::uint64_t bytes_sent_ = 0;
  core::Timer linger_timer_;
  LoopServices& services_;
  ResponseSlotPool& slot_pool_;
  const ConnectionLimits& limits_;
  ConnectionEvents& events_;
  Protocol* protocol_ = nullptr;
  core::BufferChain out_;
  core::BufferChain stash_;
  core::IntrusiveList<ResponseSlot, &ResponseSlot::node> slots_;
  sockaddr_storage peer_{};
};

}  // namespace rs::net
