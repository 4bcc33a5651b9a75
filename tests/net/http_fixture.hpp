// An HTTP server in process for tests over raw loopback sockets, on every backend the harness
// knows: start it with a tweaked HttpConfig, connect clients (closed at the end), read its
// transport and HTTP counters.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "net/http/session_factory.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {

class HttpServerFixture : public ::testing::TestWithParam<BackendParam> {
 protected:
  void start(const std::function<void(http::HttpConfig&)>& tweak = {},
             const std::function<void(net::ServerConfig&)>& server_tweak = {}) {
    http::HttpConfig config;
    if (tweak) tweak(config);
    shared_ = std::make_unique<http::HttpShared>(config);
    net::ServerConfig server_config = test_config(GetParam());
    if (server_tweak) server_tweak(server_config);
    server_ = std::make_unique<InProcessServer>(server_config, http::make_http_factory(*shared_));
    shared_->set_transport_counters([this] { return server_->server().counters(); });
  }
  int connect() {
    const int fd = connect_to(server_->port());
    fds_.push_back(fd);
    return fd;
  }
  // A client whose receive buffer is small, so the server meets a slow reader at once.
  int connect_small_window() {
    const int fd = connect_to(server_->port(), 4 << 10);
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }
  // Closes a client before the end of the test (a lingering server side then finishes at once).
  void close_client(int fd) {
    std::erase(fds_, fd);
    ::close(fd);
  }
  // Whether the server still accepts connections (false once every loop began to stop).
  bool accepting() {
    const int fd = connect_to(server_->port());
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  }
  void TearDown() override {
    for (int fd : fds_)
      ::close(fd);
  }
  std::int64_t counter(std::string_view name) { return server_->counter(name); }
  // An HTTP counter summed over loops, e.g. &http::HttpCounters::send_timeouts.
  std::uint64_t http_counter(core::Counter http::HttpCounters::*which) {
    std::uint64_t n = 0;
    shared_->for_each_counters([&](const http::HttpCounters& c) { n += (c.*which).get(); });
    return n;
  }

  std::unique_ptr<http::HttpShared> shared_;
  std::unique_ptr<InProcessServer> server_;
  std::vector<int> fds_;
};

inline constexpr char kGetPlaintext[] = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

}  // namespace rs::test
