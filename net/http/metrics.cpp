#include "net/http/metrics.hpp"

#include <fmt/format.h>

#include <array>
#include <iterator>

#include "net/http/session.hpp"
#include "net/http/session_factory.hpp"

namespace rs::http {

namespace {

void family(fmt::memory_buffer& out, std::string_view name, std::string_view type,
            std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string render_metrics(const HttpShared& shared) {
  std::array<std::uint64_t, 6> by_class{};
  std::array<std::uint64_t, 32> parse_errors{};
  std::uint64_t requests = 0;
  std::uint64_t timeouts[4] = {};
  std::uint64_t body_rejections = 0;
  std::uint64_t pipeline_pauses = 0;
  std::uint64_t client_aborts = 0;
  std::uint64_t forwarded_for_errors = 0;
  std::int64_t sessions = 0;
  std::int64_t states_in_use = 0;
  std::int64_t states_made = 0;
  std::int64_t http_grows = 0;
  shared.for_each_counters([&](const HttpCounters& c) {
    for (std::size_t i = 0; i < by_class.size(); ++i)
      by_class[i] += c.responses_by_class[i].get();
    for (std::size_t i = 0; i < parse_errors.size(); ++i)
      parse_errors[i] += c.parse_errors[i].get();
    requests += c.requests.get();
    timeouts[0] += c.header_timeouts.get();
    timeouts[1] += c.idle_timeouts.get();
    timeouts[2] += c.body_timeouts.get();
    timeouts[3] += c.send_timeouts.get();
    body_rejections += c.body_memory_rejections.get();
    pipeline_pauses += c.pipeline_pauses.get();
    client_aborts += c.client_aborts.get();
    forwarded_for_errors += c.forwarded_for_errors.get();
    sessions += c.sessions.get();
    states_in_use += c.request_states_in_use.get();
    states_made += c.request_states_made.get();
    http_grows += c.pool_grows.get();
  });

  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  family(out, "ringserve_http_requests_total", "counter", "Requests parsed and dispatched.");
  fmt::format_to(it, "ringserve_http_requests_total {}\n", requests);
  family(out, "ringserve_http_responses_total", "counter", "Responses sent, by status class.");
  for (std::size_t i = 1; i < by_class.size(); ++i) {
    fmt::format_to(it, "ringserve_http_responses_total{{class=\"{}xx\"}} {}\n", i, by_class[i]);
  }
  family(out, "ringserve_http_parse_errors_total", "counter",
         "Requests rejected by the parser, by kind.");
  constexpr auto kLastKind = static_cast<std::size_t>(ParseError::kBodyTooLarge);
  static_assert(kLastKind < std::tuple_size_v<decltype(parse_errors)>);
  for (std::size_t i = 1; i <= kLastKind; ++i) {
    const auto kind = static_cast<ParseError>(i);
    fmt::format_to(it, "ringserve_http_parse_errors_total{{kind=\"{}\"}} {}\n", to_string(kind),
                   parse_errors[i]);
  }
  family(out, "ringserve_http_timeouts_total", "counter", "Connections timed out, by phase.");
  const char* phases[] = {"header", "idle", "body", "send"};
  for (int i = 0; i < 4; ++i) {
    fmt::format_to(it, "ringserve_http_timeouts_total{{phase=\"{}\"}} {}\n", phases[i],
                   timeouts[i]);
  }
  family(out, "ringserve_http_body_memory_rejections_total", "counter",
         "Requests refused because buffered bodies reached the process limit.");
  fmt::format_to(it, "ringserve_http_body_memory_rejections_total {}\n", body_rejections);
  family(out, "ringserve_http_body_memory_bytes", "gauge", "Request body bytes buffered now.");
  fmt::format_to(it, "ringserve_http_body_memory_bytes {}\n", shared.body_memory());
  family(out, "ringserve_http_pipeline_pauses_total", "counter",
         "Times a connection stopped reading because answers were outstanding.");
  fmt::format_to(it, "ringserve_http_pipeline_pauses_total {}\n", pipeline_pauses);
  family(out, "ringserve_http_client_aborts_total", "counter",
         "Connections closed because the client's end arrived while an answer had not begun "
         "(a /delay, a file being opened): its place and timers are freed at once.");
  fmt::format_to(it, "ringserve_http_client_aborts_total {}\n", client_aborts);
  family(out, "ringserve_http_forwarded_for_errors_total", "counter",
         "Requests from a --trusted-proxy peer (--trust-x-forwarded-for) whose X-Forwarded-For "
         "was malformed or longer than 16 entries: logged with the connection's client.");
  fmt::format_to(it, "ringserve_http_forwarded_for_errors_total {}\n", forwarded_for_errors);
  family(out, "ringserve_http_sessions", "gauge", "HTTP sessions open now.");
  fmt::format_to(it, "ringserve_http_sessions {}\n", sessions);
  family(out, "ringserve_http_session_bytes", "gauge",
         "Bytes of the open sessions. An idle keep-alive connection on uring or epoll holds its "
         "session and its connection object (ringserve_connection_bytes); with zero-copy sends "
         "on, a connection that made one keeps about 0.4 KB more until it closes.");
  fmt::format_to(it, "ringserve_http_session_bytes {}\n",
                 sessions * static_cast<std::int64_t>(sizeof(HttpSession)));
  family(out, "ringserve_http_request_states", "gauge",
         "Request states (parser and request, taken at a request's first byte and given back "
         "when the session is idle again): in use now, and made so far.");
  fmt::format_to(it, "ringserve_http_request_states{{state=\"in_use\"}} {}\n", states_in_use);
  fmt::format_to(it, "ringserve_http_request_states{{state=\"made\"}} {}\n", states_made);
  family(out, "ringserve_http_request_state_bytes", "gauge",
         "Bytes of the request states made so far.");
  fmt::format_to(it, "ringserve_http_request_state_bytes {}\n",
                 states_made * static_cast<std::int64_t>(sizeof(RequestState)));
  family(
      out, "ringserve_http_pool_grows", "gauge",
      "Slabs made by the HTTP pools (sessions, request states, deferred answers, head buffers).");
  fmt::format_to(it, "ringserve_http_pool_grows {}\n", http_grows);

  // The transport and ring counters of every loop, one family each.
  const net::CounterValues transport = shared.transport_counters();
  for (const auto& [info, value] : transport.values()) {
    const std::string metric = fmt::format("ringserve_{}", info.metric);
    family(out, metric, info.gauge ? "gauge" : "counter", info.help);
    fmt::format_to(it, "{} {}\n", metric, value);
  }
  return fmt::to_string(out);
}

void respond_metrics(HttpSession& session, const Request& request) {
  const std::string text = render_metrics(session.factory().shared());
  session.respond(request, session.connection().output(), 200,
                  "text/plain; version=0.0.4; charset=utf-8", text);
}

}  // namespace rs::http
