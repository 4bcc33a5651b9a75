// With the access log on, in either format, the request path still allocates nothing after
// warm-up: the line is formatted on the stack, copied into the log's pooled chunks and written by
// the ring. Also behind a PROXY header, with X-Forwarded-For read from a trusted peer. Its own
// binary, because the allocation counter replaces malloc for the whole process.
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
#include "net/server.hpp"
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
constexpr std::string_view kForwardedRequest =
    "GET /plaintext HTTP/1.1\r\nHost: a\r\nUser-Agent: alloc-probe/1\r\n"
    "X-Forwarded-For: 203.0.113.9, 198.51.100.2, 127.0.0.5\r\n\r\n";
constexpr std::string_view kProxyHeader = "PROXY TCP4 192.0.2.1 198.51.100.7 51234 80\r\n";
constexpr std::string_view kTail = "\r\n\r\nHello, World!";

// Every client sends kDepth pipelined requests, then reads its kDepth answers. Stack buffers
// and system calls only, so the client side allocates nothing.
bool round_trip(const std::array<int, kClients>& fds, std::string_view request) {
  char requests[kDepth * 256];
  if (request.size() > 256) return false;
  for (int k = 0; k < kDepth; ++k)
    std::memcpy(requests + k * request.size(), request.data(), request.size());
  const std::size_t size = kDepth * request.size();
  for (int fd : fds) {
    if (::send(fd, requests, size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) return false;
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

// Runs 4,000 warm-up and 10,000 counted requests (`request`, each logged in `format`) on kClients
// connections; with `proxied` the listener is ",proxy" (each client sends a PROXY header first)
// and X-Forwarded-For is trusted from loopback. Returns the access log's first line.
std::string expect_logging_allocates_nothing(std::string_view request, bool proxied,
                                             http::AccessLogFormat format) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/rs-alog-alloc-XXXXXX";
  EXPECT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/access.log";

  std::size_t requests = 0;
  std::int64_t dropped = 0;
  {
    net::ServerConfig config = test_config(all_backends().front());
    config.loop.access_log_path = path;
    http::HttpConfig http_config;
    http_config.access_log_format = format;
    if (proxied) {
      config.listen = {net::parse_listen_address("127.0.0.1:0,proxy")};
      config.proxy.trusted.add("127.0.0.0/8");
      http_config.trust_forwarded_for = true;
      http_config.trusted_proxies = config.proxy.trusted;
    }
    http::HttpShared shared{http_config};
    InProcessServer server(config, http::make_http_factory(shared));
    std::array<int, kClients> fds{};
    for (int& fd : fds) {
      fd = connect_to(server.port());
      EXPECT_GE(fd, 0);
      bound_receives(fd);  // a lost answer fails the test instead of hanging it
      if (proxied) {
        EXPECT_TRUE(send_all(fd, kProxyHeader));
      }
    }
    bool ok = true;
    for (int round = 0; round < 20 && ok; ++round) {
      ok = round_trip(fds, request);
      EXPECT_TRUE(ok) << "warm-up round " << round;
    }
    requests += std::size_t{20} * kClients * kDepth;

    // The pools grow to the most the load has needed at once, and how much one loop turn holds
    // (answers, log lines waiting for their write) depends on how the requests arrive: a later
    // phase can need one more slab than the warm-up did. Such a phase (its growth is counted in
    // pool_grows) is warm-up too, and the next one is measured; allocations without growth fail.
    const auto grows = [&] {
      std::int64_t n = server.counter("pool_grows");
      shared.for_each_counters(
          [&](const http::HttpCounters& c) { n += static_cast<std::int64_t>(c.pool_grows.get()); });
      return n;
    };
    bool grew = true;
    for (int phase = 0; phase < 3 && grew && ok; ++phase) {
      const std::int64_t grows_before = grows();
      set_alloc_counting(true);
      const std::uint64_t before = alloc_count();
      int rounds = 0;
      for (; rounds < 50 && ok; ++rounds)
        ok = round_trip(fds, request);  // 10,000 requests, each logged
      const std::uint64_t allocations = alloc_count() - before;
      set_alloc_counting(false);
      requests += static_cast<std::size_t>(rounds) * kClients * kDepth;
      // One more round, not counted: the loops have then ended the measured turns, whose growth
      // the counters publish at the end of a turn.
      ok = ok && round_trip(fds, request);
      requests += std::size_t{kClients} * kDepth;
      const std::int64_t grown = grows() - grows_before;
      grew = grown != 0;
      if (grew) {
        // Each slab is one allocation, and one more for the list of slabs at most.
        EXPECT_LE(allocations, 2 * static_cast<std::uint64_t>(grown))
            << "more allocations than the pools' growth explains";
      } else {
        EXPECT_EQ(allocations, 0u) << "over " << rounds * kClients * kDepth << " logged requests";
      }
    }
    EXPECT_TRUE(ok);
    EXPECT_FALSE(grew) << "the pools still grew in the third measured phase";
    for (int fd : fds)
      ::close(fd);
    EXPECT_TRUE(server.stop_and_wait(std::chrono::milliseconds(30000)));
    dropped = server.counter("access_log_dropped");
  }
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ(count_lines(path), requests);  // and every one of them reached the file
  std::string first;
  {
    std::ifstream in(path, std::ios::binary);
    std::getline(in, first);
  }
  std::remove(path.c_str());
  ::rmdir(dir.c_str());
  return first;
}

TEST(AccessLogAllocation, LoggingRequestsAllocatesNothingAfterWarmUp) {
  const std::string line = expect_logging_allocates_nothing(kRequest, /*proxied=*/false,
                                                            http::AccessLogFormat::kCombined);
  EXPECT_EQ(line.rfind("127.0.0.1 ", 0), 0U) << line;
}

TEST(AccessLogAllocation, JsonLinesAllocateNothingAfterWarmUp) {
  const std::string line =
      expect_logging_allocates_nothing(kRequest, /*proxied=*/false, http::AccessLogFormat::kJson);
  EXPECT_EQ(line.rfind("{\"time\":", 0), 0U) << line;
}

TEST(AccessLogAllocation, ProxiedClientsWithForwardedForAllocateNothingAfterWarmUp) {
  const std::string line = expect_logging_allocates_nothing(kForwardedRequest, /*proxied=*/true,
                                                            http::AccessLogFormat::kCombined);
  EXPECT_EQ(line.rfind("198.51.100.2 ", 0), 0U) << line;
}

}  // namespace
}  // namespace rs::test
