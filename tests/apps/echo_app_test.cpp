// The built ringserve-echo binary, started as a child process like a user would start it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

TEST(EchoApp, ServesOnAnyFreePortAndStopsCleanlyOnSigterm) {
  ChildProcess server("ringserve-echo", {"--port", "0", "--address", "127.0.0.1"});
  const auto line = server.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line) << server.err();
  EXPECT_NE(line->find("backend=uring"), std::string::npos) << *line;
  EXPECT_NE(line->find("io_uring"), std::string::npos) << *line;
  const std::uint16_t port = port_from_startup_line(*line);
  ASSERT_NE(port, 0);

  const int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "ping"));
  EXPECT_EQ(recv_string(fd, 4), "ping");

  server.signal(SIGTERM);
  EXPECT_TRUE(wait_closed(fd));
  ::close(fd);
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
  EXPECT_NE(server.out().find(" accepted=1 "), std::string::npos) << server.out();
  EXPECT_NE(server.out().find(" bytes_out=4 "), std::string::npos) << server.out();
}

TEST(EchoApp, SigintAlsoStopsIt) {
  ChildProcess server("ringserve-echo", {"--port", "0"});
  ASSERT_TRUE(server.wait_for_line("listening on", milliseconds(10000))) << server.err();
  server.signal(SIGINT);
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 0) << server.err();
}

TEST(EchoApp, HelpListsEveryFlagWithItsDefault) {
  ChildProcess help("ringserve-echo", {"--help"});
  EXPECT_EQ(help.wait_exit(milliseconds(10000)), 0);
  for (const char* flag : {"--port", "--address", "--backend", "--max-connections", "--grace-ms",
                           "--threads", "--buffer-count", "--buffer-size"}) {
    EXPECT_NE(help.out().find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help.out().find("9000"), std::string::npos);
  EXPECT_NE(help.out().find("5000"), std::string::npos);
}

TEST(EchoApp, MaxConnectionsAboveTheFdLimitIsRefusedWithAdvice) {
  ChildProcess server("ringserve-echo", {"--port", "0", "--max-connections", "4000000000"});
  EXPECT_EQ(server.wait_exit(milliseconds(10000)), 1);
  EXPECT_NE(server.err().find("--max-connections"), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("ulimit"), std::string::npos) << server.err();
}

TEST(EchoApp, PortInUseSaysWhatToDo) {
  ChildProcess first("ringserve-echo", {"--port", "0"});
  const auto line = first.wait_for_line("listening on", milliseconds(10000));
  ASSERT_TRUE(line);
  const std::string port = std::to_string(port_from_startup_line(*line));
  ChildProcess second("ringserve-echo", {"--port", port});
  EXPECT_EQ(second.wait_exit(milliseconds(10000)), 1);
  EXPECT_NE(second.err().find("--port"), std::string::npos) << second.err();
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait_exit(milliseconds(10000)), 0);
}

}  // namespace
}  // namespace rs::test
