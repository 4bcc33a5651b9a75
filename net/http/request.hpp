// What the server keeps of a request once its head has been parsed: the parser's views die
// with the receive buffers, so routing happens at once and only the few facts a handler (or a
// deferred answer) still needs are copied here, into fixed-size fields.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/intrusive_list.hpp"
#include "core/timer_wheel.hpp"
#include "net/connection.hpp"
#include "net/http/access_log.hpp"
#include "net/http/file_transfer.hpp"
#include "net/http/response.hpp"
#include "net/http/response_metrics.hpp"
#include "net/http/static_request.hpp"

namespace rs::http {

enum class Method : std::uint8_t { kGet, kHead, kPost, kOptions, kOther };

enum class Route : std::uint8_t {
  kPlaintext,
  kJson,
  kEcho,
  kDelay,
  kMetrics,
  kAsterisk,  // OPTIONS *
  kStatic,    // a file below --root
  kNotFound,
  kNone,  // a request rejected before its head was parsed
};

// The route label of its duration (net/http/response_metrics.hpp).
constexpr RouteKind route_kind(Route route) {
  switch (route) {
    case Route::kPlaintext:
      return RouteKind::kPlaintext;
    case Route::kJson:
      return RouteKind::kJson;
    case Route::kEcho:
      return RouteKind::kEcho;
    case Route::kDelay:
      return RouteKind::kDelay;
    case Route::kMetrics:
      return RouteKind::kMetrics;
    case Route::kStatic:
      return RouteKind::kStatic;
    case Route::kNotFound:
      return RouteKind::kNotFound;
    case Route::kAsterisk:
    case Route::kNone:
      break;
  }
  return RouteKind::kOther;
}

// A short string copied out of the head; longer values are cut (they are only echoed back or
// logged).
template <std::size_t N>
struct SmallString {
  char data[N];
  std::uint16_t size = 0;
  void assign(std::string_view s) {
    size = static_cast<std::uint16_t>(s.size() < N ? s.size() : N);
    for (std::uint16_t i = 0; i < size; ++i)
      data[i] = s[i];
  }
  std::string_view view() const { return {data, size}; }
};

struct Request {
  Method method = Method::kGet;
  Route route = Route::kNotFound;
  bool head_only = false;  // HEAD: everything but the body
  bool keep_alive = true;  // false: close after this answer
  bool http10 = false;     // an HTTP/1.0 request: a kept connection is announced
  bool has_body = false;
  bool bad_query = false;  // the route's query parameters did not parse
  std::uint64_t delay_ms = 0;
  // The loop's turn clock (us) when the request's first byte was taken: 0 for none.
  std::uint64_t start_us = 0;
  SmallString<128> content_type;
  AccessLogFields log;  // filled only when the access log is on
  FileRequest file;     // Route::kStatic (GET and HEAD) only

  // Only POST /echo needs its body; other bodies are read (to keep the framing) and dropped.
  bool keep_body() const { return has_body && method == Method::kPost && route == Route::kEcho; }
  // The Connection field of this request's answer.
  Persistence persistence() const {
    if (!keep_alive) return Persistence::kClose;
    return http10 ? Persistence::kKeepAliveHttp10 : Persistence::kKeepAlive;
  }
};

class HttpSession;

// A request waiting for an answer that completes later (GET /delay, a static file).
struct Pending {
  core::ListNode node;
  core::Timer timer;
  net::ResponseSlot* slot = nullptr;
  HttpSession* session = nullptr;
  Request request;
  FileTransfer transfer;  // a static file being opened or streamed
};

}  // namespace rs::http
