#include "net/http/session.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>
#include <type_traits>

#include "core/deadline.hpp"
#include "net/http/forwarded_for.hpp"
#include "net/http/handlers.hpp"
#include "net/http/response.hpp"
#include "net/http/session_factory.hpp"

namespace rs::http {

namespace {

std::string_view as_chars(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Method method_of(std::string_view m) {
  if (m == "GET") return Method::kGet;
  if (m == "HEAD") return Method::kHead;
  if (m == "POST") return Method::kPost;
  if (m == "OPTIONS") return Method::kOptions;
  return Method::kOther;
}

}  // namespace

HttpSession::HttpSession(SessionFactory& factory, net::Connection& conn)
    : factory_(factory), conn_(conn) {
  // A new connection gets the header timeout until its first request begins, as nginx applies
  // client_header_timeout to it: a client that connects and sends nothing is not a keep-alive
  // client resting after an answer. If it expires before a byte arrives the close is silent
  // (and counted as idle). The idle timeout runs from the end of each response.
  //
  // A silent new connection counts as idle (the loop may close it at the connection cap to
  // admit another client) only once it has been silent for kSilentBeforeIdleMs: a client that
  // has just connected is about to send, and closing it would only trade one client for another.
  const std::uint64_t header_ms = factory_.config().header_timeout_ms;
  silent_start_ = header_ms > kSilentBeforeIdleMs;
  set_read_deadline(silent_start_ ? kSilentBeforeIdleMs : header_ms);
}

HttpSession::~HttpSession() {
  give_back_state();
  while (Pending* p = pending_.pop_front())
    factory_.pendings().destroy(p);
}

void HttpSession::on_input(net::Connection& /*conn*/, net::Input& input) {
  while (!input.empty()) {
    if (phase_ == Phase::kClosing) {
      input.consume(input.size());  // nobody will answer it
      return;
    }
    if (phase_ == Phase::kIdle) {
      skip_empty_lines(input);
      if (input.empty()) break;
      if (should_wait()) {
        // Too many answers outstanding: leave the rest in the stash until they drain. The client
        // is waiting for us, not idle: no read deadline meanwhile (the send timeout watches).
        paused_ = true;
        factory_.counters().pipeline_pauses.add();
        read_at_ = net::Connection::kNever;
        conn_.pause_input();
        break;
      }
      phase_ = Phase::kHead;
      silent_start_ = false;
      conn_.set_idle(false);
      assert(state_ == nullptr && "a request state is held from a request's first byte only");
      state_ = factory_.take_request_state();
      state_->first_byte_us = factory_.services().now_us();
      set_read_deadline(factory_.config().header_timeout_ms);  // absolute: from the first byte
    }
    if (phase_ == Phase::kHead && !read_head(input)) break;
    if (phase_ == Phase::kBody && !read_body(input)) break;
  }
  watch_send();
}

// RFC 9112 2.2: empty lines (CRLF) before a request line are ignored. Skipped while idle, they
// neither start the header deadline nor renew the idle one. A CR whose LF has not arrived yet
// is left to the parser, which skips it as part of the head.
void HttpSession::skip_empty_lines(net::Input& input) {
  while (!input.empty()) {
    const std::string_view bytes = as_chars(input.front());
    std::size_t n = 0;
    while (n + 1 < bytes.size() && bytes[n] == '\r' && bytes[n + 1] == '\n')
      n += 2;
    if (n == 0) return;
    input.consume(n);
  }
}

// Parses the head straight from the receive buffer; only a head that arrives in pieces is
// copied, into one contiguous head buffer. Returns false when nothing more can be done now.
bool HttpSession::read_head(net::Input& input) {
  const std::string_view bytes = as_chars(input.front());
  core::Chunk*& head_buffer = state_->head_buffer;
  ParseStatus status;
  std::size_t used = 0;  // bytes of `bytes` that belong to the head
  if (head_buffer == nullptr) {
    status = state_->parser.parse_head(bytes);
    if (status == ParseStatus::kIncomplete) {
      head_buffer = factory_.head_buffers().get(bytes.size());
      factory_.note_pool_growth();
      input.consume(append_to_head_buffer(bytes));
      return true;
    }
    used = state_->parser.head_bytes();
  } else {
    const std::size_t before = head_buffer->end;
    const std::size_t n = append_to_head_buffer(bytes);
    status = state_->parser.parse_head(
        {reinterpret_cast<const char*>(head_buffer->data()), head_buffer->end});
    if (status == ParseStatus::kIncomplete) {
      input.consume(n);
      // The parser decides before the largest head buffer fills; this only keeps it bounded.
      if (head_buffer->end >= factory_.head_buffers().max_bytes()) {
        reject(ParseError::kHeaderTooLarge);
      }
      return phase_ != Phase::kClosing;
    }
    used = state_->parser.head_bytes() - before;
  }
  if (status == ParseStatus::kError) {
    reject(state_->parser.error(), head_buffer == nullptr ? bytes : std::string_view());
    return false;
  }
  begin_request(state_->parser.head());
  // The head's views are dead from here on: begin_request copied what it needs.
  input.consume(used);
  if (head_buffer != nullptr) {
    factory_.head_buffers().put(head_buffer);
    head_buffer = nullptr;
  }
  if (phase_ == Phase::kClosing) return false;
  if (state_->parser.body_done() || continue_ == Continue::kAnswerNow) {
    dispatch();
  } else if (continue_ == Continue::kNoRoom) {
    phase_ = Phase::kBody;  // the request is known: the access log names it
    factory_.counters().body_memory_rejections.add();
    reject_with(503, "too much request body buffered, retry later");
  } else {
    phase_ = Phase::kBody;
    if (continue_ == Continue::kQueued) {
      // The client may wait for the 100 before it sends a byte: the body deadline starts once
      // the 100 has left (on_output_drained), which may be after earlier answers.
      read_at_ = net::Connection::kNever;
    } else {
      set_read_deadline(factory_.config().body_timeout_ms);
    }
  }
  return phase_ != Phase::kClosing;
}

// Copies bytes into the head buffer, moving it to a larger one first when they do not fit
// (never beyond the largest head). Returns how many were copied.
std::size_t HttpSession::append_to_head_buffer(std::string_view bytes) {
  core::Chunk*& buffer = state_->head_buffer;
  if (buffer->writable() < bytes.size()) {
    buffer = factory_.head_buffers().grow(buffer, buffer->end + bytes.size());
    factory_.note_pool_growth();
  }
  const std::size_t n = std::min(bytes.size(), buffer->writable());
  std::memcpy(buffer->data() + buffer->end, bytes.data(), n);
  buffer->end += static_cast<std::uint32_t>(n);
  return n;
}

void HttpSession::begin_request(const RequestHead& head) {
  // A fresh Request in place, default-initialised: its text buffers are neither zeroed nor
  // copied (assigning Request{} would copy all 2.6 KB of it for every request).
  static_assert(std::is_trivially_destructible_v<Request>);
  Request& request = *::new (static_cast<void*>(&state_->request)) Request;
  request.method = method_of(head.method);
  request.head_only = request.method == Method::kHead;
  request.keep_alive = head.keep_alive && !stopping_;
  request.http10 = head.version_minor == 0;
  request.has_body = !state_->parser.body_done();
  request.start_us = state_->first_byte_us;
  route_request(head, request, factory_.config(), conn_.listener_use());
  if (factory_.access_log() != nullptr) {
    capture_access_fields(head, request.log);
    if (factory_.config().trust_forwarded_for) take_forwarded_for(head, request.log);
  }
  if (request.method == Method::kPost && request.route == Route::kEcho) {
    // The echo answers with the request's type, an empty body's included.
    const auto type = head.header_value("Content-Type");
    request.content_type.assign(type.value_or("application/octet-stream"));
  }
  continue_ = Continue::kNone;
  if (head.expect_continue && request.has_body) expect_continue(head);
}

// A trusted proxy's X-Forwarded-For names the client of this request's log line. Only the socket's
// peer is asked (as nginx's realip does), once per connection.
void HttpSession::take_forwarded_for(const RequestHead& head, AccessLogFields& log) {
  const HttpConfig& config = factory_.config();
  if (peer_trust_ == PeerTrust::kNotAsked) {
    peer_trust_ = config.trusted_proxies.contains(conn_.peer()) ? PeerTrust::kTrusted
                                                                : PeerTrust::kNotTrusted;
  }
  if (peer_trust_ != PeerTrust::kTrusted) return;
  net::IpAddress client;
  switch (find_forwarded_client(head, config.trusted_proxies, client)) {
    case ForwardedFor::kFound:
      log.client.assign(client);
      break;
    case ForwardedFor::kMalformed:
      factory_.counters().forwarded_for_errors.add();
      break;
    case ForwardedFor::kAbsent:
      break;
  }
}

// RFC 9110 10.1.1: a client that expects 100-continue may wait for it before sending the body,
// so the server answers at once: 100 when it is going to read the body, else the final status
// if the head alone decides it. Only POST /echo uses a body; every other route's answer is
// known from the head, and so is a 503 for an /echo body that the process cannot buffer now.
// Those are answered without reading the body, and as the client may still send it (or not),
// the connection then closes, lingering so that a body on its way does not cause a reset.
void HttpSession::expect_continue(const RequestHead& head) {
  Request& request = state_->request;
  if (!request.keep_body()) {
    continue_ = Continue::kAnswerNow;
    request.keep_alive = false;
    return;
  }
  if (head.content_length && !factory_.shared().body_memory_available(*head.content_length)) {
    continue_ = Continue::kNoRoom;
    return;
  }
  continue_ = Continue::kQueued;
  conn_.output().append("HTTP/1.1 100 Continue\r\n\r\n");
  factory_.counters().responses.count_status(100);
}

bool HttpSession::read_body(net::Input& input) {
  while (!input.empty()) {
    const BodyResult r = state_->parser.parse_body(as_chars(input.front()));
    if (r.error != ParseError::kNone) {
      reject(r.error);
      return false;
    }
    if (!r.data.empty() && state_->request.keep_body()) {
      if (!factory_.shared().reserve_body_memory(r.data.size())) {
        factory_.counters().body_memory_rejections.add();
        reject_with(503, "too much request body buffered, retry later");
        return false;
      }
      state_->body_reserved += r.data.size();
      state_->body.append(r.data);
    }
    input.consume(r.consumed);
    if (r.done) {
      dispatch();
      return phase_ != Phase::kClosing;
    }
  }
  return true;
}

void HttpSession::dispatch() {
  factory_.counters().requests.add();
  // The server began to stop while this request was being read: its answer is the last.
  if (stopping_) state_->request.keep_alive = false;
  last_pending_ = nullptr;  // defer() sets it when this request's answer comes later
  handle_request(*this, state_->request, state_->body);
  finish_request();
}

void HttpSession::finish_request() {
  release_body();
  continue_ = Continue::kNone;
  if (!state_->request.keep_alive) {
    close_session();  // once every answer, this one last, has been sent
    return;
  }
  give_back_state();
  phase_ = Phase::kIdle;
  // The idle deadline starts when the answer has been sent (on_output_drained), not before:
  // until then the client is waiting for us.
  read_at_ = net::Connection::kNever;
  set_idle_deadline_if_quiet();
}

void HttpSession::respond(const Request& request, core::BufferChain& out, int status,
                          std::string_view content_type, std::string_view body) {
  note_response(request, status, request.head_only ? 0 : body.size());
  write_response(out, status, factory_.stamp(), content_type, body, request.head_only,
                 request.persistence());
}

// The request's duration ends here, when its response is written into the connection's output
// (a file's: when its head is). Both ends are read from the loop's turn clock, as nginx's
// $request_time reads its cached time: no clock read per request (one costs about 120 ns on the
// development VM, 1.4% of a plaintext request), so a request answered in the turn that read its
// first byte counts 0 and a longer one is measured to the start of the turn that answers it.
void HttpSession::note_response(const Request& request, int status, std::uint64_t body_bytes) {
  const std::uint64_t now_us = factory_.services().now_us();
  const std::uint64_t duration_us =
      request.start_us == 0 ? 0 : now_us - std::min(now_us, request.start_us);
  factory_.counters().responses.count(route_kind(request.route), status, duration_us);
  if (AccessLog* log = factory_.access_log()) {
    const PeerAddress* client = &request.log.client;
    if (!client->known()) {
      if (!peer_.known()) peer_.assign(conn_.peer());
      client = &peer_;
    }
    char text[PeerAddress::kTextBytes];
    log->write(static_cast<std::time_t>(factory_.services().wall_clock_s()),
               {client->text(text), request.log, status, body_bytes, duration_us});
  }
}

void HttpSession::on_proxied_peer(net::Connection& /*conn*/, const sockaddr_storage& client) {
  peer_.assign(client);
}

void HttpSession::deferred_done(Pending& pending) {
  if (last_pending_ == &pending) last_pending_ = nullptr;
  pending_.remove(pending);
  factory_.pendings().destroy(&pending);
  watch_send();
  if (pending_.empty() && phase_ == Phase::kIdle && stopping_) {
    // The last answer in request order went out without Connection: close (it was immediate,
    // or written before the stop began): the close itself tells the client.
    close_session();
    return;
  }
  if (paused_ && !should_wait()) {
    paused_ = false;
    conn_.resume_input();
  }
  set_idle_deadline_if_quiet();
}

Pending* HttpSession::defer(const Request& request) {
  Pending* p = factory_.pendings().make();
  factory_.note_pool_growth();
  p->slot = conn_.defer();
  p->session = this;
  p->request = request;
  pending_.push_back(*p);
  last_pending_ = p;
  return p;
}

bool HttpSession::answer_closes(const Pending& pending) {
  if (!stopping_ || phase_ != Phase::kIdle || last_pending_ != &pending) return false;
  close_session();
  return true;
}

void HttpSession::reject(ParseError error, std::string_view raw_head) {
  factory_.counters().parse_errors[static_cast<std::size_t>(error)].add();
  reject_with(status_for(error), to_string(error), raw_head);
}

// Answers with Connection: close and closes gracefully, so the client reads the status
// instead of a reset even if it is still sending.
void HttpSession::reject_with(int status, std::string_view why, std::string_view raw_head) {
  Request r;
  r.keep_alive = false;
  // A request whose head parsed keeps its route and start; one cut while its head was read has
  // its start but no route.
  r.route = phase_ == Phase::kBody ? state_->request.route : Route::kNone;
  r.start_us = state_ != nullptr ? state_->first_byte_us : factory_.services().now_us();
  if (factory_.access_log() != nullptr) {
    // The log names what was rejected: the request being read, or the first line of a head
    // that never parsed (as received).
    if (phase_ == Phase::kBody) {
      r.log = state_->request.log;
    } else if (phase_ == Phase::kHead) {
      const core::Chunk* head_buffer = state_->head_buffer;
      if (raw_head.empty() && head_buffer != nullptr) {
        raw_head = {reinterpret_cast<const char*>(head_buffer->data()), head_buffer->end};
      }
      capture_raw_request_line(raw_head, r.log);
    }
  }
  // "<reason>: <why>\n", cut to fit.
  char body[128];
  std::size_t at = 0;
  const auto put = [&](std::string_view text) {
    const std::size_t n = std::min(text.size(), sizeof(body) - 1 - at);
    std::memcpy(body + at, text.data(), n);
    at += n;
  };
  put(reason_phrase(status));
  put(": ");
  put(why);
  body[at++] = '\n';
  respond(r, conn_.output(), status, "text/plain", {body, at});
  release_body();
  close_session();
}

// Every close the server decides goes through here: the answers owed are sent, then the sending
// side is shut down and the peer's input drained for a while, so that a client still sending
// (a body, more pipelined requests) reads our last answer instead of a reset.
void HttpSession::close_session() {
  phase_ = Phase::kClosing;
  give_back_state();  // no further request is read
  read_at_ = net::Connection::kNever;
  conn_.close_lingering(linger_ms());
}

// After a stop began, the server's own shutdown linger bounds it too.
std::uint64_t HttpSession::linger_ms() const {
  const std::uint64_t ms = factory_.config().linger_ms;
  return stopping_ ? std::min(ms, conn_.limits().shutdown_linger_ms) : ms;
}

bool HttpSession::should_wait() const {
  return pending_.size() >= factory_.config().max_pending_requests ||
         conn_.queued_bytes() > factory_.config().max_queued_output_bytes;
}

void HttpSession::set_read_deadline(std::uint64_t ms) {
  read_at_ = core::Deadline::after(factory_.services().now_ms(), ms);
  if (state_ != nullptr) {
    state_->paused_mark_ms = conn_.server_paused_ms();
    state_->extended_ms = 0;
  }
  wake_for_deadlines();
}

// One wake-up for both deadlines, at the earlier. A deadline that moves later or is cleared
// leaves the wake-up where it is: on_timer then finds nothing due and asks again.
void HttpSession::wake_for_deadlines() {
  conn_.wake_at(std::min(read_at_, send_at_));
}

// The deadlines that have passed, the earlier first (a stalled loop may find both due).
void HttpSession::on_timer(net::Connection& /*conn*/) {
  const std::uint64_t now = factory_.services().now_ms();
  for (int i = 0; i < 2; ++i) {
    const bool send_first = send_at_ < read_at_;
    std::uint64_t& due = send_first ? send_at_ : read_at_;
    if (due > now) break;
    due = net::Connection::kNever;
    if (send_first) {
      on_send_deadline();
    } else {
      on_read_deadline();
    }
    if (conn_.closed()) return;
  }
  wake_for_deadlines();
}

// The idle deadline runs from the end of a response to the next request's first byte: armed
// once nothing is owed to the client any more (no pending answer, nothing left to send, not
// paused), unless it already runs (empty lines skipped while idle do not renew it). From then
// on the connection is idle: at the connection cap the loop may close it for a new client.
void HttpSession::set_idle_deadline_if_quiet() {
  if (phase_ != Phase::kIdle || !pending_.empty() || paused_ || conn_.sendable_bytes() != 0 ||
      read_at_ != net::Connection::kNever) {
    return;
  }
  set_read_deadline(factory_.config().idle_timeout_ms);
  // Pipelined requests may still wait in the stash for their redelivery at the end of the turn:
  // not idle then (the next answer marks it).
  if (!conn_.has_stashed_input()) conn_.set_idle(true);
}

void HttpSession::on_read_deadline() {
  if (phase_ == Phase::kIdle && silent_start_) {
    // Silent since it connected: idle from now on, for the rest of the header timeout.
    silent_start_ = false;
    conn_.set_idle(true);
    set_read_deadline(factory_.config().header_timeout_ms - kSilentBeforeIdleMs);
    return;
  }
  // The header and body deadlines count only the client's time: while the server was not
  // reading (its output backpressure, too many answers owed) they stood still, so they move on
  // by that much, as often as it takes, but by no more than the send timeout in all: a client
  // that keeps the server paused by taking its answers just fast enough for the send timeout
  // must not hold a half-sent request open for ever.
  if (phase_ == Phase::kHead || phase_ == Phase::kBody) {
    const std::uint64_t cap = factory_.config().send_timeout_ms;
    const std::uint64_t paused = std::min(conn_.server_paused_ms() - state_->paused_mark_ms,
                                          cap - std::min(cap, state_->extended_ms));
    if (paused > 0) {
      read_at_ = core::Deadline::after(factory_.services().now_ms(), paused);
      state_->paused_mark_ms += paused;
      state_->extended_ms += paused;
      return;
    }
  }
  HttpCounters& counters = factory_.counters();
  switch (phase_) {
    case Phase::kIdle:
      counters.idle_timeouts.add();
      close_session();  // silent: no request was started
      break;
    case Phase::kHead:
      counters.header_timeouts.add();
      reject_with(408, "header timeout");
      break;
    case Phase::kBody:
      counters.body_timeouts.add();
      reject_with(408, "body timeout");
      break;
    case Phase::kClosing:
      break;
  }
  watch_send();  // a 408 to a peer that does not read must not hold the connection
}

// A peer that stops reading must not hold its output (and its connection) forever.
// Only output that can leave now counts: a deferred answer still being prepared (a pending
// /delay) is the server's wait, not the peer's.
void HttpSession::watch_send() {
  if (send_at_ != net::Connection::kNever || conn_.sendable_bytes() == 0) return;
  send_mark_ = conn_.bytes_sent();
  send_at_ = core::Deadline::after(factory_.services().now_ms(), factory_.config().send_timeout_ms);
  wake_for_deadlines();
}

void HttpSession::on_send_deadline() {
  if (conn_.sendable_bytes() == 0) return;
  if (conn_.bytes_sent() != send_mark_) {
    // Slow but moving: the timeout counts from the last progress, not from this check (or a
    // send that completed just after the deadline was set would stretch it to twice as long).
    send_mark_ = conn_.bytes_sent();
    const std::uint64_t timeout = factory_.config().send_timeout_ms;
    const std::uint64_t since = factory_.services().now_ms() - conn_.last_sent_ms();
    if (since < timeout) {
      send_at_ = core::Deadline::after(factory_.services().now_ms(), timeout - since);
      return;
    }
  }
  factory_.counters().send_timeouts.add();
  conn_.abort();
}

void HttpSession::on_input_end(net::Connection& /*conn*/) {
  // A half-finished request can never be completed.
  phase_ = Phase::kClosing;
  give_back_state();
  read_at_ = net::Connection::kNever;
  // Nothing owed has begun: those answers would hold the connection's place and timers for a
  // client that has most likely gone, so, as nginx does, the end of input ends the connection
  // at once. Otherwise every answer goes out in order and the connection closes after.
  if (owes_only_unbegun_answers()) {
    factory_.counters().client_aborts.add();
    conn_.abort();
    return;
  }
  conn_.close();
}

// The peer's FIN arrived while the server was not reading it (too many answers owed): the same
// judgement as at the end of input, made before the unread requests are read.
void HttpSession::on_peer_hangup(net::Connection& /*conn*/) {
  if (owes_only_unbegun_answers()) {
    factory_.counters().client_aborts.add();
    conn_.abort();
  }
}

// Answers are owed and none has begun: no byte queued or in flight, every pending answer a
// /delay's timer or a file still opening.
bool HttpSession::owes_only_unbegun_answers() const {
  bool none_begun = !pending_.empty() && conn_.queued_bytes() == 0;
  for (const Pending& p : pending_)
    none_begun = none_begun && (p.timer.armed() || p.transfer.waiting());
  return none_begun;
}

void HttpSession::on_output_drained(net::Connection& /*conn*/) {
  send_at_ = net::Connection::kNever;
  // Streamed answers (files) stop reading while output is queued and go on from here. None of
  // them finishes inside resume(), so the list stays intact while it is walked.
  for (Pending& pending : pending_)
    pending.transfer.resume();
  if (paused_ && !should_wait()) {
    paused_ = false;
    conn_.resume_input();
  }
  // Everything up to the 100 has been sent: the client may send the body from now on.
  if (phase_ == Phase::kBody && continue_ == Continue::kQueued && conn_.queued_bytes() == 0) {
    continue_ = Continue::kNone;
    set_read_deadline(factory_.config().body_timeout_ms);
  }
  set_idle_deadline_if_quiet();
}

void HttpSession::on_shutdown(net::Connection& /*conn*/) {
  stopping_ = true;
  if (phase_ == Phase::kIdle && pending_.empty()) close_session();
  // Otherwise the request in progress or the pending answers finish first (bounded by the
  // server's grace period).
}

void HttpSession::on_close(net::Connection& /*conn*/) {
  factory_.release(this);
}

void HttpSession::give_back_state() {
  if (state_ == nullptr) return;
  release_body();
  if (state_->head_buffer != nullptr) {
    factory_.head_buffers().put(state_->head_buffer);
    state_->head_buffer = nullptr;
  }
  factory_.give_back_request_state(state_);
  state_ = nullptr;
}

void HttpSession::release_body() {
  if (state_ == nullptr) return;
  if (state_->body_reserved > 0) {
    factory_.shared().release_body_memory(state_->body_reserved);
    state_->body_reserved = 0;
  }
  state_->body.clear();
}

}  // namespace rs::http
