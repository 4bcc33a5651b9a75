// HTTPS in process, on every backend: an OpenSSL client that verifies the server's certificate
// over a real loopback socket. Keep-alive and pipelined requests (answers sealed into few
// records), a large body both ways, close_notify at the end, and what a TLS port does with a
// plain HTTP request, garbage records, and a handshake that never finishes.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "net/tls/tls_context.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_fixture.hpp"
#include "tests/support/tls_client.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {
namespace {

class TlsTest : public HttpsFixture {
 protected:
  void start_tls(std::uint64_t handshake_timeout_ms = 10000) {
    start_https([&](net::tls::TlsConfig& c) { c.handshake_timeout_ms = handshake_timeout_ms; });
  }
};

TEST_P(TlsTest, KeepAliveRequestsAreAnsweredAndTheCloseIsNotified) {
  start_tls();
  auto c = client();
  std::string body;
  ASSERT_TRUE(c->send(kGetPlaintext));
  EXPECT_EQ(c->answer(&body), 200);
  EXPECT_EQ(body, "Hello, World!");
  ASSERT_TRUE(c->send("GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(c->answer(&body), 200);
  EXPECT_EQ(body, R"({"message":"Hello, World!"})");
  EXPECT_TRUE(c->closed_with_notify()) << "the server's last bytes are its close_notify";
  EXPECT_EQ(counter("tls_handshakes"), 1);
  EXPECT_TRUE(expect_pools_returned());
}

// Twenty pipelined requests that arrive together are answered in one turn, whose answers are
// sealed together: a record or two, where one per answer would be twenty.
TEST_P(TlsTest, PipelinedAnswersOfATurnLeaveInFewRecords) {
  start_tls();
  auto c = client();
  const int before = c->records();
  std::string burst;
  for (int i = 0; i < 20; ++i)
    burst += kGetPlaintext;
  ASSERT_TRUE(c->send(burst));
  for (int i = 0; i < 20; ++i) {
    std::string body;
    ASSERT_EQ(c->answer(&body), 200) << "answer " << i;
    EXPECT_EQ(body, "Hello, World!");
  }
  // TLS 1.3 sends its session tickets after the handshake: records of their own, counted too.
  EXPECT_LE(c->records() - before, 6) << "records for 20 answers";
}

// A 3 MB body, sent in records of 16 KB, echoed back as full-size records through the output
// backpressure: every byte, in order.
TEST_P(TlsTest, LargeBodyIsEchoedWhole) {
  start_tls();
  auto c = client();
  expect_echoed_whole(*c, 7);
}

TEST_P(TlsTest, PlainHttpOnTheTlsPortGets400InTheClearAndAClose) {
  start_tls();
  const int fd = connect();
  bound_receives(fd);
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;)
    answer.append(buffer, static_cast<std::size_t>(n));
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0U) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  EXPECT_NE(answer.find("https://"), std::string::npos);
  EXPECT_EQ(counter("tls_plain_http"), 1);
  // The port still serves TLS.
  auto c = client();
  ASSERT_TRUE(c->send(kGetPlaintext));
  EXPECT_EQ(c->answer(), 200);
}

// --listen ADDRESS:PORT and --listen ADDRESS:PORT,tls on one server: each port speaks its own
// protocol, a client that picks the wrong one is answered as on a port of one kind, and neither
// disturbs the other.
TEST_P(TlsTest, PlainAndTlsListenersServeSideBySide) {
  net::tls::TlsConfig config;
  config.cert_file = files_.cert;
  config.key_file = files_.key;
  auto context = net::tls::TlsContext::load(config);
  start({}, [&](net::ServerConfig& s) {
    s.tls = context;
    s.listen = {{.address = "127.0.0.1", .port = 0, .tls = false},
                {.address = "127.0.0.1", .port = 0, .tls = true}};
  });
  const auto& listeners = server_->server().listeners();
  ASSERT_EQ(listeners.size(), 2U);
  EXPECT_FALSE(listeners[0].tls);
  EXPECT_TRUE(listeners[1].tls);
  const std::uint16_t plain_port = listeners[0].port;
  const std::uint16_t tls_port = listeners[1].port;
  ASSERT_NE(plain_port, tls_port);
  EXPECT_EQ(port(), plain_port) << "port() is the first listener's";

  // HTTPS on the TLS port, keep-alive.
  auto secure = std::make_unique<TlsClient>(connect_listener(1), files_.cert);
  ASSERT_TRUE(secure->handshake()) << ERR_error_string(ERR_get_error(), nullptr);
  ASSERT_TRUE(secure->send(kGetPlaintext));
  std::string body;
  EXPECT_EQ(secure->answer(&body), 200);
  EXPECT_EQ(body, "Hello, World!");

  // Plain HTTP on the plain port, on a connection opened while the TLS one stays open.
  const int plain = connect_listener(0);
  ASSERT_GE(plain, 0);
  HttpReader reader(plain);
  ASSERT_TRUE(send_all(plain, kGetPlaintext));
  HttpResponse response = reader.next();
  ASSERT_TRUE(response.ok);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "Hello, World!");

  // Plain HTTP on the TLS port: the 400 in the clear that says to use https.
  const int wrong = connect_listener(1);
  ASSERT_GE(wrong, 0);
  HttpReader wrong_reader(wrong);
  ASSERT_TRUE(send_all(wrong, kGetPlaintext));
  response = wrong_reader.next();
  ASSERT_TRUE(response.ok);
  EXPECT_EQ(response.status, 400);
  EXPECT_NE(response.body.find("https://"), std::string::npos);
  EXPECT_TRUE(wrong_reader.closed());

  // A TLS handshake on the plain port fails (its ClientHello is no HTTP request).
  auto misdirected = std::make_unique<TlsClient>(connect_listener(0), files_.cert);
  EXPECT_FALSE(misdirected->handshake());

  // Both keep serving the connections they had.
  ASSERT_TRUE(secure->send(kGetPlaintext));
  EXPECT_EQ(secure->answer(&body), 200);
  ASSERT_TRUE(send_all(plain, kGetPlaintext));
  response = reader.next();
  ASSERT_TRUE(response.ok);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(counter("tls_handshakes"), 1);
  EXPECT_EQ(counter("tls_plain_http"), 1);
}

// A handshake record of garbage gets an alert and a close; other clients are not disturbed.
TEST_P(TlsTest, GarbageRecordGetsAnAlertAndOthersAreServed) {
  start_tls();
  auto good = client();
  const int fd = connect();
  bound_receives(fd);
  const std::string garbage = std::string("\x16\x03\x01\x00\x20", 5) + std::string(32, '\x7f');
  ASSERT_TRUE(send_all(fd, garbage));
  char buffer[256];
  const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
  ASSERT_GT(n, 0) << "an alert comes before the close";
  EXPECT_EQ(buffer[0], '\x15') << "a TLS alert record";
  EXPECT_TRUE(wait_closed(fd));
  EXPECT_EQ(counter("tls_handshake_errors"), 1);
  ASSERT_TRUE(good->send(kGetPlaintext));
  EXPECT_EQ(good->answer(), 200);
}

// A client that connects and sends nothing, and one that stops halfway through its ClientHello,
// are closed at the handshake timeout.
TEST_P(TlsTest, HandshakeThatDoesNotFinishIsCutAtTheTimeout) {
  start_tls(200);
  const int silent = connect();
  const int halfway = connect();
  ASSERT_TRUE(send_all(halfway, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  EXPECT_TRUE(wait_closed(silent, milliseconds(5000)));
  EXPECT_TRUE(wait_closed(halfway, milliseconds(5000)));
  EXPECT_TRUE(wait_until([&] { return counter("tls_handshake_timeouts") == 2; }));
  EXPECT_TRUE(expect_pools_returned());
}

// The client ends with close_notify on a kept connection: the server takes it as the end of
// input and closes too.
TEST_P(TlsTest, ClientCloseNotifyEndsTheConnection) {
  start_tls();
  auto c = client();
  ASSERT_TRUE(c->send(kGetPlaintext));
  ASSERT_EQ(c->answer(), 200);
  c->close_notify();
  EXPECT_TRUE(wait_until([&] { return counter("connections_open") == 0; }));
  EXPECT_TRUE(expect_pools_returned());
}

std::string file_text(const std::string& path) {
  std::string text;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0;)
      text.append(buffer, n);
    std::fclose(f);
  }
  return text;
}

void put_file(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
  std::fclose(f);
}

// Whether a new connection verifies against `ca` (the certificate it trusts) and is answered.
bool served_with(std::uint16_t port, const std::string& ca) {
  const int fd = connect_to(port);
  if (fd < 0) return false;
  bool ok = false;
  {
    TlsClient c(fd, ca);
    ERR_clear_error();
    ok = c.handshake() && c.send(kGetPlaintext) && c.answer() == 200;
    ERR_clear_error();
  }
  ::close(fd);
  return ok;
}

// SIGHUP's reload: new connections get the new certificate, connections already open go on
// with theirs, and a bad new file leaves the one in use in place.
TEST_P(TlsTest, ReloadedCertificateServesNewConnectionsAndOpenOnesGoOn) {
  TlsFiles second;  // another key and certificate for the same name
  const std::string live_cert = files_.dir + "/live-cert.pem";
  const std::string live_key = files_.dir + "/live-key.pem";
  put_file(live_cert, file_text(files_.cert));
  put_file(live_key, file_text(files_.key));
  net::tls::TlsConfig config;
  config.cert_file = live_cert;
  config.key_file = live_key;
  auto context = net::tls::TlsContext::load(config);
  start({}, [&](net::ServerConfig& s) { s.tls = context; });
  auto before = client();  // trusts the first certificate
  ASSERT_TRUE(before->send(kGetPlaintext));
  ASSERT_EQ(before->answer(), 200);

  put_file(live_cert, file_text(second.cert));
  put_file(live_key, file_text(second.key));
  ASSERT_TRUE(server_->server().reload_tls());
  // Each loop takes the new context when it hears of it (at once, but not before this thread
  // goes on): new connections get it, and no longer the old one.
  EXPECT_TRUE(wait_until([&] {
    return served_with(port(), second.cert) && !served_with(port(), files_.cert) &&
           !served_with(port(), files_.cert);
  })) << "new connections get the new certificate";
  ASSERT_TRUE(before->send(kGetPlaintext));
  EXPECT_EQ(before->answer(), 200) << "a connection made before goes on";

  put_file(live_cert, "not a certificate\n");
  EXPECT_FALSE(server_->server().reload_tls());
  EXPECT_TRUE(served_with(port(), second.cert)) << "a bad file leaves the context in use";
}

INSTANTIATE_TEST_SUITE_P(Backends, TlsTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
