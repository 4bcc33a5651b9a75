// The built binaries on every backend: --backend picks the I/O model, auto falls back to epoll
// where io_uring is refused, uring says what to do when it is, and a SIGTERM stops every loop
// of a multi-loop server after answering what is pending.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

std::string bin(const char* name) {
  return std::string(RS_BIN_DIR) + "/" + name;
}

// GET /metrics on a connection of its own: the body, empty on failure.
std::string scrape_metrics(std::uint16_t port) {
  const int fd = connect_to(port);
  if (fd < 0) return {};
  std::string body;
  if (send_all(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) {
    HttpReader reader(fd);
    const HttpResponse r = reader.next(milliseconds(5000));
    if (r.ok && r.status == 200) body = r.body;
  }
  ::close(fd);
  return body;
}

// One metric of a /metrics body summed over its loops, e.g. "ringserve_http_requests_total"; -1
// when absent.
long metric_value(const std::string& metrics, const std::string& name) {
  return static_cast<long>(metric_sum(metrics, name));
}

// ringserve_http_requests_total from GET /metrics on a connection of its own; -1 on failure.
long requests_seen(std::uint16_t port) {
  return metric_value(scrape_metrics(port), "ringserve_http_requests_total");
}

TEST(BackendApp, UringRefusedSaysSoAndSuggestsEpoll) {
  ChildProcess server("no_uring", {bin("ringserve-http"), "--backend", "uring", "--port", "0"});
  const auto status = server.wait_exit(milliseconds(10000));
  ASSERT_TRUE(status);
  EXPECT_NE(*status, 0);
  EXPECT_NE(server.err().find("io_uring"), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("--backend epoll"), std::string::npos) << server.err();
}

TEST(BackendApp, AutoFallsBackToEpollWhenUringIsRefusedAndServes) {
  ChildProcess server("no_uring", {bin("ringserve-echo"), "--port", "0"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  EXPECT_NE(line->find("backend=epoll"), std::string::npos) << *line;
  EXPECT_NE(server.err().find("io_uring unavailable"), std::string::npos) << server.err();
  const int fd = connect_to(port_from_startup_line(*line));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "ping"));
  EXPECT_EQ(recv_string(fd, 4), "ping");
  ::close(fd);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
}

TEST(BackendApp, AutoPicksUringWhereItIsAvailable) {
  ChildProcess server("ringserve-echo", {"--port", "0"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  if (server.err().find("io_uring unavailable") != std::string::npos) {
    server.signal(SIGTERM);
    GTEST_SKIP() << "this host refuses io_uring: " << server.err();
  }
  EXPECT_NE(line->find("backend=uring"), std::string::npos) << *line;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
}

TEST(BackendApp, ThreadsBackendRefusesSeveralLoops) {
  ChildProcess server("ringserve-http", {"--backend", "threads", "--threads", "2", "--port", "0"});
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 1);
  EXPECT_NE(server.err().find("leave --threads at 1"), std::string::npos) << server.err();
}

// The CPUs a thread may run on, from /proc/PID/task/TID/status ("Cpus_allowed_list: 1").
std::map<std::string, std::string> cpus_by_thread_name(pid_t pid) {
  std::map<std::string, std::string> found;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(task)) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    std::ifstream status(entry.path() / "status");
    for (std::string line; std::getline(status, line);) {
      const std::string key = "Cpus_allowed_list:";
      if (line.rfind(key, 0) == 0) {
        found[name] = line.substr(line.find_first_not_of(" \t", key.size()));
      }
    }
  }
  return found;
}

TEST(BackendApp, PinPutsLoopIOnTheIthAllowedCpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs to tell the loops apart";
  ChildProcess server("ringserve-http",
                      {"--backend", "epoll", "--threads", "2", "--pin", "--port", "0"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  // Loops pin themselves before they report ready, and start() waits for every loop.
  const auto threads = cpus_by_thread_name(server.pid());
  ASSERT_TRUE(threads.count("rs-loop-0") && threads.count("rs-loop-1")) << server.err();
  EXPECT_EQ(threads.at("rs-loop-0"), std::to_string(cpus[0]));
  EXPECT_EQ(threads.at("rs-loop-1"), std::to_string(cpus[1]));
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
}

TEST(BackendApp, PinIsRefusedOnTheThreadsBackend) {
  ChildProcess server("ringserve-http", {"--backend", "threads", "--pin", "--port", "0"});
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 1);
  EXPECT_NE(server.err().find("drop --pin"), std::string::npos) << server.err();
}

// Threads of a process with this name, from /proc/PID/task/TID/comm; -1, and a test failure,
// when /proc cannot be read (a thread that ends while it is read is not counted).
int threads_named(pid_t pid, const std::string& name) {
  const std::filesystem::path task = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  std::filesystem::directory_iterator it(task, ec);
  int n = 0;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream comm(it->path() / "comm");
    std::string found;
    if (!std::getline(comm, found)) {
      if (!std::filesystem::exists(it->path())) continue;  // it ended meanwhile
      ADD_FAILURE() << "cannot read " << (it->path() / "comm");
      return -1;
    }
    n += found == name ? 1 : 0;
  }
  if (ec) {
    ADD_FAILURE() << "cannot read " << task << ": " << ec.message();
    return -1;
  }
  return n;
}

// One GET /plaintext on a connection of its own; its status (0 when no whole answer came).
int get_plaintext(std::uint16_t port) {
  const int fd = connect_to(port);
  if (fd < 0) return 0;
  int status = 0;
  if (send_all(fd, "GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) {
    HttpReader reader(fd);
    const HttpResponse r = reader.next(milliseconds(10000));
    status = r.ok ? r.status : 0;
  }
  ::close(fd);
  return status;
}

// --thread-idle-timeout-ms: a worker thread that has waited that long for a connection ends
// (its thread is gone from the process, joined and counted), and the next client is served by a
// new one.
TEST(BackendApp, ThreadsBackendEndsWorkersIdleLongerThanTheirTimeout) {
  ChildProcess help("ringserve-http", {"--help"});
  EXPECT_EQ(help.wait_exit(milliseconds(10000)), 0);
  EXPECT_NE(help.out().find("--thread-idle-timeout-ms"), std::string::npos) << help.out();

  ChildProcess server("ringserve-http",
                      {"--backend", "threads", "--port", "0", "--thread-idle-timeout-ms", "100"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  const std::uint16_t port = port_from_startup_line(*line);
  // No worker yet; then the worker threads gone, or -1 (a failure already reported) when /proc
  // cannot be read.
  ASSERT_EQ(threads_named(server.pid(), "rs-worker"), 0);
  const auto workers_gone = [&] {
    wait_until([&] { return threads_named(server.pid(), "rs-worker") <= 0; }, milliseconds(10000));
    return threads_named(server.pid(), "rs-worker");
  };
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(get_plaintext(port), 200);
    // A worker names itself before it serves: the one that answered is an rs-worker now, or
    // already gone. It waits 100 ms for another connection, then ends and is joined; only then
    // does the next round connect, so each round is served by a new worker.
    ASSERT_EQ(workers_gone(), 0) << "rs-worker threads after round " << round;
  }
  // Both ended on their own and were counted when they were joined (before the acceptor takes
  // the next connection). The scrape is served by a new worker, the only one.
  const std::string metrics = scrape_metrics(port);
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metric_value(metrics, "ringserve_worker_threads_reaped_total"), 2) << metrics;
  EXPECT_EQ(metric_value(metrics, "ringserve_worker_threads"), 1) << metrics;
  // That one ends too before the stop, which therefore finds no worker to end.
  ASSERT_EQ(workers_gone(), 0);
  server.signal(SIGTERM);
  ASSERT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
  EXPECT_NE(server.out().find(" worker_threads_reaped=3"), std::string::npos) << server.out();
}

// A "Connection: close" answer half-closes its socket before the close. When the peer's end
// arrives in the same turn, the close runs at once; the half-close must not outlive it, or the
// descriptor number, handed to the next client by another loop's accept, is half-closed under
// that client (its answer then fails with EPIPE). A race: many rounds make it show.
TEST(BackendApp, CloseAnswerNeverHalfClosesTheNextClient) {
  ChildProcess server("ringserve-http", {"--backend", "uring", "--threads", "2", "--port", "0"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  if (line->find("backend=uring") == std::string::npos) GTEST_SKIP() << *line;
  const std::uint16_t port = port_from_startup_line(*line);
  int failed = 0;
  constexpr int kRounds = 4000;
  for (int i = 0; i < kRounds && failed == 0; ++i) {
    const int closing = connect_to(port);
    ASSERT_GE(closing, 0);
    ASSERT_TRUE(
        send_all(closing, "GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    HttpReader(closing).next(milliseconds(5000));
    ::close(closing);  // at once: the end arrives while the server closes
    const int next = connect_to(port);
    ASSERT_GE(next, 0);
    HttpReader reader(next);
    for (int j = 0; j < 2; ++j) {
      if (!send_all(next, "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n") ||
          !reader.next(milliseconds(5000)).ok) {
        ++failed;
        break;
      }
    }
    ::close(next);
  }
  EXPECT_EQ(failed, 0);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
}

struct ShutdownCase {
  const char* backend;
  const char* threads;
};

class BackendShutdown : public ::testing::TestWithParam<ShutdownCase> {};

// SIGTERM with /delay answers pending on several connections (spread over the loops): each is
// answered, the server exits 0 well within the grace period.
TEST_P(BackendShutdown, SigtermAnswersPendingDelaysOnEveryLoopAndExitsZero) {
  ChildProcess server("ringserve-http", {"--backend", GetParam().backend, "--threads",
                                         GetParam().threads, "--port", "0", "--grace-ms", "5000"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  EXPECT_NE(line->find(std::string("backend=") + GetParam().backend), std::string::npos) << *line;
  const std::uint16_t port = port_from_startup_line(*line);
  constexpr int kClients = 8;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(connect_to(port));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(send_all(fds.back(), "GET /delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  // Every request has been dispatched before the stop. Each /metrics poll counts itself, so
  // after N polls the count is the delays dispatched plus N: on the threads backend a worker
  // may not have read its request yet while the polls add up.
  int polls = 0;
  ASSERT_TRUE(wait_until([&] {
    const long seen = requests_seen(port);  // -1: that poll was not served, nor counted
    return seen >= 0 && seen >= kClients + ++polls;
  }));
  server.signal(SIGTERM);
  for (int fd : fds) {
    HttpReader reader(fd);
    const HttpResponse r = reader.next(milliseconds(5000));
    ASSERT_TRUE(r.ok) << "a connection closed without its answer";
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_TRUE(wait_closed(fd));
    ::close(fd);
  }
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendShutdown,
                         ::testing::Values(ShutdownCase{"uring", "2"}, ShutdownCase{"epoll", "2"},
                                           ShutdownCase{"threads", "1"}),
                         [](const auto& info) {
                           return std::string(info.param.backend) + "_" + info.param.threads +
                                  "loop";
                         });

// --version: the binary's name, the release, and the OpenSSL it runs with; exit 0, nothing
// started.
TEST(VersionFlag, BothBinariesSayWhatTheyAre) {
  for (const std::string binary : {"ringserve-http", "ringserve-echo"}) {
    ChildProcess version(binary, {"--version"});
    EXPECT_EQ(version.wait_exit(milliseconds(10000)), 0) << binary << version.err();
    EXPECT_EQ(version.out().rfind(binary + " 0.", 0), 0U) << version.out();
    EXPECT_NE(version.out().find("(OpenSSL 3."), std::string::npos) << version.out();
    EXPECT_EQ(version.out().find("listening on"), std::string::npos) << version.out();
  }
}

}  // namespace
}  // namespace rs::test
