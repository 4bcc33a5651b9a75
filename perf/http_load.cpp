// http-load: an open-loop HTTP/1.1 load generator over io_uring. wrk stays the closed-loop
// tool; this one sends each request at its scheduled time whether or not the server has kept
// up, and times it from then, so queueing shows in the latency instead of being omitted.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "perf/hgrm.hpp"
#include "perf/http_load_client.hpp"
#include "perf/load_process.hpp"

namespace {

using rs::perf::HttpLoadConfig;
using rs::perf::HttpLoadResult;
using rs::perf::ScheduleKind;

constexpr int kExitErrors = 1;
constexpr int kExitCannotStart = 2;

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

// A latency for people: microseconds below a millisecond, milliseconds below ten seconds.
std::string readable(double latency_us) {
  if (latency_us < 1000) return fmt::format("{:.0f}us", latency_us);
  if (latency_us < 10e6) return fmt::format("{:.2f}ms", latency_us / 1000);
  return fmt::format("{:.2f}s", latency_us / 1e6);
}

const char* schedule_name(ScheduleKind kind) {
  return kind == ScheduleKind::kPoisson ? "poisson" : "uniform";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

double achieved_rps(const HttpLoadResult& r) {
  return r.elapsed_s > 0 ? static_cast<double>(r.requests) / r.elapsed_s : 0;
}

// One flat line; the perf lab reads these names.
std::string json_line(const HttpLoadConfig& config, const HttpLoadResult& r) {
  const auto& h = r.latency;
  std::string line = fmt::format(
      "{{\"tool\":\"http-load\",\"host\":{},\"port\":{},\"path\":{},\"rate\":{},"
      "\"schedule\":\"{}\",\"seed\":{},\"connections\":{},\"depth\":{},\"churn\":{},"
      "\"warmup_s\":{},\"duration_s\":{},\"requests\":{},\"responses_total\":{},\"sent\":{},"
      "\"lost\":{},\"unsent\":{},\"elapsed_s\":{:.6f},\"achieved_rps\":{:.1f},",
      json_string(config.host), config.port, json_string(config.path), config.rate,
      schedule_name(config.schedule), config.seed, config.connections, config.depth, config.churn,
      config.warmup_s, config.duration_s, r.requests, r.responses_total, r.sent, r.lost, r.unsent,
      r.elapsed_s, achieved_rps(r));
  line += fmt::format(
      "\"latency_us_p50\":{:.3f},\"latency_us_p90\":{:.3f},\"latency_us_p99\":{:.3f},"
      "\"latency_us_p999\":{:.3f},\"latency_us_min\":{:.3f},\"latency_us_max\":{:.3f},"
      "\"latency_us_mean\":{:.3f},",
      us(h.value_at_percentile(50)), us(h.value_at_percentile(90)), us(h.value_at_percentile(99)),
      us(h.value_at_percentile(99.9)), us(h.min_ns()), us(h.max_ns()), h.mean_ns() / 1000.0);
  line += fmt::format(
      "\"errors\":{},\"connect_errors\":{},\"resets\":{},\"timeouts\":{},\"bad_responses\":{},"
      "\"stalls\":{},\"non_2xx\":{},\"connections_opened\":{},\"backlog_max\":{},"
      "\"late_sends\":{},\"client_late_sends\":{},\"client_cpu_busy\":{:.3f},\"ring\":\"{}\"}}",
      r.errors.total(), r.errors.connect, r.errors.reset, r.errors.timeout, r.errors.bad_response,
      r.errors.stalled, r.non_2xx, r.connections_opened, r.backlog_max, r.late_sends,
      r.client_late_sends, r.client_cpu_busy, r.ring_mode);
  return line;
}

std::string summary(const HttpLoadConfig& config, const HttpLoadResult& r) {
  const auto& h = r.latency;
  const std::string load = config.rate > 0
                               ? fmt::format("{:g} requests/s {} (open loop)", config.rate,
                                             schedule_name(config.schedule))
                               : std::string("closed loop");
  std::string text = fmt::format(
      "http-load: GET {} on {}:{}, {} connections, depth {}, {}{}, ring {}\n", config.path,
      config.host, config.port, config.connections, config.depth, load,
      config.churn > 0 ? fmt::format(", a new connection every {} requests", config.churn) : "",
      r.ring_mode);
  text += fmt::format("  {} requests in {:.3f} s: {:.0f} requests/s", r.requests, r.elapsed_s,
                      achieved_rps(r));
  text += fmt::format(" ({} responses with the warm-up, {} sent, {} connections opened)\n",
                      r.responses_total, r.sent, r.connections_opened);
  text += fmt::format(
      "  latency from the {}: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}\n",
      config.rate > 0 ? "intended send time" : "send", readable(us(h.value_at_percentile(50))),
      readable(us(h.value_at_percentile(90))), readable(us(h.value_at_percentile(99))),
      readable(us(h.value_at_percentile(99.9))), readable(us(h.max_ns())),
      readable(h.mean_ns() / 1000.0));
  if (config.rate > 0) {
    text += fmt::format(
        "  backlog: at most {} requests waited for a connection; {} sent more than 1 ms late "
        "(about {} of them by this generator's own delay, not the server's); {} never sent (still "
        "waiting when sending stopped, --timeout after the window at most: in the latency at "
        "what they had waited, a lower bound)\n",
        r.backlog_max, r.late_sends, r.client_late_sends, r.unsent);
    text +=
        fmt::format("  this generator's CPU: {:.0f}% busy over the run\n", 100 * r.client_cpu_busy);
  }
  text += fmt::format(
      "  errors: {} (connect {}, reset {}, timeout {}, bad response {}, stalled {}; {} requests "
      "lost), non-2xx: {}\n",
      r.errors.total(), r.errors.connect, r.errors.reset, r.errors.timeout, r.errors.bad_response,
      r.errors.stalled, r.lost, r.non_2xx);
  if (!r.first_error.empty()) text += fmt::format("  first error: {}\n", r.first_error);
  return text;
}

// An option whose --help shows its default, with a check on its value.
template <typename T>
void add_checked(CLI::App& app, const char* name, T& value, const char* help,
                 const CLI::Validator& check) {
  app.add_option(name, value, help)->capture_default_str()->check(check);
}

// The perf lab's script passes these flags by name: keep them.
void add_flags(CLI::App& app, HttpLoadConfig& config, std::string& schedule, bool& json,
               std::string& hgrm) {
  app.add_option("--port", config.port, "Server port")->required()->check(CLI::Range(1, 65535));
  app.add_option("--host", config.host, "Server address (resolved once at start)")
      ->capture_default_str();
  app.add_option("--path", config.path, "The request target of every GET")->capture_default_str();
  app.add_option("--header", config.headers,
                 "\"Name: value\" sent with every request (repeatable; one named Host replaces "
                 "the default)");
  add_checked(app, "--rate", config.rate,
              "Requests per second over all connections, below 1 too (0: closed loop, every "
              "connection keeps --depth in flight). Every request due in the window is sent, "
              "after it if need be, and timed; those still unsent --timeout after the window "
              "are counted in unsent and timed to then (a lower bound)",
              CLI::NonNegativeNumber);
  add_checked(app, "--schedule", schedule,
              "uniform: evenly spaced; poisson: exponential gaps (seeded by --seed)",
              CLI::IsMember({"uniform", "poisson"}));
  app.add_option("--seed", config.seed, "Seed of the poisson schedule")->capture_default_str();
  add_checked(app, "--duration", config.duration_s, "Seconds of measured load after the warm-up",
              CLI::PositiveNumber);
  add_checked(app, "--warmup", config.warmup_s,
              "Seconds of load before measuring: answered and in responses_total, not in the "
              "latency",
              CLI::NonNegativeNumber);
  add_checked(app, "--connections", config.connections, "Connections kept open",
              CLI::Range(1U, 1U << 20));
  add_checked(app, "--depth", config.depth, "Requests outstanding per connection at most",
              CLI::Range(1U, 1U << 12));
  app.add_option("--churn", config.churn,
                 "Requests per connection: the last says Connection: close, and after its "
                 "response a new connection takes its place (0: keep connections)")
      ->capture_default_str();
  add_checked(app, "--timeout", config.timeout_s,
              "Seconds a connect or a response may be outstanding before it is an error; also "
              "the longest the window's backlog is sent for after it, and the longest wait for "
              "the last responses",
              CLI::PositiveNumber);
  app.add_flag("--json", json, "Print one flat JSON line of results on stdout");
  app.add_option("--hgrm", hgrm,
                 "Write the latency histogram to FILE in HdrHistogram's percentile "
                 "distribution format (microseconds)")
      ->type_name("FILE");
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{
      "http-load: open-loop HTTP/1.1 GET load over io_uring, latency measured from each "
      "request's intended send time (queueing included).\nThe summary goes to stderr; --json "
      "prints one JSON line on stdout.\nExit status: 0 when responses came and none failed, 1 on "
      "any error or non-2xx response or none measured, 2 on bad flags or when it cannot start."};
  HttpLoadConfig config;
  bool json = false;
  std::string schedule = "uniform";
  std::string hgrm_path;
  add_flags(app, config, schedule, json, hgrm_path);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : kExitCannotStart;
  }
  config.schedule = schedule == "poisson" ? ScheduleKind::kPoisson : ScheduleKind::kUniform;

  // The file is opened before the run, so that a bad path costs no run.
  std::unique_ptr<std::FILE, FileCloser> hgrm;
  if (!hgrm_path.empty()) {
    hgrm.reset(std::fopen(hgrm_path.c_str(), "w"));
    if (!hgrm) {
      std::fprintf(stderr, "http-load: cannot write --hgrm %s: %s\n", hgrm_path.c_str(),
                   std::strerror(errno));
      return kExitCannotStart;
    }
  }
  const auto run = rs::perf::start_load("http-load", config, rs::perf::run_http_load);
  if (!run) return kExitCannotStart;
  const HttpLoadResult& result = *run;
  std::fputs(summary(config, result).c_str(), stderr);
  if (json) std::printf("%s\n", json_line(config, result).c_str());
  if (hgrm) {
    const std::string text = rs::perf::hgrm_text(result.latency);
    if (std::fwrite(text.data(), 1, text.size(), hgrm.get()) != text.size() ||
        std::fclose(hgrm.release()) != 0) {
      std::fprintf(stderr, "http-load: writing --hgrm %s failed\n", hgrm_path.c_str());
      return kExitErrors;
    }
  }
  const bool failed = result.errors.total() > 0 || result.non_2xx > 0 || result.requests == 0;
  return failed ? kExitErrors : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "http-load: %s\n", e.what());
  return kExitCannotStart;
}
