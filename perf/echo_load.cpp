// echo-load: a load generator for ringserve-echo (or any echo server). One io_uring thread
// drives every connection, so one load core can keep one server core busy.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "perf/echo_load_client.hpp"
#include "perf/load_process.hpp"

namespace {

using rs::perf::LoadConfig;
using rs::perf::LoadResult;

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

struct Rates {
  double messages_per_s = 0;
  double echo_mb_per_s = 0;
};

Rates rates_of(const LoadConfig& config, const LoadResult& r) {
  if (r.elapsed_s <= 0) return {};
  const double messages = static_cast<double>(r.messages);
  return {messages / r.elapsed_s, messages * config.size / r.elapsed_s / 1e6};
}

std::string json_line(const LoadConfig& config, const LoadResult& r) {
  const Rates rates = rates_of(config, r);
  const auto& h = r.latency;
  return fmt::format(
      "{{\"tool\":\"echo-load\",\"port\":{},\"connections\":{},\"connected\":{},\"size\":{},"
      "\"depth\":{},\"messages\":{},\"total_messages\":{},\"echo_bytes\":{},\"elapsed_s\":{:.6f},"
      "\"messages_per_s\":{:.1f},\"echo_mb_per_s\":{:.3f},\"latency_us_p50\":{:.3f},"
      "\"latency_us_p90\":{:.3f},\"latency_us_p99\":{:.3f},\"latency_us_p999\":{:.3f},"
      "\"latency_us_min\":{:.3f},\"latency_us_max\":{:.3f},\"latency_us_mean\":{:.3f},"
      "\"errors\":{},\"connect_errors\":{},\"resets\":{},\"mismatches\":{},\"timeouts\":{},"
      "\"ring\":\"{}\"}}",
      config.port, config.connections, r.connected, config.size, config.depth, r.messages,
      r.total_messages, r.messages * config.size, r.elapsed_s, rates.messages_per_s,
      rates.echo_mb_per_s, us(h.value_at_percentile(50)), us(h.value_at_percentile(90)),
      us(h.value_at_percentile(99)), us(h.value_at_percentile(99.9)), us(h.min_ns()),
      us(h.max_ns()), h.mean_ns() / 1000.0, r.errors.total(), r.errors.connect, r.errors.reset,
      r.errors.mismatch, r.errors.timeout, r.ring_mode);
}

std::string summary(const LoadConfig& config, const LoadResult& r) {
  const Rates rates = rates_of(config, r);
  const auto& h = r.latency;
  std::string text = fmt::format(
      "echo-load: {}:{}, {}/{} connections, {}-byte messages, depth {}, ring {}\n", config.host,
      config.port, r.connected, config.connections, config.size, config.depth, r.ring_mode);
  text += fmt::format("  {} messages in {:.3f} s: {:.0f} msg/s, {:.2f} MB/s echoed", r.messages,
                      r.elapsed_s, rates.messages_per_s, rates.echo_mb_per_s);
  text += " (each way; 1 MB = 10^6 bytes)";
  if (r.total_messages > r.messages) {
    text += fmt::format(", {} warm-up messages not counted", r.total_messages - r.messages);
  }
  text += fmt::format(
      "\n  latency us: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}  mean "
      "{:.1f}\n",
      us(h.value_at_percentile(50)), us(h.value_at_percentile(90)), us(h.value_at_percentile(99)),
      us(h.value_at_percentile(99.9)), us(h.max_ns()), h.mean_ns() / 1000.0);
  text += fmt::format("  errors: {} (connect {}, reset {}, mismatch {}, timeout {})\n",
                      r.errors.total(), r.errors.connect, r.errors.reset, r.errors.mismatch,
                      r.errors.timeout);
  if (!r.first_error.empty()) text += fmt::format("  first error: {}\n", r.first_error);
  return text;
}

void add_flags(CLI::App& app, LoadConfig& config, bool& json) {
  app.add_option("--host", config.host, "Server address (resolved once at start)")
      ->capture_default_str();
  app.add_option("--port", config.port, "Server port")->capture_default_str();
  app.add_option("--connections", config.connections, "Connections to open")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1U << 20));
  app.add_option("--connect-rate", config.connect_rate,
                 "Connections opened per second (0: all at once)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--size", config.size, "Bytes per message")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1U << 26));
  app.add_option("--depth", config.depth, "Messages in flight per connection")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1U << 16));
  auto* duration = app.add_option("--duration-s", config.duration_s,
                                  "Seconds to issue messages after warm-up (without --count)")
                       ->capture_default_str()
                       ->check(CLI::PositiveNumber);
  app.add_option("--count", config.count,
                 "Messages to issue after warm-up, across all connections (instead of "
                 "--duration-s)")
      ->check(CLI::PositiveNumber)
      ->excludes(duration);
  app.add_option("--warmup-s", config.warmup_s,
                 "Seconds of load before measuring; those messages are checked, not counted")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-s", config.timeout_s,
                 "A connect or message outstanding this long counts as an error")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", json,
               "Also print one JSON line on stdout; the human summary then goes to stderr");
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{
      "echo-load: fixed-size messages to an echo server over io_uring, every echoed byte "
      "checked.\nReports messages/s, echoed MB/s and latency percentiles (issue to last byte "
      "back).\nExit status: 0 when messages came back and nothing failed, 1 on any error or "
      "none completed, 2 when it cannot start."};
  LoadConfig config;
  bool json = false;
  add_flags(app, config, json);
  CLI11_PARSE(app, argc, argv);

  const auto result = rs::perf::start_load("echo-load", config, rs::perf::run_echo_load);
  if (!result) return 2;
  const std::string text = summary(config, *result);
  if (json) {
    std::fputs(text.c_str(), stderr);
    std::printf("%s\n", json_line(config, *result).c_str());
  } else {
    std::fputs(text.c_str(), stdout);
  }
  return result->errors.total() > 0 || result->messages == 0 ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "echo-load: %s\n", e.what());
  return 2;
}
