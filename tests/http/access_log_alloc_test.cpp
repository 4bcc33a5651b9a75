// With the access log on, in either format, the request path still allocates nothing after
// warm-up: the line is formatted on the stack, copied into the log's pooled chunks and written by
// the ring. Its own binary, because the allocation counter replaces malloc for the whole process.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "net/http/session_factory.hpp"
#include "tests/support/alloc_counter.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

constexpr int kClients = 50;
constexpr int kDepth = 4;
constexpr std::string_view kRequest =
    "GET /plaintext HTTP/1.1\r\nHost: a\r\nUser-Agent: alloc-probe/1\r\n"
    "Referer: http://example.test/\r\n\r\n";
constexpr std::string_view kTail = "\r\n\r\nHello, World!";

// Every client sends kDepth pipelined requests, then reads its kDepth answers. Stack buffers
// and system calls only, so the client side allocates nothing.
bool round_trip(const std::array<int, kClients>& fds) {
  char requests[kDepth * kRequest.size()];
  for (int k = 0; k < kDepth; ++k)
    std::memcpy(requests + k * kRequest.size(), kRequest.data(), kRequest.size());
  for (int fd : fds) {
    if (::send(fd, requests, sizeof(requests), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(sizeof(requests))) {
      return false;
    }
  }
  for (int fd : fds) {
    char buffer[8192];
    std::size_t have = 0;
    int answers = 0;
    while (answers < kDepth) {
      const ssize_t n = ::recv(fd, buffer + have, sizeof(buffer) - have, 0);
      if (n <= 0) return false;
      have += static_cast<std::size_t>(n);
      // Count complete answers (each ends with its 13-byte body) and keep any partial one.
      std::string_view data(buffer, have);
      std::size_t at;
      while ((at = data.find(kTail)) != std::string_view::npos) {
        ++answers;
        data.remove_prefix(at + kTail.size());
      }
      std::memmove(buffer, data.data(), data.size());
      have = data.size();
    }
    if (have != 0) return false;
  }
  return true;
}

std::size_t count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::size_t n = 0;
  std::string line;
  while (std::getline(in, line))
    ++n;
  return n;
}

void expect_no_allocation_after_warm_up(http::AccessLogFormat format) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/rs-alog-alloc-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/access.log";

  std::size_t requests = 0;
  std::int64_t dropped = 0;
  {
    net::ServerConfig config = test_config(all_backends().front());
    config.loop.access_log_path = path;
    http::HttpConfig http_config;
    http_config.access_log_format = format;
    http::HttpShared shared{http_config};
    InProcessServer server(config, http::make_http_factory(shared));
    std::array<int, kClients> fds{};
    for (int& fd : fds) {
      fd = connect_to(server.port());
      ASSERT_GE(fd, 0);
      bound_receives(fd);  // a lost answer fails the test instead of hanging it
    }
    for (int round = 0; round < 20; ++round)
      ASSERT_TRUE(round_trip(fds)) << "warm-up round " << round;
    requests += std::size_t{20} * kClients * kDepth;

    set_alloc_counting(true);
    const std::uint64_t before = alloc_count();
    bool ok = true;
    int rounds = 0;
    for (; rounds < 50 && ok; ++rounds)
      ok = round_trip(fds);  // 10,000 requests, each logged
    const std::uint64_t allocations = alloc_count() - before;
    set_alloc_counting(false);
    requests += static_cast<std::size_t>(rounds) * kClients * kDepth;

    EXPECT_TRUE(ok);
    EXPECT_EQ(allocations, 0u) << "over " << rounds * kClients * kDepth << " logged requests";
    for (int fd : fds)
      ::close(fd);
    ASSERT_TRUE(server.stop_and_wait(std::chrono::milliseconds(30000)));
    dropped = server.counter("access_log_dropped");
  }
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ(count_lines(path), requests);  // and every one of them reached the file
  std::remove(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(AccessLogAllocation, LoggingRequestsAllocatesNothingAfterWarmUp) {
  expect_no_allocation_after_warm_up(http::AccessLogFormat::kCombined);
}

TEST(AccessLogAllocation, JsonLinesAllocateNothingAfterWarmUp) {
  expect_no_allocation_after_warm_up(http::AccessLogFormat::kJson);
}

}  // namespace
}  // namespace rs::test
