// The turn order of the event loops (net/loop/event_loop.hpp): each connection sends, then
// settles, once per turn. The other order (settle, then send) leaves a connection with output
// queued and no send under way, so it goes back on the list and the next turn wakes up without
// waiting, for nothing: the cost shows as loop turns per request.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "net/echo/echo_protocol.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

class TurnOrderTest : public ::testing::TestWithParam<BackendParam> {};

// A request costs one turn on epoll (the receive; the send finishes inside it) and two on the
// ring (the receive completion, then the send's). A needless turn per request makes that two
// and three.
double turns_allowed_per_request(net::Backend backend) {
  return backend == net::Backend::kEpoll ? 1.5 : 2.5;
}

TEST_P(TurnOrderTest, SequentialRequestsCostNoNeedlessTurn) {
  InProcessServer server(test_config(GetParam()), net::echo::make_factory);
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  // Warm up: the accept and the first exchange are not counted.
  ASSERT_TRUE(send_all(fd, "w"));
  ASSERT_EQ(recv_string(fd, 1), "w");
  constexpr int kRequests = 200;
  const std::int64_t before = server.counter("loop_turns");
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(send_all(fd, "x"));
    ASSERT_EQ(recv_string(fd, 1), "x");
  }
  const std::int64_t turns = server.counter("loop_turns") - before;
  ::close(fd);
  EXPECT_GE(turns, kRequests) << "every request wakes the loop at least once";
  EXPECT_LE(static_cast<double>(turns) / kRequests, turns_allowed_per_request(GetParam().backend))
      << turns << " turns for " << kRequests << " requests";
}

std::vector<BackendParam> event_loops() {
  std::vector<BackendParam> out;
  for (const BackendParam& param : all_backends()) {
    // One plain loop per backend: the batched wait of the tuned ring trades turns for latency
    // on purpose, and a second loop only adds its idle turns.
    if (param.backend != net::Backend::kThreads && param.loops == 1 && !param.tuned &&
        !param.bundles) {
      out.push_back(param);
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(EventLoops, TurnOrderTest, ::testing::ValuesIn(event_loops()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
