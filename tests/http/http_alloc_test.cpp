// After warm-up the HTTP request path (GET /plaintext and GET /json, one at a time and
// pipelined) allocates nothing, on any thread, and no pool grows (a phase in which a loop's pool
// still grew to a new peak counts as warm-up, and the next is measured); on the threads backend
// a new worker's thread allocates nothing at all, access log on or off. Its own binary: the
// allocation counter replaces malloc and operator new for the process.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/alloc_counter.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_fixture.hpp"
#include "tests/support/text_file.hpp"

namespace rs::test {
namespace {

constexpr int kClients = 100;

// HTTP: every client sends `depth` requests in one write (alternating GET /plaintext and
// GET /json), then every client reads its `depth` responses, each framed by its Content-Length.
// Only fixed stack buffers and system calls: the client adds no allocation of its own.
constexpr std::string_view kPlaintextRequest = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
constexpr std::string_view kJsonRequest = "GET /json HTTP/1.1\r\nHost: a\r\n\r\n";
constexpr std::string_view kPlaintextBody = "Hello, World!";
constexpr std::string_view kJsonBody = R"({"message":"Hello, World!"})";
constexpr int kMaxDepth = 16;
constexpr std::size_t kDateBytes = 29;

bool is_plaintext(int round, int client, int k) {
  return (round + client + k) % 2 == 0;
}

// What the client saw of the server's Date header: the first value and whether it changed,
// so a measured phase can be made to span the once-a-second refresh of the Date cache.
struct DateWatch {
  char first[kDateBytes] = {};
  bool seen = false;
  bool changed = false;
  void note(std::string_view date) {
    if (date.size() != kDateBytes) return;
    if (!seen) {
      std::memcpy(first, date.data(), kDateBytes);
      seen = true;
    } else if (std::memcmp(first, date.data(), kDateBytes) != 0) {
      changed = true;
    }
  }
};

// Checks one complete response (head ends at head_end, body follows) for the expected body.
bool response_ok(std::string_view head, std::string_view body, bool plaintext, DateWatch& date) {
  if (!head.starts_with("HTTP/1.1 200 ")) return false;
  const std::size_t at = head.find("\r\nDate: ");
  if (at != std::string_view::npos) date.note(head.substr(at + 8, kDateBytes));
  return body == (plaintext ? kPlaintextBody : kJsonBody);
}

// Reads `depth` responses from fd into a stack buffer, in order.
bool read_responses(int fd, int round, int client, int depth, DateWatch& date) {
  char buffer[8192];
  std::size_t have = 0;
  for (int k = 0; k < depth;) {
    const std::string_view data(buffer, have);
    const std::size_t head_end = data.find("\r\n\r\n");
    if (head_end != std::string_view::npos) {
      const std::string_view head = data.substr(0, head_end + 2);
      const std::size_t at = head.find("\r\nContent-Length: ");
      if (at == std::string_view::npos) return false;
      std::size_t length = 0;
      const char* digits = head.data() + at + 18;
      if (std::from_chars(digits, head.data() + head.size(), length).ec != std::errc()) {
        return false;
      }
      const std::size_t total = head_end + 4 + length;
      if (total > sizeof(buffer)) return false;
      if (have >= total) {
        if (!response_ok(head, data.substr(head_end + 4, length), is_plaintext(round, client, k),
                         date)) {
          return false;
        }
        std::memmove(buffer, buffer + total, have - total);
        have -= total;
        ++k;
        continue;
      }
    }
    if (have == sizeof(buffer)) return false;
    const ssize_t n = ::recv(fd, buffer + have, sizeof(buffer) - have, 0);
    if (n <= 0) return false;
    have += static_cast<std::size_t>(n);
  }
  return have == 0;  // nothing beyond the answers asked for
}

template <std::size_t N>
bool http_round(const std::array<int, N>& fds, int round, int depth, DateWatch& date) {
  char requests[kMaxDepth * 64];
  for (int i = 0; i < static_cast<int>(N); ++i) {
    std::size_t at = 0;
    for (int k = 0; k < depth; ++k) {
      const std::string_view r = is_plaintext(round, i, k) ? kPlaintextRequest : kJsonRequest;
      std::memcpy(requests + at, r.data(), r.size());
      at += r.size();
    }
    if (::send(fds[i], requests, at, MSG_NOSIGNAL) != static_cast<ssize_t>(at)) return false;
  }
  for (int i = 0; i < static_cast<int>(N); ++i) {
    if (!read_responses(fds[i], round, i, depth, date)) return false;
  }
  return true;
}

class HttpAllocationTest : public ServerFixture {
 protected:
  // 100 keep-alive connections, warmed up; then at least 10,000 requests measured, and on
  // until the server's Date has changed at least once (its cache refresh is on the path too).
  void run(int depth) {
    start();
    std::array<int, kClients> fds{};
    for (int& fd : fds) {
      fd = connect();
      ASSERT_GE(fd, 0);
      bound_receives(fd);  // a lost answer fails the test instead of hanging it
    }
    DateWatch warm_date;
    for (int round = 0; round < 20; ++round)
      ASSERT_TRUE(http_round(fds, round, depth, warm_date)) << "warm-up round " << round;
    const std::int64_t accepted_before = counter("accepted");

    // The pools grow to the most the load has needed at once, and how many answers one loop
    // turn writes before it sends them depends on how the requests arrive: a later phase can
    // need one more slab than the warm-up did. Such a phase (its growth is counted in
    // pool_grows) is warm-up too, and the next one is measured; allocations without growth fail
    // at once.
    const int min_rounds = (10000 + kClients * depth - 1) / (kClients * depth);
    int rounds = 0;
    std::uint64_t allocations = 0;
    bool grew = true;
    for (int phase = 0; phase < 3 && grew; ++phase) {
      const std::int64_t grows_before = counter("pool_grows");
      const std::int64_t http_grows_before =
          static_cast<std::int64_t>(http_counter(&http::HttpCounters::pool_grows));
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      DateWatch date;
      rounds = 0;
      bool ok = true;
      set_alloc_counting(true);
      const std::uint64_t before = alloc_count();
      while (ok && (rounds < min_rounds ||
                    (!date.changed && std::chrono::steady_clock::now() < give_up))) {
        ok = http_round(fds, rounds, depth, date);
        ++rounds;
      }
      allocations = alloc_count() - before;
      set_alloc_counting(false);
      ASSERT_TRUE(ok) << "round " << rounds - 1;
      // One more round, not counted: each loop has then ended the turns of the measured phase,
      // so the gauges read below include what those turns grew (they are published at the end
      // of a turn, after its answers were sent).
      DateWatch settle;
      ASSERT_TRUE(http_round(fds, rounds, depth, settle));
      EXPECT_TRUE(date.changed) << "the measured phase never saw the Date header change";
      // The loops' pools and the HTTP ones (sessions, request states, answers, head buffers).
      const std::int64_t grows =
          counter("pool_grows") - grows_before +
          static_cast<std::int64_t>(http_counter(&http::HttpCounters::pool_grows)) -
          http_grows_before;
      grew = grows != 0;
      if (grew) {
        // Each slab is one allocation, and one more for the list of slabs at most.
        EXPECT_LE(allocations, 2 * static_cast<std::uint64_t>(grows))
            << "more allocations than the pools' growth explains";
        std::printf("[ warm-up  ] phase %d: a pool grew (%llu allocations); measuring again\n",
                    phase, static_cast<unsigned long long>(allocations));
      } else {
        EXPECT_EQ(allocations, 0u) << "over " << rounds * kClients * depth << " requests";
      }
    }
    EXPECT_FALSE(grew) << "the pools still grew in the third phase";
    EXPECT_GE(rounds * kClients * depth, 10000);
    EXPECT_EQ(counter("accepted"), accepted_before) << "keep-alive broke";
    std::printf("[ measured ] %d requests (%d deep) on %d connections: %llu allocations\n",
                rounds * kClients * depth, depth, kClients,
                static_cast<unsigned long long>(allocations));
  }
};

TEST_P(HttpAllocationTest, PlaintextAndJsonAllocateNothingAfterWarmUp) {
  run(1);
}

TEST_P(HttpAllocationTest, PipelinedPlaintextAndJsonAllocateNothingAfterWarmUp) {
  run(kMaxDepth);
}

// Static files with every header the answers may carry (Content-Encoding, Vary, Cache-Control,
// 304, 412, 206, 301, 403, a type from a --mime-types file): after warm-up they allocate nothing.
// One connection, one request at a time; the client reads into a stack buffer.
class StaticAllocationTest : public ServerFixture {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/rs-salloc-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    const std::filesystem::path root = base_ / "root";
    std::filesystem::create_directories(root / "sub");
    std::filesystem::create_directories(root / "empty");
    write(root / "hello.txt", "Hello, static world!\n");
    write(root / "app.js", "console.log(1);\n");
    write(root / "app.js.br", "BR-BYTES");
    write(root / "app.js.gz", "GZ-BYTES");
    write(root / "pic.webp", "RIFF");
    write(root / "sub" / "index.html", "<p>sub</p>\n");
    write(base_ / "mime.types", "image/webp webp\n");
  }
  void TearDown() override {
    ServerFixture::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  static void write(const std::filesystem::path& path, std::string_view contents) {
    std::ofstream out(path, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  }
  std::string etag_of(const std::filesystem::path& path, const char* suffix) const {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    char text[96];
    std::snprintf(text, sizeof(text), "\"%llx-%llx-%llx%s\"",
                  static_cast<unsigned long long>(st.st_ino),
                  static_cast<unsigned long long>(st.st_size),
                  static_cast<unsigned long long>(st.st_mtime), suffix);
    return text;
  }

  std::filesystem::path base_;
};

// Sends one request and reads its whole answer (framed by Content-Length; none on a 304, no body
// for HEAD) into a stack buffer: whether its status line starts with `status`.
bool exchange(int fd, std::string_view request, std::string_view status) {
  const bool head_only = request.starts_with("HEAD ");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return false;
  }
  char buffer[4096];
  std::size_t have = 0;
  for (;;) {
    const std::string_view data(buffer, have);
    const std::size_t head_end = data.find("\r\n\r\n");
    if (head_end != std::string_view::npos) {
      std::size_t length = 0;
      const std::size_t at = data.substr(0, head_end).find("\r\nContent-Length: ");
      if (at != std::string_view::npos && !head_only) {
        std::from_chars(data.data() + at + 18, data.data() + head_end, length);
      }
      if (have >= head_end + 4 + length) {
        return have == head_end + 4 + length && data.starts_with(status);
      }
    }
    if (have == sizeof(buffer)) return false;
    const ssize_t n = ::recv(fd, buffer + have, sizeof(buffer) - have, 0);
    if (n <= 0) return false;
    have += static_cast<std::size_t>(n);
  }
}

TEST_P(StaticAllocationTest, ConditionalAndPrecompressedAnswersAllocateNothingAfterWarmUp) {
  start([&](http::HttpConfig& config) {
    config.root = (base_ / "root").string();
    config.mime_types = (base_ / "mime.types").string();
    config.cache_control = "public, max-age=3600";
    config.precompressed = true;
  });
  const std::string host = " HTTP/1.1\r\nHost: a\r\n";
  const std::string gz_etag = etag_of(base_ / "root" / "app.js.gz", "-gz");
  struct Exchange {
    std::string request;
    std::string_view status;
  };
  const std::vector<Exchange> exchanges = {
      {"GET /app.js" + host + "Accept-Encoding: gzip, br\r\n\r\n", "HTTP/1.1 200 "},
      {"GET /app.js" + host + "Accept-Encoding: gzip\r\nIf-None-Match: " + gz_etag + "\r\n\r\n",
       "HTTP/1.1 304 "},
      {"GET /hello.txt" + host + "If-Match: \"1-2-3\"\r\n\r\n", "HTTP/1.1 412 "},
      {"GET /hello.txt" + host +
           "Range: bytes=0-3\r\nIf-Unmodified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\r\n",
       "HTTP/1.1 206 "},
      {"HEAD /pic.webp" + host + "\r\n", "HTTP/1.1 200 "},
      {"GET /sub?page=2" + host + "\r\n", "HTTP/1.1 301 "},
      {"GET /empty/" + host + "Accept-Encoding: br\r\n\r\n", "HTTP/1.1 403 "},
      {"GET /sub/" + host + "Accept-Encoding: gzip\r\n\r\n", "HTTP/1.1 200 "},
  };
  const int fd = connect();
  ASSERT_GE(fd, 0);
  bound_receives(fd);  // a lost answer fails the test instead of hanging it
  const auto round = [&] {
    return std::all_of(exchanges.begin(), exchanges.end(),
                       [&](const Exchange& e) { return exchange(fd, e.request, e.status); });
  };
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(round()) << "warm-up round " << i;
  // As above: a phase in which a pool still grew (to what one loop turn happened to need) is
  // warm-up too, and the next one is measured.
  bool grew = true;
  for (int phase = 0; phase < 3 && grew; ++phase) {
    const std::int64_t grows_before =
        counter("pool_grows") +
        static_cast<std::int64_t>(http_counter(&http::HttpCounters::pool_grows));
    set_alloc_counting(true);
    const std::uint64_t before = alloc_count();
    bool ok = true;
    for (int i = 0; i < 200 && ok; ++i)
      ok = round();
    const std::uint64_t allocations = alloc_count() - before;
    set_alloc_counting(false);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(round());  // not counted: the gauges then include the measured turns
    const std::int64_t grows =
        counter("pool_grows") +
        static_cast<std::int64_t>(http_counter(&http::HttpCounters::pool_grows)) - grows_before;
    grew = grows != 0;
    if (grew) {
      EXPECT_LE(allocations, 2 * static_cast<std::uint64_t>(grows))
          << "more allocations than the pools' growth explains";
    } else {
      EXPECT_EQ(allocations, 0u) << "over " << 200 * exchanges.size() << " static file answers";
    }
  }
  EXPECT_FALSE(grew) << "the pools still grew in the third phase";
}

INSTANTIATE_TEST_SUITE_P(Backends, StaticAllocationTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

// GET /metrics on fd and reads up to the end of the answer's head, which must be a 200: formatting
// /metrics allocates (it builds its text in a std::string), so it shows what the counter sees.
bool ask_metrics_head(int fd) {
  constexpr std::string_view kMetrics = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
  bool ok = ::send(fd, kMetrics.data(), kMetrics.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(kMetrics.size());
  char buffer[1 << 16];
  std::size_t have = 0;
  while (ok && std::string_view(buffer, have).find("\r\n\r\n") == std::string_view::npos) {
    const ssize_t n = ::recv(fd, buffer + have, sizeof(buffer) - have, 0);
    ok = n > 0;
    if (ok) have += static_cast<std::size_t>(n);
  }
  return ok && std::string_view(buffer, have).starts_with("HTTP/1.1 200 ");
}

// The control: the counter does see what the server thread allocates (GET /metrics builds
// its text in a std::string), so the zeros above are measured, not missed.
TEST_P(HttpAllocationTest, CounterSeesAllocationsOnTheServerThread) {
  start();
  const int fd = connect();
  ASSERT_GE(fd, 0);
  bound_receives(fd);  // a lost answer fails the test instead of hanging it
  set_alloc_counting(true);
  const std::uint64_t before = alloc_count();
  const bool ok = ask_metrics_head(fd);
  const std::uint64_t allocations = alloc_count() - before;
  set_alloc_counting(false);
  EXPECT_TRUE(ok);
  EXPECT_GT(allocations, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpAllocationTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

// The threads backend makes what a worker holds on the acceptor's thread, sized for one
// connection, before the worker's thread starts: a new worker's thread allocates nothing from
// its first instruction to its end, with no warm-up (a thread that allocates gets an allocator
// heap of its own, which would cost more than the rest of the connection). Counted are the
// threads started after the server: the worker made for the client, as it starts, opens the
// session, answers plain and pipelined requests, hands its access-log lines to the shared file
// (with the log on), closes, waits for a next client and ends.
class ThreadsWorkerAllocationTest : public ServerFixture {
 protected:
  void SetUp() override {
#if defined(RS_SANITIZE)
    // The sanitizers' runtime allocates as a thread starts (its thread registry and TLS), which
    // says nothing about the worker's code: the release build checks it.
    GTEST_SKIP() << "sanitizers: their runtime allocates on a new thread";
#endif
  }
  void TearDown() override {
    ServerFixture::TearDown();
    if (!log_.empty()) {
      std::remove(log_.c_str());
      ::rmdir(dir_.c_str());
    }
  }

  // A server whose idle workers end 100 ms after their client left, with the access log on or
  // off.
  void start_server(bool access_log) {
    if (access_log) {
      const char* base = std::getenv("TMPDIR");
      std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rs-walloc-XXXXXX";
      ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
      dir_ = pattern;
      log_ = dir_ + "/access.log";
    }
    start({}, [this](net::ServerConfig& config) {
      config.loop.thread_idle_timeout_ms = kIdleTimeoutMs;
      config.loop.access_log_path = log_;
    });
  }

  // One client on a new worker, from before it connects until the worker's thread has ended
  // and been joined: the allocations of that thread (and of any other the server started).
  std::uint64_t serve_one_client_on_a_new_worker() {
    EXPECT_EQ(counter("worker_threads"), 0);
    const std::uint64_t before = alloc_count();
    if (!count_allocations_of_new_threads()) {
      ADD_FAILURE() << "cannot read /proc/self/task";
      return 0;
    }
    const int fd = connect();
    EXPECT_GE(fd, 0);
    bound_receives(fd);  // a lost answer fails the test instead of hanging it
    DateWatch date;
    const std::array<int, 1> fds{fd};
    EXPECT_TRUE(http_round(fds, 0, 2, date) && http_round(fds, 1, kMaxDepth, date));
    EXPECT_EQ(counter("worker_threads"), 1);
    constexpr std::size_t kRequests = 2 + kMaxDepth;
    if (!log_.empty()) {
      // With the connection open: the worker hands its lines over before it waits for more
      // input (or within WorkerLog::kFlushMs).
      EXPECT_TRUE(wait_until([&] { return read_lines(log_).size() == kRequests; }))
          << read_lines(log_).size() << " of " << kRequests << " lines";
    }
    close_client(fd);
    // The worker closes the connection, waits kIdleTimeoutMs for another one, ends, and is
    // joined by the acceptor.
    EXPECT_TRUE(wait_until([&] { return counter("worker_threads_reaped") == 1; }))
        << counter("worker_threads_reaped") << " workers reaped";
    const std::uint64_t allocations = alloc_count() - before;
    set_alloc_counting(false);
    EXPECT_EQ(http_counter(&http::HttpCounters::requests), kRequests);
    return allocations;
  }

  static constexpr std::uint64_t kIdleTimeoutMs = 100;
  std::string dir_;
  std::string log_;  // empty: no access log
};

TEST_P(ThreadsWorkerAllocationTest, NewWorkerThreadAllocatesNothingFromStartToEnd) {
  start_server(false);
  EXPECT_EQ(serve_one_client_on_a_new_worker(), 0u);
}

TEST_P(ThreadsWorkerAllocationTest, NewWorkerThreadAllocatesNothingWithTheAccessLogOn) {
  start_server(true);
  EXPECT_EQ(serve_one_client_on_a_new_worker(), 0u);
  const std::vector<std::string> lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 2u + kMaxDepth);
  EXPECT_NE(lines[0].find("\"GET /"), std::string::npos) << lines[0];
  EXPECT_EQ(counter("access_log_dropped"), 0);
}

// The control: counting new threads does see what a new worker's thread allocates (GET
// /metrics builds its text in a std::string), and leaves out the threads that were there.
TEST_P(ThreadsWorkerAllocationTest, CounterSeesAllocationsOfANewWorker) {
  start_server(false);
  ASSERT_TRUE(count_allocations_of_new_threads());
  const std::uint64_t before = alloc_count();
  void* volatile allocated_here = std::malloc(1000);  // by this thread: not counted
  std::free(allocated_here);
  EXPECT_EQ(alloc_count() - before, 0u);
  const int fd = connect();
  ASSERT_GE(fd, 0);
  bound_receives(fd);
  const bool ok = ask_metrics_head(fd);
  const std::uint64_t allocations = alloc_count() - before;
  set_alloc_counting(false);
  EXPECT_TRUE(ok);
  EXPECT_GT(allocations, 0u);
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadsWorkerAllocationTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kThreads)),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
