// A connection in two parts. Connection is the handle protocol code holds: ordered output
// (immediate and deferred answers), input pause/resume, close. DrivenConnection is the part the
// loop and the backend drive: they hand it input, tell it what the kernel took, and end its turn.
// Behind both is the logic every backend shares (the stash of unconsumed input, backpressure,
// graceful and lingering close); what differs per backend is a net::Transport. On a TLS server
// the same logic runs each connection's TLS session (net/tls/tls_session.hpp): ciphertext in
// is decrypted into the stash, and output is sealed into records when the backend sends.
//
// Re-entrancy rule: a call protocol code makes on its connection never calls back into the
// protocol. Work that may (finishing a close, Protocol::on_close) happens when the connection
// settles: right after a protocol callback returns, or when the loop ends its turn.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/buffer.hpp"
#include "core/deadline.hpp"
#include "core/intrusive_list.hpp"
#include "core/slab_pool.hpp"
#include "net/listen_socket.hpp"
#include "net/loop_counters.hpp"
#include "net/proxy_header.hpp"
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

class TurnLists;
namespace tls {
class TlsEndpoint;
class TlsSession;
}  // namespace tls

// What every connection of a loop shares; owned by the loop, one reference per connection.
struct ConnectionContext {
  LoopServices& services;
  ResponseSlotPool& slots;
  const ConnectionLimits& limits;
  LoopCounters& counters;
  TurnLists& turn;
  // Set when the server has a TLS listener: connections accepted on one speak TLS.
  tls::TlsEndpoint* tls = nullptr;
  // The loop's protocols, and the PROXY protocol settings: a ,proxy listener's connection opens
  // its protocol once its PROXY header is in.
  ProtocolFactory* protocols = nullptr;
  const ProxyConfig* proxy = nullptr;
};

// The handle protocol code holds.
class Connection {
 public:
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // --- output, leaving in the order it was produced ---
  // The chain the next immediate answer goes to. Bytes appended here inside a protocol
  // callback are sent this loop turn; outside one (a timer) call flush() afterwards.
  core::BufferChain& output();
  void write(std::string_view bytes);
  // Sends what output() holds this turn.
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
  // Output queued ahead of the end of `slot`'s answer: what the peer must take before that answer
  // is through (answers produced after it do not count).
  std::size_t queued_bytes_through(const ResponseSlot* slot) const;
  // Input received and not yet handed to the protocol (it waits for a resume).
  bool has_stashed_input() const { return !stash_.empty() || end_pending_; }
  // Every byte owed, deferred answers (and what waits behind them) included.
  std::size_t queued_bytes() const;
  // Only the bytes that can go out now: output not held back behind an unfinished answer.
  std::size_t sendable_bytes() const;
  bool has_deferred() const { return !slots_.empty(); }

  // --- input ---
  // While paused the protocol gets no on_input: bytes already received wait in the stash and
  // are delivered again (without waiting for new ones) soon after resume_input().
  void pause_input();
  void resume_input();
  bool input_paused() const { return (pause_reasons_ & kPausedByProtocol) != 0; }
  bool input_ended() const { return input_ended_; }
  // How long, in all, the server has kept this connection from reading so far (its output
  // backpressure or the protocol's pause), in ms of the loop's clock. A deadline that measures
  // the client's time (a head or a body arriving) leaves this out.
  std::uint64_t server_paused_ms() const;

  // --- the protocol's timer ---
  // One timer per connection: Protocol::on_timer runs once the loop's clock reaches at_ms,
  // replacing any wake-up asked for before (kNever: none). The protocol keeps its deadlines as
  // numbers and asks for the earliest; moving a wake-up later costs nothing (core::Deadline).
  // Ignored once the connection lingers or has closed.
  static constexpr std::uint64_t kNever = core::Deadline::kNever;
  void wake_at(std::uint64_t at_ms);

  // --- lifetime ---
  // An idle connection (kept between requests, or new and silent) may be closed by the loop at
  // the connection cap to admit a waiting client, oldest first, as nginx reuses its keep-alive
  // connections. The protocol says when a connection is idle and when it no longer is; a close
  // ends it. Marking an idle connection idle again keeps its place.
  void set_idle(bool idle);
  void close();  // after queued and deferred output has been sent
  // Like close(), then shut down the sending side and read (and drop) the peer's input until
  // it closes or linger_ms pass, so a client still sending gets our last answer, not a reset.
  void close_lingering(std::uint64_t linger_ms);
  void abort();  // now; queued output is dropped; on_close follows when the connection settles
  bool open() const { return state_ == State::kOpen; }
  bool closed() const { return state_ == State::kClosed; }

  std::uint64_t bytes_sent() const { return bytes_sent_; }
  // When output last reached the kernel (the loop's clock, ms); 0 before the first send.
  std::uint64_t last_sent_ms() const { return last_sent_ms_; }
  // The socket's peer, asked of the kernel at each call (callers keep what they need of it);
  // zero once the transport has closed. On a ,proxy listener that is the proxy: the client its
  // PROXY header named is told to the protocol (Protocol::on_proxied_peer).
  sockaddr_storage peer() const;
  LoopServices& services() { return context_.services; }
  const ConnectionLimits& limits() const { return context_.limits; }
  std::uint64_t id() const { return id_; }
  int fd() const { return fd_; }
  // What the listener this connection came through is for (known when the protocol opens).
  ListenerUse listener_use() const { return listener_use_; }
  Protocol* protocol() const { return protocol_; }

 private:
  friend class DrivenConnection;
  // kLingering: output sent and FIN sent, input drained until EOF or the linger timer. A kTLS
  // connection stays kClosing until the kernel has pushed what it sealed (kernel_draining()).
  enum class State : std::uint8_t { kOpen, kClosing, kLingering, kClosed };
  enum PauseReason : std::uint8_t { kPausedByProtocol = 1, kPausedByBackpressure = 2 };

  // Only a DrivenConnection is ever made.
  Connection(int fd, std::uint64_t id, ConnectionContext& context);
  ~Connection();

  template <class F>
  void call_protocol(F&& f);
  void settle();
  void send_this_turn();
  void redeliver_this_turn();
  void set_pause_reasons(std::uint8_t reasons);
  void update_receiving();
  void update_backpressure();
  void release_slots_in_order();
  void notify_closed();
  static void on_wake(core::Timer& timer);
  Transport& transport();  // the backend's side: every Connection is a DrivenConnection
  // Nothing to send now: output() and, on TLS, the ciphertext (plaintext waits for the
  // handshake: it cannot leave before).
  bool output_empty() const;
  // TLS: ciphertext in, plaintext to the stash (false: the connection is closing).
  bool decrypt(std::span<const std::byte> ciphertext);
  void fail_tls();
  // kTLS: the session's sending keys go to the kernel (or it goes on sealing in user space).
  void hand_keys_to_kernel();
  // kTLS, closing: false while the kernel still holds output for the peer (its wake-up timer
  // checks again); kernel_draining() from the first check until the close goes ahead.
  bool kernel_output_drained();
  bool kernel_draining() const;
  static void on_handshake_timeout(core::Timer& timer);
  // A ,proxy listener's connection has no protocol until its PROXY header is in (protocol_ null
  // while open means that): a trusted peer, then the header within the timeout (the wake-up
  // timer, which no protocol uses yet), its start kept in the stash while it comes in pieces.
  bool await_proxy_header();
  std::span<const std::byte> take_proxy_header(std::span<const std::byte> fresh);
  void fail_proxy_header(core::Counter& counter, const char* why);

  // Small fields first, packed: every idle connection pays for each byte here.
  int fd_;
  std::uint32_t linger_ms_ = 0;  // 0: plain close
  State state_ = State::kOpen;
  std::uint8_t pause_reasons_ = 0;
  bool receiving_wanted_ = false;
  bool input_ended_ = false;
  bool in_protocol_call_ = false;
  bool end_pending_ = false;  // EOF arrived while stashed input still waited
  bool hangup_told_ = false;  // the protocol heard of a FIN seen while not reading
  ListenerUse listener_use_ = ListenerUse::kServe;
  std::uint64_t last_sent_ms_ = 0;
  std::uint64_t paused_ms_ = 0;        // ended pauses, in all
  std::uint64_t paused_since_ms_ = 0;  // the pause under way, if pause_reasons_ != 0
  std::uint64_t id_;
  std::uint64_t bytes_sent_ = 0;
  core::Deadline wake_;  // the protocol's wake-up, or the end of a lingering close
  ConnectionContext& context_;
  Protocol* protocol_ = nullptr;
  tls::TlsSession* tls_ = nullptr;  // a TLS connection's session (context_.tls set)
  core::BufferChain out_;
  core::BufferChain stash_;
  core::IntrusiveList<ResponseSlot, &ResponseSlot::node> slots_;
};

// The part of a connection that its loop and backend drive. A backend's connection derives
// from it and implements net::Transport.
class DrivenConnection : public Connection, private Transport {
 public:
  // Opens the connection's protocol (which sees listener_use()) and starts receiving. A
  // connection accepted on a TLS listener begins with a handshake.
  void start(ProtocolFactory& protocols, const ListenSocket& accepted);
  // Input arrived: fresh bytes in a buffer that owner lends (buffer_id names it).
  void deliver(std::span<const std::byte> fresh, BufferOwner* owner, std::uint32_t buffer_id);
  void deliver_end();  // the peer sent FIN
  // The backend saw the peer's FIN while not reading (EPOLLRDHUP, a POLLRDHUP poll): told to the
  // protocol once (Protocol::on_peer_hangup).
  void deliver_hangup();
  // Whether the backend should watch for the peer's FIN although it is not reading: open, input
  // paused, not yet ended, not yet told.
  bool watching_hangup() const {
    return state_ == State::kOpen && !receiving_wanted_ && !input_ended_ && !hangup_told_;
  }
  void redeliver();  // the stash again, after resume_input()
  // n bytes of pending_output() reached the kernel. An open connection settles (a closed one
  // drops the news: its output goes back with it). Used-up output chunks go to `used`, or back to
  // the pool when it is null (a zero-copy send's chunks may still be read by the kernel).
  void output_sent(std::size_t n, core::ChunkSink* used = nullptr);
  // The server is stopping: the protocol finishes what is in flight, then closes.
  void shut_down();
  // The loop's end of this connection's turn: finish a graceful close once drained, apply
  // backpressure, tell the protocol of a close.
  void turn_done() { settle(); }

  // What the backend sends next: the output, or on TLS the ciphertext (the output sealed into
  // records first, all of it at once: a turn's answers leave in as few records as fit). With kTLS
  // (net/tls/ktls.hpp) the plaintext, which the kernel seals as it sends.
  core::BufferChain& pending_output();
  // The kernel seals this connection's output (kTLS): it copies the plaintext into its records
  // anyway, so zero-copy sends gain nothing there, and they stay off.
  bool kernel_tls() const;
  bool receiving_wanted() const { return receiving_wanted_; }
  // A backend whose sends block (threads) reads nothing while it waits in one: that time, in ms,
  // counts as a pause of the server's, as the event loops' backpressure does (unless a pause
  // was under way anyway, which already counts it).
  void note_blocked_send(std::uint64_t ms) {
    if (pause_reasons_ == 0) paused_ms_ += ms;
  }

  core::ListNode all_node;      // every connection of the loop, until freed
  core::ListNode flush_node;    // output or a close to handle when the turn ends
  core::ListNode resumed_node;  // input resumed with bytes waiting in the stash
  core::ListNode starved_node;  // wants to read, but no receive buffer is free
  core::ListNode idle_node;     // idle: the protocol said so (Connection::set_idle)

 protected:
  DrivenConnection(int fd, std::uint64_t id, ConnectionContext& context)
      : Connection(fd, id, context) {}
  ~DrivenConnection() = default;
  TurnLists& turn() { return context_.turn; }
  LoopCounters& counters() { return context_.counters; }

 private:
  friend class Connection;  // reaches the Transport through transport()
};

using ConnectionList = core::IntrusiveList<DrivenConnection, &DrivenConnection::all_node>;

// The work a loop keeps for the end of its turn, as lists of its connections: output to send
// and closes to settle (flush), input resumed with bytes in the stash (resumed), and readers
// waiting for receive buffers to come back (starved); and its idle connections. A connection is
// on each at most once.
class TurnLists {
 public:
  void flush_this_turn(DrivenConnection& conn) {
    if (!conn.flush_node.linked()) flush.push_back(conn);
  }
  void redeliver_this_turn(DrivenConnection& conn) {
    if (!conn.resumed_node.linked()) resumed.push_back(conn);
  }
  void wait_for_buffers(DrivenConnection& conn) {
    if (!conn.starved_node.linked()) starved.push_back(conn);
  }
  void stop_waiting_for_buffers(DrivenConnection& conn) {
    if (conn.starved_node.linked()) starved.remove(conn);
  }
  // The transport closed: the connection leaves every list.
  void forget(DrivenConnection& conn) {
    if (conn.flush_node.linked()) flush.remove(conn);
    if (conn.resumed_node.linked()) resumed.remove(conn);
    if (conn.idle_node.linked()) idle.remove(conn);
    stop_waiting_for_buffers(conn);
  }
  bool empty() const { return flush.empty() && resumed.empty(); }

  core::IntrusiveList<DrivenConnection, &DrivenConnection::flush_node> flush;
  core::IntrusiveList<DrivenConnection, &DrivenConnection::resumed_node> resumed;
  core::IntrusiveList<DrivenConnection, &DrivenConnection::starved_node> starved;
  // Idle connections, oldest first (not a list of the turn's work: the loop reads it at the cap).
  core::IntrusiveList<DrivenConnection, &DrivenConnection::idle_node> idle;
};

}  // namespace rs::net
