// perf/echo-load, the echo load generator: its counts against ringserve-echo's own counters,
// its error accounting against servers that refuse or corrupt, and its latency histogram.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "perf/latency_histogram.hpp"
#include "tests/apps/load_tool.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

// The JSON line from echo-load's stdout (the human summary goes to stderr with --json).
std::string json_of(const ChildProcess& load) {
  return json_line_of(load.out(), "echo-load");
}

struct EchoServer {
  ChildProcess process{"ringserve-echo", {"--port", "0", "--address", "127.0.0.1"}};
  std::uint16_t port = 0;

  EchoServer() {
    const auto line = process.wait_for_line("listening on", milliseconds(10000));
    if (line) port = port_from_startup_line(*line);
  }
  // Stops the server and returns its exit report (the counters line).
  std::string stop() {
    process.signal(SIGTERM);
    EXPECT_EQ(process.wait_exit(milliseconds(10000)), 0) << process.err();
    return process.out();
  }
};

std::vector<std::string> load_args(std::uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> args{"--host", "127.0.0.1", "--port", std::to_string(port), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(EchoLoad, CountRunAddsUpWithTheServersOwnCounters) {
  EchoServer server;
  ASSERT_NE(server.port, 0) << server.process.err();
  ChildProcess load("echo-load",
                    load_args(server.port, {"--connections", "20", "--count", "2000"}));
  ASSERT_EQ(load.wait_exit(milliseconds(60000)), 0) << load.out() << load.err();
  const std::string json = json_of(load);
  ASSERT_FALSE(json.empty()) << load.out();

  EXPECT_EQ(json_number(json, "messages"), 2000) << json;
  EXPECT_EQ(json_number(json, "total_messages"), 2000) << json;
  EXPECT_EQ(json_number(json, "echo_bytes"), 2000 * 128) << json;
  EXPECT_EQ(json_number(json, "connected"), 20) << json;
  EXPECT_EQ(json_number(json, "errors"), 0) << json;
  EXPECT_GT(json_number(json, "messages_per_s"), 0) << json;
  EXPECT_GT(json_number(json, "echo_mb_per_s"), 0) << json;
  const double p50 = json_number(json, "latency_us_p50");
  const double p90 = json_number(json, "latency_us_p90");
  const double p99 = json_number(json, "latency_us_p99");
  const double p999 = json_number(json, "latency_us_p999");
  EXPECT_GT(p50, 0) << json;
  EXPECT_LE(json_number(json, "latency_us_min"), p50) << json;
  EXPECT_LE(p50, p90) << json;
  EXPECT_LE(p90, p99) << json;
  EXPECT_LE(p99, p999) << json;
  EXPECT_LE(p999, json_number(json, "latency_us_max")) << json;
  EXPECT_NE(load.err().find("2000 messages"), std::string::npos) << load.err();

  const std::string report = server.stop();
  EXPECT_NE(report.find(" accepted=20 "), std::string::npos) << report;
  EXPECT_NE(report.find(" bytes_out=256000 "), std::string::npos) << report;
}

// Several messages per send, several receives per message (the receive window is 16 KiB),
// and a size that lines up with nothing.
TEST(EchoLoad, DeepPipelinesOfLargeMessagesComeBackIntact) {
  EchoServer server;
  ASSERT_NE(server.port, 0) << server.process.err();
  ChildProcess load("echo-load", load_args(server.port, {"--connections", "4", "--count", "600",
                                                         "--size", "5003", "--depth", "8"}));
  ASSERT_EQ(load.wait_exit(milliseconds(60000)), 0) << load.out() << load.err();
  const std::string json = json_of(load);
  EXPECT_EQ(json_number(json, "messages"), 600) << json;
  EXPECT_EQ(json_number(json, "errors"), 0) << json;
  const std::string report = server.stop();
  EXPECT_NE(report.find(" bytes_out=3001800 "), std::string::npos) << report;
}

TEST(EchoLoad, DurationRunLeavesWarmupOutOfTheCount) {
  EchoServer server;
  ASSERT_NE(server.port, 0) << server.process.err();
  ChildProcess load("echo-load",
                    load_args(server.port, {"--connections", "8", "--size", "64", "--duration-s",
                                            "0.3", "--warmup-s", "0.1"}));
  ASSERT_EQ(load.wait_exit(milliseconds(60000)), 0) << load.out() << load.err();
  const std::string json = json_of(load);
  const double messages = json_number(json, "messages");
  const double total = json_number(json, "total_messages");
  EXPECT_GT(messages, 0) << json;
  EXPECT_GT(total, messages) << json;
  EXPECT_EQ(json_number(json, "errors"), 0) << json;
  const std::string report = server.stop();
  const std::string bytes = " bytes_out=" + std::to_string(static_cast<long long>(total) * 64);
  EXPECT_NE(report.find(bytes + " "), std::string::npos) << report << json;
}

TEST(EchoLoad, RefusedConnectionsAreErrorsAndTheExitStatusSaysSo) {
  std::uint16_t port = 0;
  const int fd = loopback_socket(false, port);
  ASSERT_GE(fd, 0);
  ChildProcess load("echo-load", load_args(port, {"--connections", "3", "--count", "10"}));
  EXPECT_EQ(load.wait_exit(milliseconds(60000)), 1) << load.out() << load.err();
  ::close(fd);
  const std::string json = json_of(load);
  EXPECT_EQ(json_number(json, "connect_errors"), 3) << json;
  EXPECT_EQ(json_number(json, "messages"), 0) << json;
  EXPECT_NE(load.err().find("Connection refused"), std::string::npos) << load.err();
}

// One connection's echo server: what it reads it sends back after `delay`, its first byte
// flipped when `corrupt`.
void serve_echo(int listener, bool corrupt, milliseconds delay) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, 10000) != 1) return;
  const int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0) return;
  char buf[4096];
  for (;;) {
    pollfd q{fd, POLLIN, 0};
    if (::poll(&q, 1, 10000) != 1) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (corrupt) buf[0] = static_cast<char>(buf[0] ^ 0x5a);
    std::this_thread::sleep_for(delay);  // the server's own time, which the latency must show
    if (::send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  ::close(fd);
}

// echo-load with `args` against serve_echo on a loopback port: its exit status, stderr and
// JSON line (no status when it did not exit in time, or the listener could not be made, which
// fails the test).
struct EchoRun {
  std::optional<int> status;
  std::string err;
  std::string json;
};

EchoRun run_against_echo(bool corrupt, milliseconds delay, std::vector<std::string> args) {
  std::uint16_t port = 0;
  const int listener = loopback_socket(true, port);
  EXPECT_GE(listener, 0);
  if (listener < 0) return {};
  std::thread server(serve_echo, listener, corrupt, delay);
  ChildProcess load("echo-load", load_args(port, std::move(args)));
  EchoRun run;
  run.status = load.wait_exit(milliseconds(60000));
  server.join();
  ::close(listener);
  run.err = load.err();
  run.json = json_of(load);
  return run;
}

// An echo that takes the server 50 ms: every message's latency is at least that, timed when
// its echo is reaped. (Timed with the clock of the turn before, as it once was, the first
// message read about the connect's round trip and the run ended a turn early.)
TEST(EchoLoad, EachMessageIsTimedWhenItsEchoArrives) {
  const EchoRun run = run_against_echo(false, milliseconds(50),
                                       {"--connections", "1", "--count", "3", "--size", "16"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(json_number(run.json, "messages"), 3) << run.json;
  EXPECT_GE(json_number(run.json, "latency_us_min"), 50000) << run.json;
  EXPECT_GE(json_number(run.json, "elapsed_s"), 0.15) << run.json;
}

TEST(EchoLoad, CorruptedEchoIsCountedAsAMismatch) {
  const EchoRun run =
      run_against_echo(true, milliseconds(0), {"--connections", "1", "--count", "5"});
  EXPECT_EQ(run.status, 1) << run.err;
  EXPECT_EQ(json_number(run.json, "mismatches"), 1) << run.json;
  EXPECT_EQ(json_number(run.json, "messages"), 0) << run.json;
  EXPECT_NE(run.err.find("differ"), std::string::npos) << run.err;
}

TEST(EchoLoad, HelpListsEveryFlag) {
  ChildProcess help("echo-load", {"--help"});
  EXPECT_EQ(help.wait_exit(milliseconds(10000)), 0);
  for (const char* flag :
       {"--host", "--port", "--connections", "--connect-rate", "--size", "--depth", "--duration-s",
        "--count", "--warmup-s", "--timeout-s", "--json"}) {
    EXPECT_NE(help.out().find(flag), std::string::npos) << flag;
  }
}

TEST(LatencyHistogram, EveryBucketIsWithinOneSixtyFourthOfItsValues) {
  using perf::LatencyHistogram;
  for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{63}, std::uint64_t{64},
                          std::uint64_t{127}, std::uint64_t{128}, std::uint64_t{1000},
                          std::uint64_t{123456789}, LatencyHistogram::kMaxValueNs}) {
    const std::size_t i = LatencyHistogram::index_of(v);
    ASSERT_LT(i, LatencyHistogram::kBucketCount) << v;
    const std::uint64_t lo = LatencyHistogram::lowest_in_bucket(i);
    const std::uint64_t hi = LatencyHistogram::highest_in_bucket(i);
    EXPECT_LE(lo, v);
    EXPECT_GE(hi, v);
    EXPECT_LE(hi - lo, lo / 64) << v;
    if (i + 1 < LatencyHistogram::kBucketCount) {
      EXPECT_EQ(LatencyHistogram::lowest_in_bucket(i + 1), hi + 1) << v;
    }
  }
}

TEST(LatencyHistogram, PercentilesOfAUniformSpreadLandWithinPrecision) {
  perf::LatencyHistogram h;
  EXPECT_EQ(h.value_at_percentile(50), 0U);
  for (std::uint64_t us = 1; us <= 10000; ++us)
    h.record(us * 1000);
  EXPECT_EQ(h.count(), 10000U);
  EXPECT_EQ(h.min_ns(), 1000U);
  EXPECT_EQ(h.max_ns(), 10'000'000U);
  for (const auto& [percent, exact] : {std::pair{50.0, 5'000'000.0},
                                       {90.0, 9'000'000.0},
                                       {99.0, 9'900'000.0},
                                       {99.9, 9'990'000.0},
                                       {100.0, 10'000'000.0}}) {
    const auto got = static_cast<double>(h.value_at_percentile(percent));
    EXPECT_GE(got, exact) << percent;
    EXPECT_LE(got, exact * (1 + 1.0 / 64)) << percent;
  }
  h.record(UINT64_C(1) << 40);  // beyond the cap: counted at the cap, still the max
  EXPECT_EQ(h.max_ns(), UINT64_C(1) << 40);
}

}  // namespace
}  // namespace rs::test
