// The built ringserve-http started as a child process and driven by real clients: curl,
// python3 http.client and wrk (plain and pipelined), with the server's own /metrics as the
// referee, plus shutdown with a request in flight and --help.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "tests/apps/tool_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

#ifndef RS_APPS_TEST_DIR
#error "RS_APPS_TEST_DIR must name tests/apps in the source tree"
#endif

namespace rs::test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{10000};
constexpr milliseconds kToolTimeout{30000};

using Response = HttpResponse;
using ResponseReader = HttpReader;

// A GET /metrics body (read with metric_sum).
using Metrics = std::string;

// ringserve-http on an ephemeral port, with one keep-alive connection of its own for /metrics
// (opened first, so it never counts in what a test measures between two readings).
class HttpApp {
 public:
  explicit HttpApp(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--port", "0", "--address", "127.0.0.1"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<ChildProcess>("ringserve-http", args);
    line_ = process_->wait_for_line("listening on", kStartTimeout);
    if (line_) port_ = port_from_startup_line(*line_);
  }
  ~HttpApp() {
    if (probe_ >= 0) ::close(probe_);
  }
  bool started() const { return port_ != 0; }
  std::uint16_t port() const { return port_; }
  const std::optional<std::string>& startup_line() const { return line_; }
  ChildProcess& process() { return *process_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  // GET /metrics on the probe connection; empty when it could not be read.
  Metrics metrics() {
    if (probe_ < 0) {
      probe_ = connect_to(port_);
      reader_.emplace(probe_);
    }
    ++metrics_requests_;
    if (!send_all(probe_, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")) return {};
    const Response r = reader_->next();
    if (!r.ok || r.status != 200) return {};
    return r.body;
  }
  int metrics_requests() const { return metrics_requests_; }
  int probe_fd() const { return probe_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::optional<std::string> line_;
  std::uint16_t port_ = 0;
  int probe_ = -1;
  std::optional<ResponseReader> reader_;
  int metrics_requests_ = 0;
};

constexpr const char* kRequests = "ringserve_http_requests_total";
constexpr const char* kAccepted = "ringserve_accepted_total";

constexpr const char* kResponses = "ringserve_http_responses_total";

// A family summed over its loops, or over the statuses of a class; -1 when absent.
std::int64_t get(const Metrics& m, std::string_view name,
                 std::initializer_list<MetricLabel> labels = {}) {
  return metric_sum(m, name, labels);
}

#define REQUIRE_TOOL(name)                                                                    \
  do {                                                                                        \
    if (find_tool((name)).empty())                                                            \
      GTEST_SKIP() << (name) << " is not installed (scripts/setup.sh installs it); skipping"; \
  } while (0)

#define START_APP(app)                                   \
  ASSERT_TRUE((app).started()) << (app).process().err(); \
  const Metrics baseline = (app).metrics();              \
  ASSERT_NE(get(baseline, kAccepted), -1) << "no /metrics answer"

bool contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// curl's verbose line for a reused connection ("Re-using existing connection #0 with host"
// in 7.x, "Re-using existing http: connection with host" in recent 8.x).
bool curl_reused_connection(const std::string& verbose) {
  return contains(verbose, "Re-using existing") || contains(verbose, "Reusing existing");
}

// ---- curl -----------------------------------------------------------------------------

TEST(HttpClientsCurl, TwoUrlsInOneInvocationShareOneKeepAliveConnection) {
  REQUIRE_TOOL("curl");
  HttpApp app;
  START_APP(app);
  const ToolResult r =
      run_tool({"curl", "-sv", "--fail", app.url("/plaintext"), app.url("/json")}, kToolTimeout);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string("Hello, World!") + R"({"message":"Hello, World!"})");
  EXPECT_TRUE(curl_reused_connection(r.err)) << r.err;
  const Metrics after = app.metrics();
  EXPECT_EQ(get(after, kAccepted) - get(baseline, kAccepted), 1) << "curl's connections";
  EXPECT_EQ(get(after, kRequests) - get(baseline, kRequests), 2 + 1);  // + this /metrics
}

TEST(HttpClientsCurl, HeadShowsContentLengthAndSendsNoBody) {
  REQUIRE_TOOL("curl");
  HttpApp app;
  START_APP(app);
  // Two HEADs on one connection: a body after the first would corrupt the second answer.
  const ToolResult r =
      run_tool({"curl", "-sv", "-I", app.url("/plaintext"), app.url("/plaintext")}, kToolTimeout);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count_of(r.out, "HTTP/1.1 200 OK\r\n"), 2u) << r.out;
  EXPECT_EQ(count_of(r.out, "Content-Length: 13\r\n"), 2u) << r.out;
  EXPECT_FALSE(contains(r.out, "Hello")) << r.out;
  EXPECT_TRUE(r.out.ends_with("\r\n\r\n")) << r.out;
  EXPECT_TRUE(curl_reused_connection(r.err)) << r.err;
  EXPECT_EQ(get(app.metrics(), kAccepted) - get(baseline, kAccepted), 1);
}

TEST(HttpClientsCurl, PostDataBinaryToEchoRoundTrips) {
  REQUIRE_TOOL("curl");
  HttpApp app;
  START_APP(app);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  // Every byte value, CRLFs and something that looks like a request: all of it is body.
  // Over 1 KiB, so curl also sends Expect: 100-continue.
  std::string body;
  for (int i = 0; i < 200; ++i) {
    for (int b = 0; b < 256; ++b)
      body.push_back(static_cast<char>(b));
    body += "\r\n\r\nGET /plaintext HTTP/1.1\r\n\r\n";
  }
  const std::string in = dir.write("body.bin", body);
  const std::string out = dir.path() + "/echoed.bin";
  const ToolResult r = run_tool(
      {"curl", "-sS", "--data-binary", "@" + in, "-H", "Content-Type: application/octet-stream",
       "-o", out, "-w", "%{http_code} %{content_type} %{size_download}", app.url("/echo")},
      kToolTimeout);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "200 application/octet-stream " + std::to_string(body.size()));
  const ToolResult echoed = run_tool({"cmp", in, out}, kToolTimeout);
  EXPECT_EQ(echoed.status, 0) << echoed.out << echoed.err;
}

TEST(HttpClientsCurl, DelayAnswersAfterTheDelayAndNotBefore) {
  REQUIRE_TOOL("curl");
  HttpApp app;
  START_APP(app);
  const auto start = Clock::now();
  const ToolResult r =
      run_tool({"curl", "-s", "-w", "\n%{http_code}", app.url("/delay?ms=50")}, kToolTimeout);
  const auto elapsed = Clock::now() - start;
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "50 ms\n\n200");
  EXPECT_GE(elapsed, milliseconds(50));
}

// ---- python3 http.client ------------------------------------------------------------------

TEST(HttpClientsPython, HttpClientServesEveryRouteOnOneKeepAliveConnection) {
  REQUIRE_TOOL("python3");
  HttpApp app;
  START_APP(app);
  const std::string script = std::string(RS_APPS_TEST_DIR) + "/http_client_check.py";
  const ToolResult r =
      run_tool({"python3", script, std::to_string(app.port()), "127.0.0.1"}, kToolTimeout);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "6 requests on one connection")) << r.out << r.err;
  EXPECT_FALSE(contains(r.out, "FAIL")) << r.out;
  const Metrics after = app.metrics();
  EXPECT_EQ(get(after, kAccepted) - get(baseline, kAccepted), 1);
  EXPECT_EQ(get(after, kRequests) - get(baseline, kRequests), 6 + 1);
  EXPECT_EQ(
      get(after, kResponses, {{"class", "4xx"}}) - get(baseline, kResponses, {{"class", "4xx"}}),
      1);
}

// ---- wrk ------------------------------------------------------------------------------------

struct WrkReport {
  std::int64_t requests = -1;
  double requests_per_s = 0;
};

std::optional<WrkReport> parse_wrk(const std::string& out) {
  // "  55278 requests in 2.00s, 12.82MB read" and "Requests/sec:  27431.12"
  // (std::regex is avoided: GCC 12 warns inside it under the sanitizers, and -Werror.)
  WrkReport report;
  const auto at = out.find(" requests in ");
  if (at == std::string::npos) return std::nullopt;
  auto digits = at;
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(out[digits - 1])))
    --digits;
  if (digits == at) return std::nullopt;
  report.requests = std::stoll(out.substr(digits, at - digits));
  const auto rate = out.find("Requests/sec:");
  if (rate != std::string::npos)
    report.requests_per_s = std::strtod(out.c_str() + rate + 13, nullptr);
  return report;
}

// Runs wrk against /plaintext for two seconds and checks it against the server's count:
// every request wrk completed was counted, and at most the requests still in flight when
// wrk stopped (connections x depth) and this test's own /metrics requests on top.
void run_wrk(int depth) {
  REQUIRE_TOOL("wrk");
  constexpr int kConnections = 32;
  HttpApp app;
  START_APP(app);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::vector<std::string> argv{"wrk", "-t1", "-c" + std::to_string(kConnections), "-d2s"};
  if (depth > 1) {
    // wrk counts the requests in the string it is given and sends the next batch only when
    // all of their answers have come back: a pipeline `depth` deep on every connection.
    const std::string script =
        "init = function(args)\n"
        "  local r = {}\n"
        "  for i = 1, " +
        std::to_string(depth) +
        " do r[i] = wrk.format(nil, \"/plaintext\") end\n"
        "  req = table.concat(r)\n"
        "end\n"
        "request = function() return req end\n";
    argv.insert(argv.end(), {"-s", dir.write("pipeline.lua", script)});
  }
  argv.push_back(app.url("/plaintext"));
  const ToolResult r = run_tool(argv, kToolTimeout);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_FALSE(contains(r.out, "Non-2xx or 3xx responses")) << r.out;
  EXPECT_FALSE(contains(r.out, "Socket errors")) << r.out;
  const auto report = parse_wrk(r.out);
  ASSERT_TRUE(report) << r.out;
  EXPECT_GT(report->requests, 0) << r.out;

  const int metrics_before = app.metrics_requests();
  const Metrics after = app.metrics();
  const std::int64_t served = get(after, kRequests) - get(baseline, kRequests);
  const std::int64_t ours = app.metrics_requests() - metrics_before;
  EXPECT_GE(served, report->requests) << r.out;
  EXPECT_LE(served, report->requests + std::int64_t{kConnections} * depth + ours) << r.out;
  EXPECT_GE(
      get(after, kResponses, {{"class", "2xx"}}) - get(baseline, kResponses, {{"class", "2xx"}}),
      report->requests);
  EXPECT_EQ(get(after, kResponses, {{"class", "4xx"}}), 0);
  EXPECT_EQ(get(after, kResponses, {{"class", "5xx"}}), 0);
  // wrk.resolve() opens one connection to test the address before the run; beyond that, a
  // connection the server dropped would show as a reconnect.
  const std::int64_t accepted = get(after, kAccepted) - get(baseline, kAccepted);
  EXPECT_GE(accepted, kConnections);
  EXPECT_LE(accepted, kConnections + 1);
  const std::int64_t receives = get(after, "ringserve_recv_completions_total") -
                                get(baseline, "ringserve_recv_completions_total");
  if (depth > 1) {
    // Pipelined for real: a batch of requests arrives together in one receive.
    EXPECT_GE(served, 4 * receives) << served << " requests in " << receives << " receives";
  }
  std::printf(
      "[ wrk      ] depth %d: %lld requests, %.0f requests/s; server counted %lld in %lld "
      "receives\n",
      depth, static_cast<long long>(report->requests), report->requests_per_s,
      static_cast<long long>(served), static_cast<long long>(receives));
  ::testing::Test::RecordProperty("wrk_requests_per_s",
                                  std::to_string(static_cast<long long>(report->requests_per_s)));
}

TEST(HttpClientsWrk, PlainLoadHasNoErrorsAndTheServerCountAgrees) {
  run_wrk(1);
}

TEST(HttpClientsWrk, Pipelined16DeepHasNoErrorsAndTheServerCountAgrees) {
  run_wrk(16);
}

// ---- the process ------------------------------------------------------------------------------

TEST(HttpApp, SigtermStillAnswersADelayInFlightAndExitsZero) {
  HttpApp app;
  START_APP(app);
  const int fd = connect_to(app.port());
  ASSERT_GE(fd, 0);
  const auto sent = Clock::now();
  ASSERT_TRUE(send_all(fd, "GET /delay?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n"));
  // In flight means the server has taken the request: wait for its count, not for a time.
  // Each /metrics request counts itself, the baseline's included in the baseline.
  ASSERT_TRUE(wait_until([&] {
    const std::int64_t requests = get(app.metrics(), kRequests) - get(baseline, kRequests);
    return requests - (app.metrics_requests() - 1) >= 1;
  }));
  ASSERT_LT(Clock::now() - sent, milliseconds(500)) << "too slow to test the delay in flight";

  app.process().signal(SIGTERM);
  ResponseReader reader(fd);
  const Response r = reader.next(milliseconds(10000));
  const auto answered = Clock::now() - sent;
  ASSERT_TRUE(r.ok) << app.process().out() << app.process().err();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "500 ms\n");
  EXPECT_GE(answered, milliseconds(500));
  EXPECT_TRUE(reader.closed()) << "answered, then closed";
  EXPECT_TRUE(wait_closed(app.probe_fd())) << "the idle keep-alive probe is closed";
  ::close(fd);

  EXPECT_EQ(app.process().wait_exit(milliseconds(10000)), 0) << app.process().err();
  const std::string& out = app.process().out();
  EXPECT_TRUE(contains(out, "ringserve-http counters:")) << out;
  EXPECT_TRUE(contains(out, " accepted=2 ")) << out;
  EXPECT_TRUE(contains(out, " connections_open=0 ")) << out;
}

// The "  --flag TYPE=default" line of CLI11's help (from the flag on), or empty.
std::string help_line(const std::string& help, const std::string& flag) {
  for (auto at = help.find(flag); at != std::string::npos; at = help.find(flag, at + 1)) {
    const std::size_t end = at + flag.size();
    const bool starts_option = at > 0 && (help[at - 1] == ' ' || help[at - 1] == ',');
    if (!starts_option || end >= help.size() || (help[end] != ' ' && help[end] != '=')) continue;
    return help.substr(at, help.find('\n', at) - at);
  }
  return {};
}

// The default CLI11 shows after '=' in the option's first column, or empty.
std::string shown_default(const std::string& line) {
  const auto column_end = line.find("  ");
  const std::string first = line.substr(0, column_end);
  const auto eq = first.rfind('=');
  if (eq == std::string::npos) return {};
  const auto end = first.find(' ', eq);
  return first.substr(eq + 1, end == std::string::npos ? end : end - eq - 1);
}

TEST(HttpApp, HelpListsEveryFlagWithItsDefault) {
  ChildProcess help("ringserve-http", {"--help"});
  ASSERT_EQ(help.wait_exit(milliseconds(10000)), 0) << help.err();
  const std::string& text = help.out();
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"--port", "8080"},
      {"--address", "127.0.0.1"},
      {"--backend", "auto"},
      {"--max-connections", "10000"},
      {"--header-timeout-ms", "10000"},
      {"--idle-timeout-ms", "60000"},
      {"--body-timeout-ms", "30000"},
      {"--send-timeout-ms", "30000"},
      {"--grace-ms", "5000"},
      {"--max-request-line-bytes", "8192"},
      {"--max-header-bytes", "16384"},
      {"--max-body-bytes", "1048576"},
  };
  for (const auto& [flag, value] : flags) {
    const std::string line = help_line(text, flag);
    ASSERT_FALSE(line.empty()) << flag << " missing from --help:\n" << text;
    EXPECT_EQ(shown_default(line), value) << flag << ": " << line;
  }
  // Flags being added alongside: checked when present, each with a type and a description.
  for (const char* flag : {"--root", "--access-log"}) {
    if (!contains(text, flag)) continue;
    const std::string line = help_line(text, flag);
    EXPECT_TRUE(line.size() > std::strlen(flag) + 1 &&
                std::isupper(static_cast<unsigned char>(line[std::strlen(flag) + 1])))
        << flag << " should show its type: " << line;
  }
}

TEST(HttpApp, ZeroTimeoutsAndLimitsAreRefusedAtStartUpWithWhatToDo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--idle-timeout-ms", "0"}, "--idle-timeout-ms 0: a timeout of 0 would expire at once"},
      {{"--max-body-bytes", "0"}, "--max-body-bytes 0: a limit of 0 would refuse every request"},
      {{"--max-body-memory-bytes", "1000"},
       "raise --max-body-memory-bytes to at least 1048576 or lower --max-body-bytes"},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> args = {"--port", "0", "--address", "127.0.0.1"};
    args.insert(args.end(), flags.begin(), flags.end());
    ChildProcess server("ringserve-http", args);
    EXPECT_EQ(server.wait_exit(milliseconds(10000)), 1) << flags[0];
    EXPECT_TRUE(contains(server.err(), message)) << server.err();
  }
}

TEST(HttpApp, StartupLineNamesTheBackendAndThePort) {
  HttpApp app;
  ASSERT_TRUE(app.started()) << app.process().err();
  EXPECT_TRUE(contains(*app.startup_line(), "ringserve-http listening on 127.0.0.1 port "))
      << *app.startup_line();
  EXPECT_TRUE(contains(*app.startup_line(), "backend=uring")) << *app.startup_line();
  app.process().signal(SIGINT);
  EXPECT_EQ(app.process().wait_exit(milliseconds(10000)), 0) << app.process().err();
}

}  // namespace
}  // namespace rs::test
