#include "net/connection.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

#include "core/log.hpp"
#include "net/tls/ktls.hpp"
#include "net/tls/tls_session.hpp"

namespace rs::net {

void Protocol::on_input_end(Connection& conn) {
  conn.close();
}
// Lingering, so a client still sending when we stop reads its answers instead of a reset.
void Protocol::on_shutdown(Connection& conn) {
  conn.close_lingering(conn.limits().shutdown_linger_ms);
}

Connection::Connection(int fd, std::uint64_t id, ConnectionContext& context)
    : fd_(fd),
      id_(id),
      wake_(&Connection::on_wake, this),
      context_(context),
      out_(context.services.chunks()),
      stash_(context.services.chunks()) {}

Connection::~Connection() {
  assert(slots_.empty() && protocol_ == nullptr);
  // Here, not at the close: a send in flight may still read the session's ciphertext.
  if (tls_ != nullptr) context_.tls->close(tls_);
}

void DrivenConnection::start(ProtocolFactory& protocols, const ListenSocket& accepted) {
  listener_use_ = accepted.use;
  if (!accepted.proxy) {
    protocol_ = protocols.open(*this);
  } else if (!await_proxy_header()) {
    return;
  }
  if (tls::TlsEndpoint* endpoint = context_.tls; accepted.tls && endpoint != nullptr) {
    tls_ = endpoint->open();
    if (tls_ == nullptr) {
      core::log_warn("connection {}: no TLS session (out of memory): closed", id_);
      context_.counters.tls_handshake_errors.add();
      abort();
      settle();
      return;
    }
    core::Timer& timer = tls_->handshake_timer();
    timer.set(&Connection::on_handshake_timeout, static_cast<Connection*>(this));
    context_.services.timers().arm(timer, endpoint->handshake_timeout_ms());
  }
  update_receiving();
}

// Only a trusted peer may name another client; the header must come within the timeout. With
// TLS the header comes first, and the handshake timer (armed after this) bounds both.
bool Connection::await_proxy_header() {
  assert(context_.protocols != nullptr && context_.proxy != nullptr);
  if (context_.proxy == nullptr || !context_.proxy->trusted.contains(peer())) {
    fail_proxy_header(context_.counters.proxy_untrusted_peers, "a peer outside --trusted-proxy");
    return false;
  }
  wake_.set(context_.services.timers(), context_.proxy->header_timeout_ms);
  return true;
}

// The PROXY header from the bytes received so far: parsed in place from the receive buffer, and
// only when it arrives in pieces is its start copied, to the stash (at most kMaxHeaderBytes, and
// only until it is whole). Once it is, the protocol opens and hears of the client; returns the
// bytes after the header (empty while it is incomplete or after a bad one, which closes).
std::span<const std::byte> Connection::take_proxy_header(std::span<const std::byte> fresh) {
  proxy::Header header;
  std::size_t held = 0;  // the header's bytes from earlier receives
  if (stash_.empty()) {
    header = proxy::parse(fresh);
  } else {
    std::byte joined[proxy::kMaxHeaderBytes];
    held = stash_.copy_out(0, joined);
    const std::size_t added = std::min(fresh.size(), sizeof(joined) - held);
    std::memcpy(joined + held, fresh.data(), added);
    header = proxy::parse({joined, held + added});
  }
  switch (header.status) {
    case proxy::Header::Status::kIncomplete:
      // The parser is sure before kMaxHeaderBytes: all of these bytes fit under the bound.
      stash_.append(fresh);
      return {};
    case proxy::Header::Status::kBad:
      fail_proxy_header(context_.counters.proxy_header_errors, header.error);
      return {};
    case proxy::Header::Status::kDone:
      break;
  }
  stash_.clear();
  wake_.cancel(context_.services.timers());
  context_.counters.proxy_headers.add();
  protocol_ = context_.protocols->open(*this);
  if (header.source.family != IpAddress::kNone) {
    const sockaddr_storage client = header.source.to_sockaddr(header.source_port);
    call_protocol([&](Protocol& p) { p.on_proxied_peer(*this, client); });
  }
  return fresh.subspan(header.size - held);
}

void Connection::fail_proxy_header(core::Counter& counter, const char* why) {
  counter.add();
  core::log_debug("connection {}: PROXY protocol: {}: closed", id_, why);
  abort();
  settle();
}

// A handshake not done in --handshake-timeout-ms: the client is cut (it has been told nothing
// it could read).
void Connection::on_handshake_timeout(core::Timer& timer) {
  auto& self = *static_cast<Connection*>(timer.context());
  if (self.state_ == State::kClosed) return;
  self.context_.counters.tls_handshake_timeouts.add();
  self.abort();  // the close settles when the turn ends
}

core::BufferChain& DrivenConnection::pending_output() {
  if (tls_ == nullptr) return out_;
  // kTLS: the keys go to the kernel before the first plaintext leaves, once OpenSSL's own records
  // (the tickets, answers it sealed meanwhile) have all left: the kernel's records follow them.
  if (tls_->kernel_tls_due() && !out_.empty() &&
      (state_ == State::kOpen || state_ == State::kClosing)) {
    hand_keys_to_kernel();
  }
  if (tls_->established() && !tls_->failed() && !out_.empty() && !tls_->seal(out_)) {
    send_this_turn();  // the connection closes when it settles (the backend is sending now)
  }
  return tls_->wire();
}

bool DrivenConnection::kernel_tls() const {
  return tls_ != nullptr && tls_->kernel_tls();
}

// Plaintext cannot leave before the handshake is done, nor after the session failed.
bool Connection::output_empty() const {
  if (tls_ == nullptr) return out_.empty();
  return tls_->wire().empty() && (out_.empty() || !tls_->established() || tls_->failed());
}

std::size_t Connection::sendable_bytes() const {
  return out_.size() + (tls_ != nullptr ? tls_->wire().size() : 0);
}

core::BufferChain& Connection::output() {
  return slots_.empty() ? out_ : slots_.back()->after;
}

void Connection::write(std::string_view bytes) {
  output().append(bytes);
  flush();
}

void Connection::flush() {
  if (state_ != State::kClosed) send_this_turn();
}

void Connection::send_this_turn() {
  context_.turn.flush_this_turn(static_cast<DrivenConnection&>(*this));
}

void Connection::redeliver_this_turn() {
  context_.turn.redeliver_this_turn(static_cast<DrivenConnection&>(*this));
}

ResponseSlot* Connection::defer() {
  ResponseSlot* slot = context_.slots.make(context_.services.chunks());
  slots_.push_back(*slot);
  return slot;
}

void Connection::complete(ResponseSlot* slot) {
  slot->done = true;
  if (state_ == State::kClosed) return;  // aborted: nobody is listening any more
  release_slots_in_order();
  flush();
}

void Connection::flush_deferred(ResponseSlot* slot) {
  if (state_ == State::kClosed || slots_.front() != slot || slot->response.empty()) return;
  out_.splice_back(slot->response);
  flush();
}

std::size_t Connection::queued_bytes() const {
  std::size_t n = sendable_bytes();
  for (const ResponseSlot& s : slots_)
    n += s.response.size() + s.after.size();
  return n;
}

std::size_t Connection::queued_bytes_through(const ResponseSlot* slot) const {
  std::size_t n = sendable_bytes();
  for (const ResponseSlot& s : slots_) {
    n += s.response.size();
    if (&s == slot) break;
    n += s.after.size();
  }
  return n;
}

std::uint64_t Connection::server_paused_ms() const {
  if (pause_reasons_ == 0) return paused_ms_;
  return paused_ms_ + (context_.services.now_ms() - paused_since_ms_);
}

// Every change of the pause reasons goes through here, so the paused time is kept exactly.
void Connection::set_pause_reasons(std::uint8_t reasons) {
  const std::uint64_t now = context_.services.now_ms();
  if (pause_reasons_ == 0 && reasons != 0) {
    paused_since_ms_ = now;
  } else if (pause_reasons_ != 0 && reasons == 0) {
    paused_ms_ += now - paused_since_ms_;
  }
  pause_reasons_ = reasons;
  update_receiving();
}

void Connection::pause_input() {
  set_pause_reasons(static_cast<std::uint8_t>(pause_reasons_ | kPausedByProtocol));
}

void Connection::resume_input() {
  if (!input_paused()) return;
  set_pause_reasons(pause_reasons_ & static_cast<std::uint8_t>(~kPausedByProtocol));
  // Bytes that arrived before or during the pause would otherwise wait for the next receive.
  if ((!stash_.empty() || end_pending_) && state_ == State::kOpen) redeliver_this_turn();
}

void Connection::set_idle(bool idle) {
  auto& self = static_cast<DrivenConnection&>(*this);
  TurnLists& turn = context_.turn;
  if (idle && state_ == State::kOpen) {
    if (!self.idle_node.linked()) turn.idle.push_back(self);
  } else if (self.idle_node.linked()) {
    turn.idle.remove(self);
  }
}

void Connection::close() {
  if (state_ != State::kOpen) return;
  set_idle(false);
  state_ = State::kClosing;
  update_receiving();
  flush();
}

void Connection::close_lingering(std::uint64_t linger_ms) {
  if (state_ != State::kOpen) return;
  linger_ms_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(linger_ms, UINT32_MAX));
  close();
}

void Connection::wake_at(std::uint64_t at_ms) {
  if (state_ == State::kOpen || (state_ == State::kClosing && !kernel_draining())) {
    wake_.set_at(context_.services.timers(), at_ms);
  }
}

void Connection::on_wake(core::Timer& timer) {
  auto& self = *static_cast<Connection*>(timer.context());
  if (!self.wake_.reached(self.context_.services.timers())) return;
  if (self.state_ == State::kLingering) {
    self.abort();  // the peer did not close in time; the close settles when the turn ends
    return;
  }
  if (self.state_ == State::kClosed) return;
  if (self.kernel_draining()) {
    self.send_this_turn();  // the close settles when the turn ends, and checks again
    return;
  }
  if (self.protocol_ == nullptr) {
    // Open without a protocol: a PROXY header that did not arrive in time.
    self.context_.counters.proxy_header_timeouts.add();
    self.abort();  // the close settles when the turn ends
    return;
  }
  self.call_protocol([&](Protocol& p) { p.on_timer(self); });
}

void Connection::abort() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  receiving_wanted_ = false;
  wake_.cancel(context_.services.timers());
  if (tls_ != nullptr) context_.services.timers().cancel(tls_->handshake_timer());
  // out_ is not cleared here: a send in flight may still read it. Its chunks go back to the pool
  // with the connection, after the last completion.
  stash_.clear();
  context_.turn.forget(static_cast<DrivenConnection&>(*this));
  transport().close_transport();
  send_this_turn();  // the protocol hears of the close when the turn ends
}

Transport& Connection::transport() {
  return static_cast<DrivenConnection&>(*this);
}

sockaddr_storage Connection::peer() const {
  sockaddr_storage peer{};
  // After the transport closed, the descriptor number may already name another connection.
  if (state_ != State::kClosed) {
    socklen_t len = sizeof(peer);
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &len) != 0) peer = {};
  }
  return peer;
}

// Every protocol callback goes through here: no re-entry, then settle what it did.
template <class F>
void Connection::call_protocol(F&& f) {
  in_protocol_call_ = true;
  f(*protocol_);
  in_protocol_call_ = false;
  settle();
}

void DrivenConnection::deliver(std::span<const std::byte> fresh, BufferOwner* owner,
                               std::uint32_t buffer_id) {
  // Input that arrives after close() was called is dropped: nobody will answer it.
  if (state_ != State::kOpen) return;
  // Open without a protocol: a ,proxy listener's connection whose PROXY header is not yet in.
  if (protocol_ == nullptr) [[unlikely]] {
    fresh = take_proxy_header(fresh);
    if (protocol_ == nullptr || state_ != State::kOpen || fresh.empty()) return;
  }
  if (tls_ != nullptr) {
    // The plaintext joins the stash, and the protocol is offered the stash.
    if (!decrypt(fresh)) return;
    fresh = {};
    owner = nullptr;
    buffer_id = 0;
    if (stash_.empty()) return;
  }
  if (!input_paused()) {
    Input input(stash_, fresh, owner, buffer_id);
    call_protocol([&](Protocol& p) { p.on_input(*this, input); });
    fresh = input.fresh_unconsumed();
  }
  // What the protocol left (or was not given, while paused) waits in the stash (on TLS it is
  // there already).
  if (state_ == State::kOpen && (!fresh.empty() || tls_ != nullptr)) {
    stash_.append(fresh);
    if (stash_.size() > context_.limits.max_stash_bytes) {
      context_.counters.stash_overflows.add();
      abort();
      settle();
    }
  }
}

void DrivenConnection::redeliver() {
  if (state_ != State::kOpen || input_paused()) return;
  if (!stash_.empty()) deliver({}, nullptr, 0);
  // The end of input waited behind the stashed bytes; they have been offered now.
  if (end_pending_ && state_ == State::kOpen && !input_paused()) {
    end_pending_ = false;
    call_protocol([&](Protocol& p) { p.on_input_end(*this); });
  }
}

void DrivenConnection::deliver_end() {
  // Once: a TLS peer's close_notify ends the input before its FIN does.
  if (input_ended_ && state_ != State::kLingering) return;
  input_ended_ = true;
  update_receiving();
  if (state_ == State::kLingering) {
    abort();  // the peer has read our answer and closed: done
    settle();
    return;
  }
  if (state_ != State::kOpen) return;
  if (protocol_ == nullptr) {
    // The peer closed before its PROXY header was whole: a bad header if it had begun one (a
    // balancer's TCP health check connects and closes without a byte).
    if (!stash_.empty()) {
      fail_proxy_header(context_.counters.proxy_header_errors, "the peer closed within the header");
    } else {
      abort();
      settle();
    }
    return;
  }
  if (input_paused() || !stash_.empty()) {
    end_pending_ = true;  // after the bytes that came before it
    if (!input_paused()) redeliver_this_turn();
    return;
  }
  call_protocol([&](Protocol& p) { p.on_input_end(*this); });
}

void DrivenConnection::deliver_hangup() {
  if (!watching_hangup() || protocol_ == nullptr) return;
  hangup_told_ = true;
  transport().set_receiving(false);  // the backend stops watching for it
  call_protocol([&](Protocol& p) { p.on_peer_hangup(*this); });
}

void DrivenConnection::output_sent(std::size_t n, core::ChunkSink* used) {
  if (state_ == State::kClosed) return;
  bytes_sent_ += n;
  if (n > 0) last_sent_ms_ = context_.services.now_ms();
  (tls_ != nullptr ? tls_->wire() : out_).consume(n, used);
  // Everything sendable is in the kernel. Deferred answers may still be owed: one that streams
  // (a large file) waits for this to read on, also once a close has been asked for.
  if (output_empty() && (state_ == State::kOpen || state_ == State::kClosing)) {
    call_protocol([&](Protocol& p) { p.on_output_drained(*this); });
  } else {
    settle();
  }
}

void DrivenConnection::shut_down() {
  if (state_ != State::kOpen) return;
  if (protocol_ == nullptr) {  // still waiting for a PROXY header: nothing is owed
    abort();
    settle();
    return;
  }
  call_protocol([&](Protocol& p) { p.on_shutdown(*this); });
}

void Connection::settle() {
  if (in_protocol_call_) return;  // the callback's own settle follows
  if (tls_ != nullptr) {
    if (tls_->failed() && state_ == State::kOpen) fail_tls();
    // Closing before the handshake is done, or after the session failed: what the protocol
    // wrote can never be sealed.
    if (state_ == State::kClosing && (!tls_->established() || tls_->failed())) out_.clear();
  }
  if (state_ == State::kClosing && output_empty() && slots_.empty() &&
      !transport().send_in_flight()) {
    if (tls_ != nullptr && tls_->kernel_tls() && !kernel_output_drained()) return;
    if (tls_ != nullptr && tls_->established() && !tls_->close_notify_sent() && !tls_->failed()) {
      // The peer learns that the stream ends here, not that it was cut: close_notify goes
      // before the FIN.
      tls_->close_notify();
      send_this_turn();
      return;
    }
    if (linger_ms_ > 0 && !input_ended_) {
      state_ = State::kLingering;
      transport().shutdown_write();
      update_receiving();
      wake_.set(context_.services.timers(), linger_ms_);  // replaces the protocol's wake-up
      return;
    }
    abort();
  }
  if (state_ == State::kClosed) {
    notify_closed();
    // Nothing is left to do for it this turn (abort() listed it only for this settle).
    context_.turn.forget(static_cast<DrivenConnection&>(*this));
    return;
  }
  update_backpressure();
  if (!output_empty() && !transport().send_in_flight()) send_this_turn();
}

void Connection::update_receiving() {
  const bool want = !input_ended_ && ((state_ == State::kOpen && pause_reasons_ == 0) ||
                                      state_ == State::kLingering);
  if (want == receiving_wanted_) return;
  receiving_wanted_ = want;
  if (!want) context_.turn.stop_waiting_for_buffers(static_cast<DrivenConnection&>(*this));
  transport().set_receiving(want);
}

void Connection::update_backpressure() {
  const std::size_t queued = queued_bytes();
  const ConnectionLimits& limits = context_.limits;
  if ((pause_reasons_ & kPausedByBackpressure) == 0 && queued > limits.output_high_water_bytes) {
    context_.counters.input_pauses.add();
    set_pause_reasons(static_cast<std::uint8_t>(pause_reasons_ | kPausedByBackpressure));
  } else if ((pause_reasons_ & kPausedByBackpressure) != 0 &&
             queued <= limits.output_low_water_bytes) {
    set_pause_reasons(pause_reasons_ & static_cast<std::uint8_t>(~kPausedByBackpressure));
  }
}

void Connection::release_slots_in_order() {
  while (!slots_.empty() && slots_.front()->done) {
    ResponseSlot* slot = slots_.pop_front();
    out_.splice_back(slot->response);
    out_.splice_back(slot->after);
    context_.slots.destroy(slot);
  }
}

// The protocol learns of the close once; its slots live until then so that late complete()
// calls from its timers stay harmless.
void Connection::notify_closed() {
  if (Protocol* p = std::exchange(protocol_, nullptr)) p->on_close(*this);
  while (!slots_.empty())
    context_.slots.destroy(slots_.pop_front());
}

// Ciphertext in: the handshake advances, and the plaintext of every whole record joins the
// stash. Whatever the session has for the peer (the handshake's next flight, tickets, an alert)
// is sent this turn. False when the connection is closing now.
bool Connection::decrypt(std::span<const std::byte> ciphertext) {
  const bool was_established = tls_->established();
  const tls::TlsSession::Step step = tls_->receive(ciphertext, stash_);
  if (step != tls::TlsSession::Step::kHandshaking) {
    context_.services.timers().cancel(tls_->handshake_timer());  // done, one way or another
  }
  if (!was_established && tls_->established()) {
    (tls_->resumed() ? context_.counters.tls_resumed : context_.counters.tls_handshakes).add();
  }
  if (!tls_->wire().empty()) send_this_turn();
  switch (step) {
    case tls::TlsSession::Step::kHandshaking:
    case tls::TlsSession::Step::kOpen:
      break;
    case tls::TlsSession::Step::kPeerClosed:
      // As a FIN: what came before it is offered first (deliver_end() waits behind the stash).
      static_cast<DrivenConnection&>(*this).deliver_end();
      break;
    case tls::TlsSession::Step::kPlainHttp:
      context_.counters.tls_plain_http.add();
      tls_->wire().append(tls::kPlainHttpAnswer);
      close_lingering(context_.limits.shutdown_linger_ms);
      return false;
    case tls::TlsSession::Step::kFailed:
      fail_tls();
      return false;
  }
  return state_ == State::kOpen;
}

// kTLS: whether what the kernel sealed has all gone into TCP, close_notify last
// (ktls::CloseDrain says why a close must wait for it); if not, the wake-up timer checks again
// (on_wake), for at most shutdown_linger_ms. It replaces the protocol's wake-up, which has
// nothing left to do: its answers are all sent.
bool Connection::kernel_output_drained() {
  tls::ktls::KernelSocket socket{fd_};
  core::TimerWheel& timers = context_.services.timers();
  switch (tls_->close_drain().check(socket, timers.now_ms(), context_.limits.shutdown_linger_ms,
                                    !tls_->failed())) {
    case tls::ktls::CloseDrain::Next::kWait:
      wake_.set(timers, tls_->close_drain().wait_ms());
      return false;
    case tls::ktls::CloseDrain::Next::kBoundPassed:
      context_.counters.tls_ktls_drain_timeouts.add();
      core::log_debug("connection {}: kTLS: the peer took not all of the output in {} ms: closed",
                      id_, context_.limits.shutdown_linger_ms);
      break;
    case tls::ktls::CloseDrain::Next::kClose:
      break;
  }
  tls_->close_notify();  // only marks it sent: the kernel sealed it (or will not)
  return true;
}

bool Connection::kernel_draining() const {
  return tls_ != nullptr && state_ == State::kClosing && tls_->close_drain().started();
}

void Connection::hand_keys_to_kernel() {
  tls::ktls::TxKeys keys;
  tls::ktls::InstallError refused;
  if (!tls_->export_tx_keys(keys)) {
    // A key update before the keys could go, or a suite the kernel is not given.
    context_.counters.tls_ktls_fallbacks.add();
    core::log_debug("connection {}: kTLS: no keys to give the kernel: sealing in user space", id_);
    return;
  }
  if (!tls::ktls::install_tx(fd_, keys, refused)) {
    // The socket still sends as plain TCP (the ULP without keys passes through): OpenSSL goes on
    // sealing, from the sequence it is at.
    context_.counters.tls_ktls_fallbacks.add();
    core::log_debug("connection {}: kTLS refused (setsockopt {}: {}): sealing in user space", id_,
                    refused.step, std::strerror(refused.error));
    return;
  }
  tls_->use_kernel_tls();
  context_.counters.tls_ktls_connections.add();
}

// A handshake or record that failed: the alert OpenSSL wrote goes out, then the close (deferred
// answers are waited for as on any close, and dropped: nothing can be sealed any more). It
// lingers, so that input still unread (the rest of a flight, pipelined records) does not turn
// the close into a reset that discards the alert.
void Connection::fail_tls() {
  (tls_->established() ? context_.counters.tls_record_errors
                       : context_.counters.tls_handshake_errors)
      .add();
  core::log_debug("connection {}: TLS: {}", id_, tls_->failure());
  out_.clear();
  close_lingering(context_.limits.shutdown_linger_ms);
}

}  // namespace rs::net
