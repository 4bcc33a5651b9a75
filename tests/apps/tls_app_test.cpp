// The built binaries with the --tls-* flags, run as child processes: a certificate and key that
// cannot serve are refused at start-up (exit 1, the file or flag named, before any socket is
// served), and the start-up line says whether TLS is on and with what certificate.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/server_harness.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

// Start-up refusals come before the loops start, so well within this.
constexpr milliseconds kTimeout{10000};

class TlsApp : public ::testing::Test {
 protected:
  // Runs `binary` with args; expects exit status 1 and every needle in its stderr.
  void expect_refused(const std::string& binary, const std::vector<std::string>& args,
                      const std::vector<std::string>& needles) {
    // --port 0 unless the listeners are named (--listen excludes --port).
    std::vector<std::string> argv;
    if (std::find(args.begin(), args.end(), "--listen") == args.end()) argv = {"--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess server(binary, argv);
    EXPECT_EQ(server.wait_exit(kTimeout), 1) << server.out() << server.err();
    EXPECT_NE(server.err().find(binary + ": cannot start: "), std::string::npos) << server.err();
    for (const std::string& needle : needles)
      EXPECT_NE(server.err().find(needle), std::string::npos) << needle << "\n" << server.err();
    EXPECT_EQ(server.out().find("listening on"), std::string::npos) << server.out();
  }

  TlsFiles files_;
};

TEST_F(TlsApp, KeyThatDoesNotMatchTheCertIsRefusedNamingBothFiles) {
  expect_refused("ringserve-http", {"--tls-cert", files_.cert, "--tls-key", files_.other_key},
                 {"--tls-key " + files_.other_key, files_.cert, "does not match"});
}

TEST_F(TlsApp, ExpiredCertIsRefusedSayingWhen) {
  expect_refused("ringserve-http", {"--tls-cert", files_.expired_cert, "--tls-key", files_.key},
                 {"--tls-cert " + files_.expired_cert, "expired on "});
}

TEST_F(TlsApp, MissingCertFileIsRefusedNamingIt) {
  expect_refused("ringserve-http", {"--tls-cert", files_.missing, "--tls-key", files_.key},
                 {"--tls-cert " + files_.missing, "No such file"});
}

TEST_F(TlsApp, MissingKeyFileIsRefusedNamingIt) {
  expect_refused("ringserve-http", {"--tls-cert", files_.cert, "--tls-key", files_.missing},
                 {"--tls-key " + files_.missing, "No such file"});
}

TEST_F(TlsApp, CertWithoutKeyIsRefusedNamingTheMissingFlag) {
  expect_refused("ringserve-http", {"--tls-cert", files_.cert},
                 {"--tls-cert " + files_.cert, "without --tls-key"});
}

// The flags are shared: ringserve-echo refuses the same way.
TEST_F(TlsApp, EchoServerRefusesAKeyWithoutCert) {
  expect_refused("ringserve-echo", {"--tls-key", files_.key},
                 {"--tls-key " + files_.key, "without --tls-cert"});
}

TEST_F(TlsApp, UnknownMinVersionIsRefusedByTheFlagParser) {
  ChildProcess server("ringserve-http", {"--port", "0", "--tls-cert", files_.cert, "--tls-key",
                                         files_.key, "--tls-min-version", "1.1"});
  const auto status = server.wait_exit(kTimeout);
  ASSERT_TRUE(status);
  EXPECT_NE(*status, 0);
  EXPECT_NE(server.err().find("--tls-min-version"), std::string::npos) << server.err();
}

TEST_F(TlsApp, HandshakeTimeoutOutOfRangeIsRefusedByTheFlagParser) {
  ChildProcess server("ringserve-http", {"--port", "0", "--handshake-timeout-ms", "0"});
  const auto status = server.wait_exit(kTimeout);
  ASSERT_TRUE(status);
  EXPECT_NE(*status, 0);
  EXPECT_NE(server.err().find("--handshake-timeout-ms"), std::string::npos) << server.err();
}

TEST_F(TlsApp, HelpListsTheTlsFlags) {
  ChildProcess help("ringserve-http", {"--help"});
  EXPECT_EQ(help.wait_exit(kTimeout), 0);
  for (const char* flag : {"--tls-cert", "--tls-key", "--tls-min-version", "--tls-ciphers",
                           "--tls-ciphersuites", "--tls-groups", "--handshake-timeout-ms"}) {
    EXPECT_NE(help.out().find(flag), std::string::npos) << flag << "\n" << help.out();
  }
}

TEST_F(TlsApp, StartupLineSaysTlsOffWithoutACertificate) {
  ChildProcess server("ringserve-http", {"--port", "0"});
  const auto line = server.wait_for_line("listening on", kTimeout);
  ASSERT_TRUE(line) << server.err();
  EXPECT_NE(line->find(" tls=off"), std::string::npos) << *line;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(kTimeout), 0) << server.err();
}

TEST_F(TlsApp, StartupLineDescribesTheCertificate) {
  ChildProcess server("ringserve-http",
                      {"--port", "0", "--tls-cert", files_.cert, "--tls-key", files_.key});
  const auto line = server.wait_for_line("listening on", kTimeout);
  ASSERT_TRUE(line) << server.err();
  EXPECT_NE(line->find(" tls=TLS 1.2+ (CN=localhost, ECDSA P-256, valid until "), std::string::npos)
      << *line;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(kTimeout), 0) << server.err();
}

// --listen twice, one with ,tls: the start-up line names both (the first listener's port is
// the one scripts read), and each port answers in its own protocol (tls_test.cpp checks the
// serving on every backend).
TEST_F(TlsApp, StartupLineNamesEveryListener) {
  ChildProcess server("ringserve-http", {"--listen", "127.0.0.1:0", "--listen", "[::1]:0,tls",
                                         "--tls-cert", files_.cert, "--tls-key", files_.key});
  const auto line = server.wait_for_line("listening on", kTimeout);
  ASSERT_TRUE(line) << server.err();
  EXPECT_NE(line->find("listening on 127.0.0.1 port "), std::string::npos) << *line;
  EXPECT_NE(line->find(", ::1 port "), std::string::npos) << *line;
  EXPECT_NE(line->find(" tls: backend="), std::string::npos) << *line;
  EXPECT_NE(port_from_startup_line(*line), 0) << *line;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(kTimeout), 0) << server.err();
}

TEST_F(TlsApp, TlsListenerWithoutACertificateIsRefused) {
  expect_refused("ringserve-http", {"--listen", "127.0.0.1:0,tls"},
                 {"--listen with ,tls needs a certificate", "--tls-cert"});
}

TEST_F(TlsApp, CertificateWithoutATlsListenerIsRefused) {
  expect_refused("ringserve-http",
                 {"--listen", "127.0.0.1:0", "--tls-cert", files_.cert, "--tls-key", files_.key},
                 {"no --listen speaks TLS", ",tls"});
}

TEST_F(TlsApp, MalformedListenIsRefusedNamingIt) {
  for (const std::string bad : {"127.0.0.1", "::1:8080", "127.0.0.1:70000", "127.0.0.1:0,tsl"}) {
    ChildProcess server("ringserve-http", {"--listen", bad});
    EXPECT_EQ(server.wait_exit(kTimeout), 1) << bad << "\n" << server.out() << server.err();
    EXPECT_NE(server.err().find("--listen " + bad + ": "), std::string::npos) << server.err();
    EXPECT_NE(server.err().find("ADDRESS:PORT[,tls]"), std::string::npos) << server.err();
    EXPECT_EQ(server.out().find("listening on"), std::string::npos) << server.out();
  }
}

TEST_F(TlsApp, ListenWithPortOrAddressIsRefused) {
  for (const char* flag : {"--port", "--address"}) {
    ChildProcess server("ringserve-http", {"--listen", "127.0.0.1:0", flag,
                                           std::string(flag) == "--port" ? "0" : "::1"});
    EXPECT_NE(server.wait_exit(kTimeout), 0) << flag;
    EXPECT_NE(server.err().find("excludes --listen"), std::string::npos) << server.err();
    EXPECT_EQ(server.out().find("listening on"), std::string::npos) << server.out();
  }
}

}  // namespace
}  // namespace rs::test
