#include "net/http/handlers.hpp"

#include <fmt/format.h>

#include <charconv>

#include "net/http/json_writer.hpp"
#include "net/http/metrics.hpp"
#include "net/http/response.hpp"
#include "net/http/session.hpp"
#include "net/http/session_factory.hpp"
#include "net/http/static_files.hpp"

namespace rs::http {

namespace {

constexpr std::string_view kAllowGet = "GET, HEAD, OPTIONS";
constexpr std::string_view kAllowPost = "POST, OPTIONS";
constexpr std::string_view kAllowServer = "GET, HEAD, POST, OPTIONS";

// The value of one query parameter, or nullopt.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string_view allow_for(Route route) {
  switch (route) {
    case Route::kEcho:
      return kAllowPost;
    case Route::kAsterisk:
      return kAllowServer;
    default:
      return kAllowGet;
  }
}

bool method_allowed(Route route, Method method) {
  if (method == Method::kOptions) return true;
  if (route == Route::kEcho) return method == Method::kPost;
  return method == Method::kGet || method == Method::kHead;
}

// Status line, Allow, empty body: 405 and OPTIONS answers.
void respond_allow(HttpSession& s, const Request& r, int status) {
  s.note_response(r, status, 0);
  core::BufferChain& out = s.connection().output();
  ResponseHead head(out, status, s.factory().stamp());
  head.add("Allow", allow_for(r.route)).add("Content-Length", std::uint64_t{0});
  head.finish(r.persistence());
}

void respond_json(HttpSession& s, const Request& r) {
  char buffer[64];
  JsonWriter json(buffer, sizeof(buffer));
  json.begin_object().key("message").value("Hello, World!").end_object();
  s.respond(r, s.connection().output(), 200, "application/json", json.view());
}

void respond_echo(HttpSession& s, const Request& r, core::BufferChain& body) {
  s.note_response(r, 200, body.size());
  core::BufferChain& out = s.connection().output();
  ResponseHead head(out, 200, s.factory().stamp());
  head.add("Content-Type", r.content_type.view()).add("Content-Length", body.size());
  head.finish(r.persistence());
  out.splice_back(body);  // the body's chunks move to the output: no copy
}

void answer_delay(core::Timer& timer) {
  auto& pending = *static_cast<Pending*>(timer.context());
  HttpSession& s = *pending.session;
  char text[48];
  const auto [end, ec] = std::to_chars(text, text + 32, pending.request.delay_ms);
  std::size_t n = static_cast<std::size_t>(end - text);
  for (char c : std::string_view(" ms\n"))
    text[n++] = c;
  net::Connection& conn = s.connection();
  Request request = pending.request;
  if (s.answer_closes(pending)) request.keep_alive = false;
  s.respond(request, conn.deferred_output(pending.slot), 200, "text/plain", {text, n});
  conn.complete(pending.slot);
  s.deferred_done(pending);
}

void start_delay(HttpSession& s, const Request& r) {
  // The evented idea in one route: the answer is owed, the thread moves on, a timer pays.
  Pending* pending = s.defer(r);
  pending->timer.set(&answer_delay, pending);
  // The wheel counts whole milliseconds from the start of this loop turn; one more makes the
  // answer never early, whatever fraction of a millisecond has passed.
  s.factory().services().timers().arm(pending->timer, r.delay_ms + 1);
}

}  // namespace

namespace {

bool route_demo(const RequestHead& head, Request& request, const HttpConfig& config) {
  const std::string_view path = head.path;
  if (path == "/plaintext") {
    request.route = Route::kPlaintext;
  } else if (path == "/json") {
    request.route = Route::kJson;
  } else if (path == "/echo") {
    request.route = Route::kEcho;
  } else if (path == "/delay") {
    request.route = Route::kDelay;
    const auto ms = query_param(head.query, "ms");
    std::uint64_t value = 0;
    if (!ms || ms->empty() ||
        std::from_chars(ms->data(), ms->data() + ms->size(), value).ptr !=
            ms->data() + ms->size() ||
        value > config.max_delay_ms) {
      request.bad_query = true;
    }
    request.delay_ms = value;
  } else {
    return false;
  }
  return true;
}

}  // namespace

void route_request(const RequestHead& head, Request& request, const HttpConfig& config,
                   net::ListenerUse use) {
  const bool metrics_listener = use == net::ListenerUse::kMetrics;
  if (head.form == TargetForm::kAsterisk) {
    request.route = Route::kAsterisk;
    return;
  }
  if (head.path == "/metrics" && (metrics_listener || config.metrics_on_serving_listeners())) {
    request.route = Route::kMetrics;
    return;
  }
  if (!metrics_listener && config.demo_routes_on() && route_demo(head, request, config)) return;
  if (!metrics_listener && !config.root.empty()) {
    // Whatever no route the operator turned on claims is a file below --root.
    request.route = Route::kStatic;
    if (request.method == Method::kGet || request.method == Method::kHead) {
      prepare_file_request(head, request.file);
      if (config.precompressed) request.file.encodings = accepted_encodings(head);
    }
    return;
  }
  request.route = Route::kNotFound;
}

void handle_request(HttpSession& s, const Request& r, core::BufferChain& body) {
  if (r.method == Method::kOther) {
    s.respond(r, s.connection().output(), 501, "text/plain", "Not Implemented\n");
    return;
  }
  if (r.route == Route::kNotFound) {
    s.respond(r, s.connection().output(), 404, "text/plain", "Not Found\n");
    return;
  }
  if (r.method == Method::kOptions) {
    respond_allow(s, r, 200);
    return;
  }
  if (!method_allowed(r.route, r.method)) {
    respond_allow(s, r, 405);
    return;
  }
  switch (r.route) {
    case Route::kPlaintext:
      s.respond(r, s.connection().output(), 200, "text/plain", "Hello, World!");
      break;
    case Route::kJson:
      respond_json(s, r);
      break;
    case Route::kEcho:
      respond_echo(s, r, body);
      break;
    case Route::kDelay:
      if (r.bad_query) {
        s.respond(r, s.connection().output(), 400, "text/plain",
                  "GET /delay?ms=N with 0 <= N <= --max-delay-ms\n");
      } else {
        start_delay(s, r);
      }
      break;
    case Route::kMetrics:
      respond_metrics(s, r);
      break;
    case Route::kStatic:
      serve_static(s, r);
      break;
    case Route::kAsterisk:
    case Route::kNotFound:
    case Route::kNone:
      break;
  }
}

}  // namespace rs::http
