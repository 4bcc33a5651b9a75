// --tls-ktls on the built binary: the start-up line says whether kTLS is in force, and why not
// (here, where the kernel has no TLS, what the probe found; with --tls-ktls off, the flag), and
// HTTPS is served either way, /metrics counting the kTLS connections.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "net/tls/ktls.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"
#include "tests/support/tls_client.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {
namespace {

constexpr milliseconds kTimeout{10000};

// Two requests over one TLS 1.3 connection to 127.0.0.1:port, the second (closing it) sent once
// the first is answered: what the server sent back, in plaintext ("" when the handshake failed).
std::string https_exchange(std::uint16_t port, const std::string& ca_file,
                           const std::string& second_target) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  std::string answers;
  {
    TlsClient client(fd, ca_file, TLS1_3_VERSION);
    if (client.handshake() && client.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
      while (answers.find("Hello, World!") == std::string::npos && client.read_some(answers)) {
      }
      if (client.send("GET " + second_target +
                      " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) {
        while (client.read_some(answers)) {
        }
      }
    }
  }  // the client's SSL freed before its socket is closed
  ::close(fd);
  return answers;
}

class KtlsApp : public ::testing::Test {
 protected:
  // ringserve-http with TLS and `extra` flags: its start-up line.
  std::string start(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--port",    "0",         "--tls-cert",
                                     files_.cert, "--tls-key", files_.key};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ChildProcess>("ringserve-http", args);
    const auto line = server_->wait_for_line("listening on", kTimeout);
    EXPECT_TRUE(line) << server_->err();
    return line.value_or("");
  }
  void TearDown() override {
    if (server_) {
      server_->signal(SIGTERM);
      EXPECT_EQ(server_->wait_exit(kTimeout), 0) << server_->err();
    }
  }

  TlsFiles files_;
  std::unique_ptr<ChildProcess> server_;
};

// auto is the default: the line is the one auto gives (on, or off with the probe's reason).
TEST_F(KtlsApp, AutoByDefault) {
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  const std::string line = start({});
  const std::string expected =
      probe.available ? " ktls=on (TLS 1.3)" : " ktls=off (" + probe.reason + ")";
  EXPECT_NE(line.find(expected), std::string::npos) << expected << "\n" << line;
}

// auto: on where the kernel has TLS, else off with the probe's reason; HTTPS is served either
// way, and /metrics says how many connections the kernel seals.
TEST_F(KtlsApp, StartupLineSaysWhetherKtlsIsOnAndWhyNot) {
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  const std::string line = start({"--tls-ktls", "auto"});
  const std::string expected =
      probe.available ? " ktls=on (TLS 1.3)" : " ktls=off (" + probe.reason + ")";
  EXPECT_NE(line.find(expected), std::string::npos) << expected << "\n" << line;
  const std::string answers = https_exchange(port_from_startup_line(line), files_.cert, "/metrics");
  EXPECT_EQ(answers.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << answers;
  EXPECT_NE(answers.find("Hello, World!"), std::string::npos) << answers;
  // The first answer went out before /metrics was made: by then the keys were with the kernel.
  EXPECT_EQ(metric_sum(answers, "ringserve_tls_ktls_connections_total"), probe.available ? 1 : 0)
      << answers;
  EXPECT_EQ(metric_sum(answers, "ringserve_tls_ktls_fallbacks_total"), 0)
      << "auto does not try on a kernel without TLS";
}

TEST_F(KtlsApp, OffSaysSoAndServes) {
  const std::string line = start({"--tls-ktls", "off"});
  EXPECT_NE(line.find(" ktls=off (--tls-ktls off)"), std::string::npos) << line;
  const std::string answers = https_exchange(port_from_startup_line(line), files_.cert, "/metrics");
  EXPECT_EQ(metric_sum(answers, "ringserve_tls_ktls_connections_total"), 0) << answers;
}

TEST(KtlsAppFlags, WithoutTlsTheLineSaysNothingOfKtls) {
  ChildProcess server("ringserve-http", {"--port", "0"});
  const auto line = server.wait_for_line("listening on", kTimeout);
  ASSERT_TRUE(line) << server.err();
  EXPECT_EQ(line->find("ktls="), std::string::npos) << *line;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(kTimeout), 0) << server.err();
}

TEST(KtlsAppFlags, UnknownModeIsRefusedByTheFlagParser) {
  ChildProcess server("ringserve-http", {"--port", "0", "--tls-ktls", "on"});
  const auto status = server.wait_exit(kTimeout);
  ASSERT_TRUE(status);
  EXPECT_NE(*status, 0);
  EXPECT_NE(server.err().find("--tls-ktls"), std::string::npos) << server.err();
}

TEST(KtlsAppFlags, HelpListsTheFlag) {
  ChildProcess help("ringserve-http", {"--help"});
  EXPECT_EQ(help.wait_exit(kTimeout), 0);
  EXPECT_NE(help.out().find("--tls-ktls"), std::string::npos) << help.out();
}

}  // namespace
}  // namespace rs::test
