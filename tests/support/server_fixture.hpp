// The one server fixture of the socket-level tests: an HTTP or echo server in process on every
// backend the harness knows, started with tweaks to its protocol config and its
// net::ServerConfig; clients connected over raw loopback sockets (closed at TearDown, before
// the server stops); its transport and HTTP counters; and expect_pools_returned().
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "net/echo/echo_protocol.hpp"
#include "net/http/session_factory.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {

class ServerFixture : public ::testing::TestWithParam<BackendParam> {
 protected:
  using HttpTweak = std::function<void(http::HttpConfig&)>;
  using ServerTweak = std::function<void(net::ServerConfig&)>;

  // An HTTP server (its transport counters feed GET /metrics).
  void start(const HttpTweak& tweak = {}, const ServerTweak& server_tweak = {}) {
    http::HttpConfig config;
    if (tweak) tweak(config);
    shared_ = std::make_unique<http::HttpShared>(config);
    net::ServerConfig server = test_config(GetParam());
    // As ringserve-http does: output limits that follow the HTTP ones, metrics to serve.
    http::follow_output_limit(server.loop.limits, config);
    server.protocol_has_metrics = true;
    if (server_tweak) server_tweak(server);
    server_ = std::make_unique<InProcessServer>(server, http::make_http_factory(*shared_));
    shared_->set_transport_counters([this] { return server_->server().counters_by_loop(); });
  }
  // An echo server (echo has no settings of its own).
  void start_echo(const ServerTweak& server_tweak = {}) {
    server_ =
        std::make_unique<InProcessServer>(server_config(server_tweak), net::echo::make_factory);
  }

  std::uint16_t port() const { return server_->port(); }
  // A client, closed at TearDown; the arguments are connect_to's.
  int connect(int receive_buffer_bytes = 0, int max_segment = 0) {
    const int fd = connect_to(server_->port(), receive_buffer_bytes, max_segment);
    fds_.push_back(fd);
    return fd;
  }
  // A client of the server's i-th listener (ServerConfig::listen), closed at TearDown.
  int connect_listener(std::size_t i) {
    const int fd = connect_to(server_->server().listeners().at(i).port);
    fds_.push_back(fd);
    return fd;
  }
  // A client whose receive buffer is small, so the server meets a slow reader at once.
  int connect_small_window(int receive_buffer_bytes = 4 << 10) {
    const int fd = connect(receive_buffer_bytes);
    EXPECT_GE(fd, 0);
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
  // Closes the clients, then stops the server (before anything a derived fixture cleans up).
  void TearDown() override {
    for (int fd : fds_)
      ::close(fd);
    fds_.clear();
    server_.reset();
    shared_.reset();
  }

  // A transport counter summed over loops, e.g. "bytes_out".
  std::int64_t counter(std::string_view name) const { return server_->counter(name); }
  // An HTTP counter summed over loops, e.g. &http::HttpCounters::send_timeouts.
  std::uint64_t http_counter(core::Counter http::HttpCounters::*which) const {
    std::uint64_t n = 0;
    shared_->for_each_counters([&](const http::HttpCounters& c) { n += (c.*which).get(); });
    return n;
  }
  std::int64_t http_gauge(core::Gauge http::HttpCounters::*which) const {
    std::int64_t n = 0;
    shared_->for_each_counters([&](const http::HttpCounters& c) { n += (c.*which).get(); });
    return n;
  }
  // Every connection gone and everything it held back in its pool (see server_harness.hpp);
  // on an HTTP server every session and request state too.
  bool expect_pools_returned(milliseconds timeout = milliseconds(10000)) const {
    bool ok = test::expect_pools_returned(*server_, timeout);
    if (shared_) {
      const auto http_idle = [&] {
        return http_gauge(&http::HttpCounters::sessions) == 0 &&
               http_gauge(&http::HttpCounters::request_states_in_use) == 0;
      };
      const bool http_ok = wait_until(http_idle, timeout);
      EXPECT_TRUE(http_ok) << "sessions " << http_gauge(&http::HttpCounters::sessions)
                           << ", request states in use "
                           << http_gauge(&http::HttpCounters::request_states_in_use);
      ok = ok && http_ok;
    }
    return ok;
  }

  std::unique_ptr<http::HttpShared> shared_;  // HTTP servers only
  std::unique_ptr<InProcessServer> server_;
  std::vector<int> fds_;

 private:
  net::ServerConfig server_config(const ServerTweak& tweak) const {
    net::ServerConfig config = test_config(GetParam());
    if (tweak) tweak(config);
    return config;
  }
};

inline constexpr char kGetPlaintext[] = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

}  // namespace rs::test
