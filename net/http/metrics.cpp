#include "net/http/metrics.hpp"

#include <fmt/format.h>

#include <array>
#include <iterator>

#include "core/process_stats.hpp"
#include "net/http/session.hpp"
#include "net/http/session_factory.hpp"

namespace rs::http {

namespace {

// Text exposition format 0.0.4: every family declares its type and help once, then its samples.
class Exposition {
 public:
  // type: "counter" (the name ends in _total), "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(it(), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  // labels: "" or `a="x",b="y"` (values already escaped).
  template <class T>
  void sample(std::string_view name, std::string_view labels, T value) {
    if (labels.empty()) {
      fmt::format_to(it(), "{} {}\n", name, value);
    } else {
      fmt::format_to(it(), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  // One unlabelled sample with its family.
  template <class T>
  void single(std::string_view name, std::string_view type, std::string_view help, T value) {
    family(name, type, help);
    sample(name, "", value);
  }
  std::string text() const { return fmt::to_string(out_); }

 private:
  std::back_insert_iterator<fmt::memory_buffer> it() { return std::back_inserter(out_); }
  fmt::memory_buffer out_;
};

// A label value: backslash, double quote and newline escaped.
std::string label_value(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

double seconds_of_us(std::uint64_t us) {
  return static_cast<double>(us) / 1e6;
}

void render_responses(Exposition& out, const ResponseMetrics& r) {
  constexpr std::string_view kResponses = "ringserve_http_responses_total";
  out.family(kResponses, "counter",
             "Responses written, by status code (status=\"other\": a code of that class outside "
             "the server's table); interim 100 Continue included.");
  for (std::size_t slot = 0; slot < r.by_status.size(); ++slot) {
    const char digit = status_class(slot);
    const std::string labels =
        slot < kStatusCodes.size()
            ? fmt::format("class=\"{}xx\",status=\"{}\"", digit, kStatusCodes[slot])
            : fmt::format("class=\"{}xx\",status=\"other\"", digit);
    out.sample(kResponses, labels, r.by_status[slot].get());
  }

  constexpr std::string_view kDuration = "ringserve_http_request_duration_seconds";
  out.family(kDuration, "histogram",
             "From the loop turn in which the server read a request's first byte to when its "
             "response was written into the connection's output (a static file's: its head), "
             "by route.");
  for (std::size_t route = 0; route < kRouteKinds; ++route) {
    const DurationHistogram& h = r.durations[route];
    const std::string_view name = kRouteKindNames[route];
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i].get();
      const std::string le = i < kDurationBoundsUs.size()
                                 ? fmt::format("{}", seconds_of_us(kDurationBoundsUs[i]))
                                 : std::string("+Inf");
      out.sample(fmt::format("{}_bucket", kDuration),
                 fmt::format("route=\"{}\",le=\"{}\"", name, le), cumulative);
    }
    const std::string labels = fmt::format("route=\"{}\"", name);
    out.sample(fmt::format("{}_sum", kDuration), labels, seconds_of_us(h.sum_us.get()));
    out.sample(fmt::format("{}_count", kDuration), labels, cumulative);
  }
}

void render_http(Exposition& out, const HttpShared& shared) {
  HttpCounters sum;  // the loops' counters folded (single writer: this thread)
  std::int64_t sessions = 0;
  std::int64_t states_in_use = 0;
  std::int64_t states_made = 0;
  shared.for_each_counters([&](const HttpCounters& c) {
    add_counts(sum, c);
    sessions += c.sessions.get();
    states_in_use += c.request_states_in_use.get();
    states_made += c.request_states_made.get();
  });

  out.single("ringserve_http_requests_total", "counter", "Requests parsed and dispatched.",
             sum.requests.get());
  render_responses(out, sum.responses);
  out.family("ringserve_http_parse_errors_total", "counter",
             "Requests rejected by the parser, by kind.");
  constexpr auto kLastKind = static_cast<std::size_t>(ParseError::kBodyTooLarge);
  static_assert(kLastKind < std::tuple_size_v<decltype(sum.parse_errors)>);
  for (std::size_t i = 1; i <= kLastKind; ++i) {
    out.sample("ringserve_http_parse_errors_total",
               fmt::format("kind=\"{}\"", to_string(static_cast<ParseError>(i))),
               sum.parse_errors[i].get());
  }
  out.family("ringserve_http_timeouts_total", "counter",
             "Connections timed out, by phase (header, idle, body, send).");
  const std::pair<const char*, const core::Counter*> timeouts[] = {{"header", &sum.header_timeouts},
                                                                   {"idle", &sum.idle_timeouts},
                                                                   {"body", &sum.body_timeouts},
                                                                   {"send", &sum.send_timeouts}};
  for (const auto& [phase, counter] : timeouts) {
    out.sample("ringserve_http_timeouts_total", fmt::format("phase=\"{}\"", phase), counter->get());
  }
  out.single("ringserve_http_body_memory_rejections_total", "counter",
             "Requests refused with 503 because buffered bodies reached --max-body-memory-bytes.",
             sum.body_memory_rejections.get());
  out.single("ringserve_http_body_memory_bytes", "gauge",
             "Request body bytes buffered now, all connections together.", shared.body_memory());
  out.single("ringserve_http_pipeline_pauses_total", "counter",
             "Times a connection stopped reading because answers were outstanding.",
             sum.pipeline_pauses.get());
  out.single("ringserve_http_client_aborts_total", "counter",
             "Connections closed because the client's end arrived while an answer had not begun "
             "(a /delay, a file being opened): its place and timers are freed at once.",
             sum.client_aborts.get());
  out.single("ringserve_http_forwarded_for_errors_total", "counter",
             "Requests from a --trusted-proxy peer (--trust-x-forwarded-for) whose "
             "X-Forwarded-For was malformed or longer than 16 entries: logged with the "
             "connection's client.",
             sum.forwarded_for_errors.get());
  out.single("ringserve_http_sessions", "gauge", "HTTP sessions open now.", sessions);
  out.single("ringserve_http_session_bytes", "gauge",
             "Bytes of the open sessions. An idle keep-alive connection on uring or epoll holds "
             "its session and its connection object (ringserve_connection_bytes); with zero-copy "
             "sends on, a connection that made one keeps about 0.4 KB more until it closes.",
             sessions * static_cast<std::int64_t>(sizeof(HttpSession)));
  out.family("ringserve_http_request_states", "gauge",
             "Request states (parser and request, taken at a request's first byte and given back "
             "when the session is idle again): in use now, and made and not yet freed.");
  out.sample("ringserve_http_request_states", "state=\"in_use\"", states_in_use);
  out.sample("ringserve_http_request_states", "state=\"made\"", states_made);
  out.single("ringserve_http_request_state_bytes", "gauge",
             "Bytes of the request states made and not yet freed.",
             states_made * static_cast<std::int64_t>(sizeof(RequestState)));
  out.single("ringserve_http_pool_grows_total", "counter",
             "Slabs made by the HTTP pools (sessions, request states, deferred answers, head "
             "buffers).",
             sum.pool_grows.get());
}

// The transport's counters, one family each, a series per loop.
void render_loops(Exposition& out, const std::vector<net::CounterValues>& loops) {
  if (loops.empty()) return;
  const auto& families = loops.front().values();
  for (std::size_t f = 0; f < families.size(); ++f) {
    const net::CounterInfo& info = families[f].info;
    const std::string name = fmt::format("ringserve_{}", info.metric);
    out.family(name, info.gauge ? "gauge" : "counter", info.help);
    for (std::size_t loop = 0; loop < loops.size(); ++loop) {
      out.sample(name, fmt::format("loop=\"{}\"", loop), loops[loop].values()[f].value);
    }
  }
}

void render_process(Exposition& out) {
  const core::ProcessStats p = core::read_process_stats();
  out.single("process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.", p.cpu_seconds);
  out.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             p.resident_bytes);
  out.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
             p.virtual_bytes);
  out.single("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.", p.start_time_seconds);
  out.single("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
  out.single("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds);
}

void render_build_info(Exposition& out, const HttpShared& shared) {
  const HttpShared::BuildInfo info = shared.build_info();
  out.family("ringserve_build_info", "gauge",
             "Always 1: the version, the backend serving, and how the ring was set up (the "
             "start-up line's words; none on epoll and threads).");
  out.sample(
      "ringserve_build_info",
      fmt::format("version=\"{}\",backend=\"{}\",io_uring_setup=\"{}\"", label_value(info.version),
                  label_value(info.backend), label_value(info.io_uring_setup)),
      1);
}

}  // namespace

std::string render_metrics(const HttpShared& shared) {
  Exposition out;
  render_build_info(out, shared);
  render_http(out, shared);
  render_loops(out, shared.transport_counters());
  render_process(out);
  return out.text();
}

void respond_metrics(HttpSession& session, const Request& request) {
  const std::string text = render_metrics(session.factory().shared());
  session.respond(request, session.connection().output(), 200,
                  "text/plain; version=0.0.4; charset=utf-8", text);
}

}  // namespace rs::http
