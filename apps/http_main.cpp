// ringserve-http: a production-style HTTP/1.1 server on io_uring.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "apps/config_file.hpp"
#include "apps/server_main.hpp"
#include "net/http/session_factory.hpp"

namespace {

// A flag that takes one of a few words, each naming a value of T; --help lists the words, and the
// default shown is the word of target's value. (CLI11's own transformer prints a one-byte enum as
// a character.)
template <class T>
void add_choice(CLI::App& app, const std::string& name, T& target,
                std::vector<std::pair<std::string, T>> choices, const std::string& help) {
  std::vector<std::string> words;
  std::string default_word;
  for (const auto& [word, value] : choices) {
    words.push_back(word);
    if (value == target) default_word = word;
  }
  app.add_option_function<std::string>(
         name,
         [&target, choices](const std::string& word) {
           for (const auto& [w, value] : choices) {
             if (w == word) target = value;
           }
         },
         help)
      ->check(CLI::IsMember(words))
      ->default_str(default_word);
}

void add_http_flags(CLI::App& app, rs::http::HttpConfig& http) {
  app.add_option("--header-timeout-ms", http.header_timeout_ms,
                 "From a request's first byte to the end of its header block; then 408 and close "
                 "(also a new connection's wait for its first byte; then a silent close)")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", http.idle_timeout_ms,
                 "From the end of a response to the next request's first byte; then close")
      ->capture_default_str();
  app.add_option("--body-timeout-ms", http.body_timeout_ms,
                 "From the end of the header block to the end of the body; then 408 and close")
      ->capture_default_str();
  app.add_option("--send-timeout-ms", http.send_timeout_ms,
                 "Queued output that makes no progress this long (peer stopped reading): close")
      ->capture_default_str();
  app.add_option("--max-request-line-bytes", http.limits.max_request_line_bytes,
                 "Longest request line; longer: 414")
      ->capture_default_str();
  app.add_option("--max-header-bytes", http.limits.max_header_bytes,
                 "Largest header block; larger: 431")
      ->capture_default_str();
  app.add_option("--max-header-fields", http.limits.max_header_fields,
                 "Most header fields; more: 431")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--max-body-bytes", http.limits.max_body_bytes,
                 "Largest request body; larger: 413")
      ->capture_default_str();
  app.add_option("--max-body-memory-bytes", http.max_body_memory_bytes,
                 "Request bodies buffered by the whole process; beyond: 503")
      ->capture_default_str();
  app.add_option("--max-pending-requests", http.max_pending_requests,
                 "Pipelined requests per connection awaiting an answer before reading pauses")
      ->capture_default_str();
  app.add_option("--max-queued-output-bytes", http.max_queued_output_bytes,
                 "Output queued on one connection (what a peer that does not read can make it "
                 "hold) before pipelined requests wait and file reads pause")
      ->capture_default_str();
  app.add_option("--max-delay-ms", http.max_delay_ms, "Largest N accepted by GET /delay?ms=N")
      ->capture_default_str();
  app.add_option("--root", http.root,
                 "Serve static files from this directory under GET and HEAD (off when empty; "
                 "nothing outside it is reachable)")
      ->capture_default_str();
  app.add_option("--mime-types", http.mime_types,
                 "Content-Type of static files by extension from this mime.types file (default: "
                 "/etc/mime.types from Debian's media-types, or a built-in table of common types "
                 "when it is missing; a file that cannot be read or parsed stops start-up)");
  app.add_option("--cache-control", http.cache_control,
                 "Cache-Control value sent on 200, 206 and 304 answers for static files, e.g. "
                 "\"public, max-age=3600\" (none when empty; printable ASCII, at most 256 bytes)");
  app.add_flag("--precompressed", http.precompressed,
               "Serve FILE.br or FILE.gz beside a static FILE when Accept-Encoding allows it (br "
               "first), with Content-Encoding; every static file answer then carries Vary: "
               "Accept-Encoding (like nginx's gzip_static with gzip_vary)");
  using Switch = rs::http::HttpConfig::Switch;
  add_choice(app, "--demo-routes", http.demo_routes,
             {{"auto", Switch::kAuto}, {"on", Switch::kOn}, {"off", Switch::kOff}},
             "The demo routes /plaintext, /json, /echo and /delay, and /metrics on the serving "
             "listeners (with --root only on --metrics-listen). auto: on without --root, off with "
             "it (they would shadow files of those names)");
}

// /metrics on a listener of its own (the Prometheus convention); without --root the serving
// listeners answer it too.
void add_metrics_flags(CLI::App& app, rs::net::ServerConfig& config) {
  config.protocol_has_metrics = true;
  app.add_option_function<std::vector<std::string>>(
         "--metrics-listen",
         [&config](const std::vector<std::string>& all) {
           config.metrics_listen.clear();
           for (const std::string& text : all)
             config.metrics_listen.push_back(
                 rs::net::parse_listen_address(text, "--metrics-listen"));
         },
         "ADDRESS:PORT[,tls], repeatable: serve GET /metrics there and nothing else (the same as "
         "--listen ADDRESS:PORT,metrics). With --root, the only place /metrics is served")
      ->take_all()
      ->allow_extra_args(false);
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"ringserve-http: an HTTP/1.1 server on io_uring"};
  rs::net::ServerConfig config;
  config.port = 8080;
  rs::apps::add_server_flags(app, "ringserve-http", config);
  rs::http::HttpConfig http;
  add_http_flags(app, http);
  add_metrics_flags(app, config);
  app.add_option("--access-log", config.loop.access_log_path,
                 "Append a line per response to this file (off when empty; SIGHUP reopens it for "
                 "log rotation)")
      ->capture_default_str();
  app.add_flag("--trust-x-forwarded-for", http.trust_forwarded_for,
               "The access log names the client X-Forwarded-For gives when the connection's peer "
               "is a --trusted-proxy: the rightmost address that is not itself trusted (at most "
               "16 examined; a malformed list is ignored and counted)");
  add_choice(app, "--access-log-format", http.access_log_format,
             {{"combined", rs::http::AccessLogFormat::kCombined},
              {"json", rs::http::AccessLogFormat::kJson}},
             "combined: Combined Log Format and the request time in microseconds; json: a JSON "
             "object per line (docs/access-log.md)");
  if (const auto status = rs::apps::parse_flags(app, "ringserve-http", argc, argv)) return *status;
  rs::http::follow_output_limit(config.loop.limits, http);
  http.trusted_proxies = config.proxy.trusted;

  // Refuses zero timeouts and limits with a message naming the flag (rs::http::check_config).
  rs::http::HttpShared shared(http);
  return rs::apps::run_server(
      "ringserve-http", config, rs::http::make_http_factory(shared),
      [&shared](rs::net::Server& server) {
        // GET /metrics: the transport counters of every loop, and the build info (the backend
        // is resolved and the ring set up once the server has started: asked at each scrape).
        shared.set_transport_counters([&server] { return server.counters_by_loop(); });
        shared.set_build_info([&server] {
          const bool ring = server.backend() == rs::net::Backend::kUring;
          return rs::http::HttpShared::BuildInfo{rs::apps::release_version(),
                                                 rs::net::to_string(server.backend()),
                                                 ring ? server.setup_mode() : "none"};
        });
      });
} catch (const std::exception& e) {
  std::fprintf(stderr, "ringserve-http: %s\n", e.what());
  return 1;
}
