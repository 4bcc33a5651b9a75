#include "net/http/session.hpp"

#include <algorithm>
#include <cstring>

#include "net/http/handlers.hpp"
#include "net/http/http_loop.hpp"
#include "net/http/response.hpp"

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

HttpSession::HttpSession(HttpLoop& loop, net::Connection& conn)
    : loop_(loop),
      conn_(conn),
      parser_(loop.config().limits),
      body_(loop.services().chunks()),
      read_timer_(&HttpSession::on_read_timer, this),
      send_timer_(&HttpSession::on_send_timer, this) {
  arm_read_timer(loop_.config().idle_timeout_ms);
}

HttpSession::~HttpSession() {
  release_body();
  if (head_buffer_ != nullptr) loop_.head_buffers().put(head_buffer_);
  while (Pending* p = pending_.pop_front())
    loop_.pendings().destroy(p);
}

void HttpSession::on_input(net::Connection& /*conn*/, net::Input& input) {
  while (!input.empty()) {
    if (phase_ == Phase::kClosing) {
      input.consume(input.size());  // nobody will answer it
      return;
    }
    if (phase_ == Phase::kIdle) {
      if (should_wait()) {
        // Too many answers outstanding: leave the rest in the stash until they drain.
        paused_ = true;
        loop_.counters().pipeline_pauses.add();
        conn_.pause_input();
        return;
      }
      phase_ = Phase::kHead;
      arm_read_timer(loop_.config().header_timeout_ms);  // absolute: from the first byte
    }
    if (phase_ == Phase::kHead && !read_head(input)) break;
    if (phase_ == Phase::kBody && !read_body(input)) break;
  }
  watch_send();
}

// Parses the head straight from the receive buffer; only a head that arrives in pieces is
// copied, into one contiguous head buffer. Returns false when nothing more can be done now.
bool HttpSession::read_head(net::Input& input) {
  const std::string_view bytes = as_chars(input.front());
  ParseStatus status;
  std::size_t used = 0;  // bytes of `bytes` that belong to the head
  if (head_buffer_ == nullptr) {
    status = parser_.parse_head(bytes);
    if (status == ParseStatus::kIncomplete) {
      head_buffer_ = loop_.head_buffers().get();
      const std::size_t n = std::min(bytes.size(), head_buffer_->writable());
      std::memcpy(head_buffer_->data(), bytes.data(), n);
      head_buffer_->end = static_cast<std::uint32_t>(n);
      input.consume(n);
      return true;
    }
    used = parser_.head_bytes();
  } else {
    const std::size_t before = head_buffer_->end;
    const std::size_t n = std::min(bytes.size(), head_buffer_->writable());
    std::memcpy(head_buffer_->data() + before, bytes.data(), n);
    head_buffer_->end += static_cast<std::uint32_t>(n);
    status = parser_.parse_head(
        {reinterpret_cast<const char*>(head_buffer_->data()), head_buffer_->end});
    if (status == ParseStatus::kIncomplete) {
      input.consume(n);
      if (head_buffer_->writable() == 0) reject(ParseError::kHeaderTooLarge);
      return phase_ != Phase::kClosing;
    }
    used = parser_.head_bytes() - before;
  }
  if (status == ParseStatus::kError) {
    reject(parser_.error(), head_buffer_ == nullptr ? bytes : std::string_view());
    return false;
  }
  begin_request(parser_.head());
  // The head's views are dead from here on: begin_request copied what it needs.
  input.consume(used);
  if (head_buffer_ != nullptr) {
    loop_.head_buffers().put(head_buffer_);
    head_buffer_ = nullptr;
  }
  if (phase_ == Phase::kClosing) return false;
  if (parser_.body_done()) {
    dispatch();
  } else {
    phase_ = Phase::kBody;
    arm_read_timer(loop_.config().body_timeout_ms);
  }
  return phase_ != Phase::kClosing;
}

void HttpSession::begin_request(const RequestHead& head) {
  request_ = Request{};
  request_.method = method_of(head.method);
  request_.head_only = request_.method == Method::kHead;
  request_.keep_alive = head.keep_alive && !stopping_;
  request_.has_body = !parser_.body_done();
  route_request(head, request_, loop_.config());
  if (loop_.access_log() != nullptr) capture_access_fields(head, request_.log);
  if (request_.keep_body()) {
    const auto type = head.header_value("Content-Type");
    request_.content_type.assign(type.value_or("application/octet-stream"));
  }
  // The client waits for this before sending the body (RFC 9110 10.1.1).
  if (head.expect_continue && request_.has_body) {
    conn_.output().append("HTTP/1.1 100 Continue\r\n\r\n");
  }
}

bool HttpSession::read_body(net::Input& input) {
  while (!input.empty()) {
    const BodyResult r = parser_.parse_body(as_chars(input.front()));
    if (r.error != ParseError::kNone) {
      reject(r.error);
      return false;
    }
    if (!r.data.empty() && request_.keep_body()) {
      if (!loop_.shared().reserve_body_memory(r.data.size())) {
        loop_.counters().body_memory_rejections.add();
        reject_with(503, "too much request body buffered, retry later");
        return false;
      }
      body_reserved_ += r.data.size();
      body_.append(r.data);
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
  loop_.counters().requests.add();
  handle_request(*this, request_, body_);
  finish_request();
}

void HttpSession::finish_request() {
  release_body();
  parser_.reset();
  if (!request_.keep_alive) {
    phase_ = Phase::kClosing;
    loop_.services().timers().cancel(read_timer_);
    conn_.close();
    return;
  }
  phase_ = Phase::kIdle;
  if (pending_.empty()) {
    arm_read_timer(loop_.config().idle_timeout_ms);
  } else {
    loop_.services().timers().cancel(read_timer_);  // the pending answer is what we wait for
  }
}

void HttpSession::respond(const Request& request, core::BufferChain& out, int status,
                          std::string_view content_type, std::string_view body) {
  note_response(request, status, request.head_only ? 0 : body.size());
  write_response(out, status, loop_.date(), content_type, body, request.head_only,
                 !request.keep_alive);
}

void HttpSession::note_response(const Request& request, int status, std::uint64_t body_bytes) {
  loop_.counters().responses_by_class[static_cast<std::size_t>(status / 100) % 6].add();
  if (AccessLog* log = loop_.access_log()) {
    log->write(peer_text(), request.log, status, body_bytes);
  }
}

std::string_view HttpSession::peer_text() {
  if (!peer_text_.known) peer_text_.assign(conn_.peer());
  return peer_text_.view();
}

void HttpSession::deferred_done(Pending& pending) {
  pending_.remove(pending);
  loop_.pendings().destroy(&pending);
  if (pending_.empty() && phase_ == Phase::kIdle) {
    if (stopping_) {
      phase_ = Phase::kClosing;
      conn_.close();
      return;
    }
    arm_read_timer(loop_.config().idle_timeout_ms);
  }
  if (paused_ && !should_wait()) {
    paused_ = false;
    conn_.resume_input();
  }
  watch_send();
}

Pending* HttpSession::defer(const Request& request) {
  Pending* p = loop_.pendings().make();
  p->slot = conn_.defer();
  p->session = this;
  p->request = request;
  pending_.push_back(*p);
  return p;
}

void HttpSession::reject(ParseError error, std::string_view raw_head) {
  loop_.counters().parse_errors[static_cast<std::size_t>(error)].add();
  reject_with(status_for(error), to_string(error), raw_head);
}

// Answers with Connection: close and closes gracefully, so the client reads the status
// instead of a reset even if it is still sending.
void HttpSession::reject_with(int status, std::string_view why, std::string_view raw_head) {
  Request r;
  r.keep_alive = false;
  if (loop_.access_log() != nullptr) {
    // The log names what was rejected: the request being read, or the first line of a head
    // that never parsed (as received).
    if (phase_ == Phase::kBody) {
      r.log = request_.log;
    } else if (phase_ == Phase::kHead) {
      if (raw_head.empty() && head_buffer_ != nullptr) {
        raw_head = {reinterpret_cast<const char*>(head_buffer_->data()), head_buffer_->end};
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
  phase_ = Phase::kClosing;
  loop_.services().timers().cancel(read_timer_);
  conn_.close_lingering(loop_.config().linger_ms);
}

bool HttpSession::should_wait() const {
  return pending_.size() >= loop_.config().max_pending_requests ||
         conn_.queued_bytes() > loop_.config().max_queued_output_bytes;
}

void HttpSession::arm_read_timer(std::uint64_t ms) {
  loop_.services().timers().arm(read_timer_, ms);
}

void HttpSession::on_read_timer(core::Timer& timer) {
  auto& self = *static_cast<HttpSession*>(timer.context());
  HttpCounters& counters = self.loop_.counters();
  switch (self.phase_) {
    case Phase::kIdle:
      counters.idle_timeouts.add();
      self.phase_ = Phase::kClosing;
      self.conn_.close();  // silent: no request was started
      break;
    case Phase::kHead:
      counters.header_timeouts.add();
      self.reject_with(408, "header timeout");
      break;
    case Phase::kBody:
      counters.body_timeouts.add();
      self.reject_with(408, "body timeout");
      break;
    case Phase::kClosing:
      break;
  }
}

// A peer that stops reading must not hold its output (and its connection) forever.
void HttpSession::watch_send() {
  if (send_timer_.armed() || conn_.queued_bytes() == 0) return;
  send_mark_ = conn_.bytes_sent();
  loop_.services().timers().arm(send_timer_, loop_.config().send_timeout_ms);
}

void HttpSession::on_send_timer(core::Timer& timer) {
  auto& self = *static_cast<HttpSession*>(timer.context());
  if (self.conn_.queued_bytes() == 0) return;
  if (self.conn_.bytes_sent() != self.send_mark_) {
    self.watch_send();  // slow but moving
    return;
  }
  self.loop_.counters().send_timeouts.add();
  self.conn_.abort();
}

void HttpSession::on_input_end(net::Connection& /*conn*/) {
  // A half-finished request can never be completed; answers already owed still go out.
  phase_ = Phase::kClosing;
  loop_.services().timers().cancel(read_timer_);
  conn_.close();
}

void HttpSession::on_output_drained(net::Connection& /*conn*/) {
  loop_.services().timers().cancel(send_timer_);
  // Streamed answers (files) stop reading while output is queued and go on from here. None of
  // them finishes inside resume(), so the list stays intact while it is walked.
  for (Pending& pending : pending_)
    pending.transfer.resume();
  if (paused_ && !should_wait()) {
    paused_ = false;
    conn_.resume_input();
  }
}

void HttpSession::on_shutdown(net::Connection& /*conn*/) {
  stopping_ = true;
  if (phase_ == Phase::kIdle && pending_.empty()) {
    phase_ = Phase::kClosing;
    conn_.close();
  }
  // Otherwise the request in progress or the pending answers finish first (bounded by the
  // server's grace period).
}

void HttpSession::on_close(net::Connection& /*conn*/) {
  loop_.release(this);
}

void HttpSession::release_body() {
  if (body_reserved_ > 0) {
    loop_.shared().release_body_memory(body_reserved_);
    body_reserved_ = 0;
  }
  body_.clear();
}

}  // namespace rs::http
