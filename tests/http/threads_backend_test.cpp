// What only the threads backend has: worker threads that end after waiting
// --thread-idle-timeout-ms for a connection (joined and freed, their counts kept, a new client
// served by a new one), and access-log lines that each worker buffers and hands to the shared
// file a buffer at a time, whole, and within a bounded time. Every wait is for an event, with a
// deadline.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/threads/shared_log.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_fixture.hpp"
#include "tests/support/text_file.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

// Threads of this process named rs-worker (a worker's thread is gone once it is joined).
int worker_threads_alive() {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    n += name == "rs-worker" ? 1 : 0;
  }
  return n;
}

// One GET on a kept connection; its status (0 when no whole answer came).
int get(int fd, const std::string& target) {
  if (!send_all(fd, "GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n")) return 0;
  HttpReader reader(fd);
  const HttpResponse r = reader.next(milliseconds(10000));
  return r.ok ? r.status : 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class ThreadsBackendTest : public ServerFixture {
 protected:
  // An HTTP server whose idle workers end after timeout_ms.
  void start_with_idle_timeout(std::uint64_t timeout_ms) {
    start({}, [timeout_ms](net::ServerConfig& config) {
      config.loop.thread_idle_timeout_ms = timeout_ms;
    });
  }
};

TEST_P(ThreadsBackendTest, IdleWorkersEndAfterTheTimeoutAndANewClientIsServed) {
  start_with_idle_timeout(200);
  constexpr int kClients = 4;
  std::vector<int> fds;
  // Kept open together, so each has a worker of its own.
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(connect());
    ASSERT_EQ(get(fds.back(), "/plaintext"), 200);
  }
  // Counted before its thread runs; named by itself before it answers.
  EXPECT_EQ(counter("worker_threads"), kClients);
  EXPECT_EQ(worker_threads_alive(), kClients);

  for (int fd : fds)
    close_client(fd);
  // Each worker waits 200 ms for a next connection, then ends; the acceptor joins it.
  ASSERT_TRUE(wait_until([&] { return counter("worker_threads") == 0; }))
      << counter("worker_threads") << " workers left";
  EXPECT_EQ(counter("worker_threads_reaped"), kClients);
  EXPECT_TRUE(wait_until([] { return worker_threads_alive() == 0; }))
      << worker_threads_alive() << " rs-worker threads left";

  // A new client gets a new worker; what the ended ones counted is still counted.
  const int fd = connect();
  EXPECT_EQ(get(fd, "/plaintext"), 200);
  EXPECT_EQ(counter("worker_threads"), 1);
  EXPECT_EQ(worker_threads_alive(), 1);
  EXPECT_EQ(http_counter(&http::HttpCounters::requests), kClients + 1u);
  EXPECT_EQ(counter("accepted"), kClients + 1);
  close_client(fd);
  expect_pools_returned();
}

// The timeout is a worker's wait for its next connection: a worker whose client keeps its
// connection idle is not reaped, however long that lasts.
TEST_P(ThreadsBackendTest, WorkerOfAnIdleKeptConnectionIsNotReaped) {
  start_with_idle_timeout(100);
  const int kept = connect();
  ASSERT_EQ(get(kept, "/plaintext"), 200);
  // A second worker ends 100 ms after its client left: by then the kept connection has been
  // idle at least as long.
  const int other = connect();
  ASSERT_EQ(get(other, "/plaintext"), 200);
  close_client(other);
  ASSERT_TRUE(wait_until([&] { return counter("worker_threads_reaped") == 1; }));
  EXPECT_TRUE(wait_until([&] { return counter("worker_threads") == 1; }));
  EXPECT_EQ(get(kept, "/json"), 200);
  EXPECT_EQ(counter("worker_threads_reaped"), 1);
}

// Workers that end as soon as they wait (1 ms) race every new connection's hand-over: each
// client is served, by a waiting worker or a new one, and the stop finds every thread joined.
TEST_P(ThreadsBackendTest, WorkersEndingAsClientsArriveLoseNoClient) {
  start_with_idle_timeout(1);
  constexpr int kClients = 200;
  int served = 0;
  for (int i = 0; i < kClients; ++i) {
    // Now and then every worker has ended before the next client, for certain.
    if (i % 20 == 0) {
      ASSERT_TRUE(wait_until([&] { return counter("worker_threads") == 0; }));
    }
    const int fd = connect();
    served += get(fd, "/plaintext?n=" + std::to_string(i)) == 200 ? 1 : 0;
    close_client(fd);
  }
  EXPECT_EQ(served, kClients);
  EXPECT_GE(counter("worker_threads_reaped"), kClients / 20 - 1);
  EXPECT_EQ(http_counter(&http::HttpCounters::requests), static_cast<std::uint64_t>(kClients));
  EXPECT_TRUE(server_->stop_and_wait(milliseconds(30000)));
  EXPECT_EQ(worker_threads_alive(), 0);
}

class ThreadsAccessLogTest : public ServerFixture {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rs-tlog-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    log_ = dir_ + "/access.log";
    // One deferred answer at a time: a request pipelined behind a /delay pauses input, and the
    // worker sleeps instead of waiting in recv. A stop cuts a /delay still pending after a
    // second.
    start([](http::HttpConfig& config) { config.max_pending_requests = 1; },
          [this](net::ServerConfig& config) {
            config.loop.access_log_path = log_;
            config.loop.grace_ms = 1000;
          });
  }
  void TearDown() override {
    ServerFixture::TearDown();  // the server stops first: its last lines are in
    std::remove(log_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::size_t whole_lines() const {
    const std::string text = read_file(log_);
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }

  std::string dir_;
  std::string log_;
};

// A worker hands its lines to the file before it waits for more input: with its connection open
// and quiet, the line is in the file at once, and the log's timer does not cut the worker's wait
// for the next request short (which would cost a recv that returns with nothing, and a
// setsockopt, per logged request).
TEST_P(ThreadsAccessLogTest, LineReachesTheFileBeforeTheWorkerWaitsForInput) {
  const int fd = connect();
  const auto connected = Clock::now();
  ASSERT_EQ(get(fd, "/plaintext?first"), 200);
  // A new connection's first second has a deadline of its own (until then it is not counted as
  // idle), which may wake the worker once: past it, nothing but the log could.
  std::this_thread::sleep_until(connected + milliseconds(2000));
  ASSERT_EQ(get(fd, "/plaintext?kept"), 200);
  const auto sent = Clock::now();
  // Counted when the request arrived, before it was answered.
  const std::int64_t recvs = counter("recv_calls");
  ASSERT_TRUE(wait_until([&] { return whole_lines() == 2; }, milliseconds(10000)));
  const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - sent);
  EXPECT_LT(waited.count(), 5000);  // at once; a generous margin for a loaded machine
  EXPECT_NE(read_lines(log_)[1].find("\"GET /plaintext?kept HTTP/1.1\" 200 13"), std::string::npos);
  // A timer armed for the line would have made the worker's next recv return (with nothing)
  // after WorkerLog::kFlushMs.
  std::this_thread::sleep_for(milliseconds(net::threads::WorkerLog::kFlushMs + 500));
  EXPECT_EQ(counter("recv_calls"), recvs) << "the worker's wait for input was cut short";
}

// A worker that sleeps (a /delay answer pending, a request pipelined behind it paused) still
// hands the lines it buffered to the file within WorkerLog::kFlushMs (a second), by its log's
// timer, long before the /delay ends.
TEST_P(ThreadsAccessLogTest, BufferedLineReachesTheFileWhileItsWorkerSleeps) {
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /plaintext?first HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /delay?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /plaintext?paused HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  ASSERT_EQ(reader.next(milliseconds(10000)).status, 200);
  const auto answered = Clock::now();
  ASSERT_TRUE(wait_until([&] { return whole_lines() == 1; }, milliseconds(10000)));
  const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - answered);
  // The timer's second, and a generous margin for a loaded machine.
  EXPECT_LT(waited.count(), 5000);
  EXPECT_NE(read_lines(log_)[0].find("\"GET /plaintext?first HTTP/1.1\" 200 13"),
            std::string::npos);
  // Its input was paused behind the /delay: the worker slept rather than waited in recv.
  EXPECT_EQ(http_counter(&http::HttpCounters::pipeline_pauses), 1u);
  close_client(fd);  // the stop cuts the /delay
}

// Many workers at once, each filling its buffer several times over with long lines: every
// line in the file is whole (lines of different workers never interleave), and every request
// is there once, with the connections still open (the last partial buffers arrive by timer).
TEST_P(ThreadsAccessLogTest, LinesOfConcurrentWorkersAreWholeLines) {
  constexpr int kClients = 16;
  constexpr int kDepth = 40;
  // About 350 bytes a line: a worker hands over every 11 lines or so.
  const std::string pad(300, 'p');
  std::vector<int> fds;
  for (int c = 0; c < kClients; ++c) {
    fds.push_back(connect());
    bound_receives(fds.back());
  }
  for (int c = 0; c < kClients; ++c) {
    std::string batch;
    for (int k = 0; k < kDepth; ++k) {
      batch += "GET /plaintext?c=" + std::to_string(c) + "&k=" + std::to_string(k) + "&pad=" + pad +
               " HTTP/1.1\r\nHost: t\r\n\r\n";
    }
    ASSERT_TRUE(send_all(fds[c], batch));
  }
  for (int fd : fds) {
    HttpReader reader(fd);
    for (int k = 0; k < kDepth; ++k)
      ASSERT_EQ(reader.next().status, 200);
  }
  constexpr auto kLines = static_cast<std::size_t>(kClients) * kDepth;
  ASSERT_TRUE(wait_until([&] { return whole_lines() >= kLines; }, milliseconds(10000)))
      << whole_lines() << " of " << kLines << " lines";

  const std::string text = read_file(log_);
  ASSERT_TRUE(text.ends_with('\n'));
  std::set<std::pair<int, int>> seen;
  for (const std::string& line : read_lines(log_)) {
    ASSERT_TRUE(line.starts_with("127.0.0.1 - - [")) << line;
    // Whole: everything up to the request time, which ends it.
    const std::string_view head = std::string_view(line).substr(0, line.rfind(' '));
    ASSERT_TRUE(head.ends_with("&pad=" + pad + " HTTP/1.1\" 200 13 \"-\" \"-\"")) << line;
    ASSERT_GT(line.size(), head.size() + 1) << line;
    ASSERT_TRUE(std::all_of(line.begin() + static_cast<std::ptrdiff_t>(head.size() + 1), line.end(),
                            [](char ch) { return ch >= '0' && ch <= '9'; }))
        << line;
    const auto at = line.find("\"GET /plaintext?c=");
    ASSERT_NE(at, std::string::npos) << line;
    int c = -1;
    int k = -1;
    ASSERT_EQ(std::sscanf(line.c_str() + at, "\"GET /plaintext?c=%d&k=%d&", &c, &k), 2) << line;
    EXPECT_TRUE(seen.emplace(c, k).second) << "twice: " << line;
  }
  EXPECT_EQ(seen.size(), kLines);
  EXPECT_EQ(counter("access_log_dropped"), 0);
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadsBackendTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kThreads)),
                         [](const auto& info) { return backend_name(info.param); });
INSTANTIATE_TEST_SUITE_P(Threads, ThreadsAccessLogTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kThreads)),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
