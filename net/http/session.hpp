// One HTTP/1.1 connection: parses requests as they arrive, answers them in order (at once or
// later through a deferred slot), enforces the limits and timeouts, and closes gracefully after
// a rejection. Reaches the loop only through net::Connection and net::LoopServices.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "net/connection.hpp"
#include "net/http/access_log.hpp"
#include "net/http/parser.hpp"
#include "net/http/request.hpp"
#include "net/http/request_states.hpp"

namespace rs::http {

class SessionFactory;

class HttpSession final : public net::Protocol {
 public:
  HttpSession(SessionFactory& factory, net::Connection& conn);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void on_input(net::Connection& conn, net::Input& input) override;
  void on_input_end(net::Connection& conn) override;
  void on_output_drained(net::Connection& conn) override;
  void on_peer_hangup(net::Connection& conn) override;
  void on_timer(net::Connection& conn) override;
  void on_shutdown(net::Connection& conn) override;
  void on_close(net::Connection& conn) override;
  void on_proxied_peer(net::Connection& conn, const sockaddr_storage& client) override;

  // For handlers.
  net::Connection& connection() { return conn_; }
  SessionFactory& factory() { return factory_; }
  // Reserves the request's place in the response order for an answer that comes later.
  Pending* defer(const Request& request);
  // The deferred answer was written and its slot completed.
  void deferred_done(Pending& pending);
  // Asked by a deferred answer as it writes its head. True when the server is stopping and this
  // answer is the last one in request order (what the client reads last, whichever answer
  // completes last), so it must carry Connection: close; the session then reads no further
  // request and the connection closes once every answer has been sent.
  bool answer_closes(const Pending& pending);
  // Every response written goes through here once: counters (and the access log).
  void note_response(const Request& request, int status, std::uint64_t body_bytes);
  // Writes the response for `request` into `out` and counts it.
  void respond(const Request& request, core::BufferChain& out, int status,
               std::string_view content_type, std::string_view body);
  // A handler wrote output outside a session callback (a piece of a file): watch that the peer
  // takes it (--send-timeout-ms).
  void note_output() { watch_send(); }

 private:
  enum class Phase : std::uint8_t { kIdle, kHead, kBody, kClosing };

  bool read_head(net::Input& input);
  std::size_t append_to_head_buffer(std::string_view bytes);
  void skip_empty_lines(net::Input& input);
  void expect_continue(const RequestHead& head);
  bool read_body(net::Input& input);
  void begin_request(const RequestHead& head);
  void take_forwarded_for(const RequestHead& head, AccessLogFields& log);
  void dispatch();
  void finish_request();
  void give_back_state();
  // raw_head: the bytes of a head that failed to parse (for the access log), when they are not
  // in head_buffer_.
  void reject(ParseError error, std::string_view raw_head = {});
  void reject_with(int status, std::string_view why, std::string_view raw_head = {});
  void close_session();
  std::uint64_t linger_ms() const;
  bool should_wait() const;
  bool owes_only_unbegun_answers() const;
  void set_read_deadline(std::uint64_t ms);
  void set_idle_deadline_if_quiet();
  void watch_send();
  void wake_for_deadlines();
  void on_read_deadline();
  void on_send_deadline();
  void release_body();

  SessionFactory& factory_;
  net::Connection& conn_;
  // The request being read, from its first byte until the session is idle again (or closes):
  // idle sessions hold none. It also holds the head buffer and the body.
  RequestState* state_ = nullptr;
  core::IntrusiveList<Pending, &Pending::node> pending_;
  // The answer of the latest request when it is still pending (else nullptr): the answer last
  // in request order, which must carry Connection: close when the server stops.
  const Pending* last_pending_ = nullptr;
  // The header, body or idle deadline (by phase_) and the send deadline, in the loop's ms, or
  // net::Connection::kNever. The connection's one timer wakes the session for the earlier.
  std::uint64_t read_at_ = net::Connection::kNever;
  std::uint64_t send_at_ = net::Connection::kNever;
  std::uint64_t send_mark_ = 0;  // bytes_sent() when the send deadline was last moved on
  Phase phase_ = Phase::kIdle;
  bool paused_ = false;
  // What the current request's 100-continue expectation led to (RFC 9110 10.1.1).
  enum class Continue : std::uint8_t {
    kNone,       // none asked for, or the 100 has been sent
    kQueued,     // a 100 is queued: the body deadline starts once it has been sent
    kAnswerNow,  // the answer does not need the body: final status at once, then close
    kNoRoom,     // the body could not be buffered now: 503 at once
  };
  Continue continue_ = Continue::kNone;
  bool stopping_ = false;  // server shutdown: close after the requests in flight
  // A new connection before its first byte, not yet silent for kSilentBeforeIdleMs.
  bool silent_start_ = false;
  static constexpr std::uint64_t kSilentBeforeIdleMs = 1000;
  // Whether the socket's peer is a --trusted-proxy (asked at the first request that needs it).
  enum class PeerTrust : std::uint8_t { kNotAsked, kTrusted, kNotTrusted };
  PeerTrust peer_trust_ = PeerTrust::kNotAsked;
  // For the access log: the client a PROXY header named, or the socket's peer, asked of the
  // kernel at the first line.
  PeerAddress peer_;
};

}  // namespace rs::http
