// Which routes answer, on every backend: the demo routes only where the operator wants them (on
// by default only without --root, so they never shadow a file), /metrics on the serving
// listeners only without --root, and a metrics listener that answers /metrics and nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/http_client.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_fixture.hpp"

namespace rs::test {
namespace {

namespace fs = std::filesystem;
using Switch = http::HttpConfig::Switch;

class RoutesTest : public ServerFixture {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("rs-routes-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    // Files named like every built-in route: with --root they are what a client gets.
    for (const char* name : {"metrics", "plaintext", "json", "echo", "delay"}) {
      std::ofstream(root_ / name) << "the file " << name << "\n";
    }
  }
  void TearDown() override {
    ServerFixture::TearDown();
    fs::remove_all(root_);
  }
  // A server serving root_ (or nothing) with the given demo routes, and when asked a metrics
  // listener as its second listener.
  void start_with(bool with_root, Switch demo, bool metrics_listener = false) {
    start(
        [&](http::HttpConfig& c) {
          if (with_root) c.root = root_.string();
          c.demo_routes = demo;
        },
        [&](net::ServerConfig& s) {
          if (metrics_listener) s.metrics_listen = {{.address = "127.0.0.1", .port = 0}};
        });
  }
  // One GET on a fresh connection to the i-th listener.
  HttpResponse get(std::string_view target, std::size_t listener = 0) {
    const int fd = connect_listener(listener);
    EXPECT_TRUE(send_all(fd, "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    HttpReader reader(fd);
    return reader.next();
  }

  fs::path root_;
};

TEST_P(RoutesTest, WithoutRootTheDemoRoutesAndMetricsAnswer) {
  start_with(false, Switch::kAuto);
  EXPECT_EQ(get("/plaintext").body, "Hello, World!");
  EXPECT_EQ(get("/json").body, "{\"message\":\"Hello, World!\"}");
  EXPECT_EQ(get("/delay?ms=1").status, 200);
  const HttpResponse metrics = get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("ringserve_http_requests_total"), std::string::npos);
  EXPECT_EQ(get("/nothing").status, 404);
}

TEST_P(RoutesTest, WithRootEveryFileIsReachable) {
  start_with(true, Switch::kAuto);
  for (const char* name : {"metrics", "plaintext", "json", "echo", "delay"}) {
    const HttpResponse r =
        get(std::string("/") + name + (name == std::string("delay") ? "?ms=60000" : ""));
    EXPECT_EQ(r.status, 200) << name;
    EXPECT_EQ(r.body, std::string("the file ") + name + "\n") << name;
  }
  EXPECT_EQ(get("/nothing").status, 404);
}

TEST_P(RoutesTest, DemoRoutesAreTurnedOnAndOffExplicitly) {
  start_with(true, Switch::kOn);
  EXPECT_EQ(get("/plaintext").body, "Hello, World!") << "asked for: it shadows the file";
  EXPECT_EQ(get("/metrics").body, "the file metrics\n") << "/metrics was not asked for";
  server_.reset();
  start_with(false, Switch::kOff);
  EXPECT_EQ(get("/plaintext").status, 404);
  EXPECT_EQ(get("/delay?ms=1").status, 404);
  EXPECT_EQ(get("/metrics").status, 404)
      << "off with the demo routes: a metrics listener serves it";
}

TEST_P(RoutesTest, MetricsListenerAnswersMetricsAndNothingElse) {
  start_with(true, Switch::kAuto, /*metrics_listener=*/true);
  ASSERT_EQ(server_->server().listeners().size(), 2U);
  EXPECT_EQ(server_->server().listeners()[1].use, net::ListenerUse::kMetrics);
  const HttpResponse metrics = get("/metrics", 1);
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("ringserve_http_requests_total"), std::string::npos);
  EXPECT_EQ(get("/plaintext", 1).status, 404) << "no file and no demo route there";
  EXPECT_EQ(get("/delay?ms=1", 1).status, 404);
  EXPECT_EQ(get("/metrics", 0).body, "the file metrics\n") << "the serving listener: the file";
}

TEST_P(RoutesTest, MetricsListenerBesideTheDemoRoutes) {
  start_with(false, Switch::kAuto, /*metrics_listener=*/true);
  EXPECT_EQ(get("/metrics", 1).status, 200);
  EXPECT_EQ(get("/metrics", 0).status, 200);
  EXPECT_EQ(get("/plaintext", 0).body, "Hello, World!");
  EXPECT_EQ(get("/plaintext", 1).status, 404);
}

INSTANTIATE_TEST_SUITE_P(Backends, RoutesTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
