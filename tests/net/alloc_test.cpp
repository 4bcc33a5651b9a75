// After warm-up the echo request path allocates nothing, on any thread, and no pool grows.
// Its own binary: the allocation counter replaces malloc and operator new for the process.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "net/echo/echo_protocol.hpp"
#include "tests/support/alloc_counter.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

constexpr int kClients = 100;
constexpr int kMessageBytes = 64;

// One round: every client sends a message, then every client reads its echo. Uses only
// stack memory and system calls so the client side adds no allocation of its own.
bool echo_round(const std::array<int, kClients>& fds, int round) {
  char message[kMessageBytes];
  char back[kMessageBytes];
  for (int i = 0; i < kClients; ++i) {
    std::memset(message, 'a' + (round + i) % 26, sizeof(message));
    if (::send(fds[i], message, sizeof(message), MSG_NOSIGNAL) != kMessageBytes) return false;
  }
  for (int i = 0; i < kClients; ++i) {
    std::size_t got = 0;
    while (got < sizeof(back)) {
      const ssize_t n = ::recv(fds[i], back + got, sizeof(back) - got, 0);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    if (back[0] != 'a' + (round + i) % 26 || back[kMessageBytes - 1] != back[0]) return false;
  }
  return true;
}

class AllocationTest : public ::testing::TestWithParam<BackendParam> {};

TEST_P(AllocationTest, EchoRequestPathAllocatesNothingAfterWarmUp) {
  InProcessServer server(test_config(GetParam()), net::echo::make_factory);
  std::array<int, kClients> fds{};
  for (int& fd : fds) {
    fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    bound_receives(fd);  // a lost answer fails the test instead of hanging it
  }
  for (int round = 0; round < 20; ++round)
    ASSERT_TRUE(echo_round(fds, round));
  const std::int64_t grows_before = server.counter("pool_grows");

  set_alloc_counting(true);
  const std::uint64_t before = alloc_count();
  bool ok = true;
  for (int round = 0; round < 100 && ok; ++round)
    ok = echo_round(fds, round);  // 10,000 echoes
  const std::uint64_t allocations = alloc_count() - before;
  set_alloc_counting(false);

  EXPECT_TRUE(ok);
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(server.counter("pool_grows"), grows_before);
  EXPECT_GE(server.counter("recv_completions"), kClients * 120);
  for (int fd : fds)
    ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, AllocationTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
