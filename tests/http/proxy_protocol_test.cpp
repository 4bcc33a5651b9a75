// The PROXY protocol on a ,proxy listener, on every backend, over loopback: v1 and v2 headers
// whole and split byte by byte, before plain HTTP and before a TLS handshake; the access log names
// the client the header gave; a bad header, an untrusted peer and a header that never completes
// close only their own connection, counted. And X-Forwarded-For from a trusted peer
// (--trust-x-forwarded-for). Every wait is on the socket, the file or a counter.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/proxy_header.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/https_fixture.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/text_file.hpp"

namespace rs::test {
namespace {

constexpr std::string_view kV1 = "PROXY TCP4 192.0.2.1 198.51.100.7 51234 80\r\n";
constexpr std::string_view kV1Six = "PROXY TCP6 2001:db8::1 2001:db8::2 51234 80\r\n";
constexpr std::string_view kV1Unknown = "PROXY UNKNOWN\r\n";

// A v2 header (version 2), `command` 0 LOCAL or 1 PROXY, over TCP and IPv4 when `addresses`.
std::string v2_header(std::uint8_t command, bool addresses, std::size_t tlv_bytes = 0) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(addresses ? 0x11 : 0x00);
  const std::size_t length = (addresses ? 12 : 0) + tlv_bytes;
  h += static_cast<char>(length >> 8);
  h += static_cast<char>(length & 0xff);
  if (addresses)
    h += std::string("\xcb\x00\x71\x05\xc6\x33\x64\x07\xc8\x22\x00\x50", 12);  // 203.0.113.5
  if (tlv_bytes > 0) {
    // One TLV of type 0xEE (unknown to us: skipped) filling the rest.
    h += static_cast<char>(0xee);
    h += static_cast<char>((tlv_bytes - 3) >> 8);
    h += static_cast<char>((tlv_bytes - 3) & 0xff);
    h += std::string(tlv_bytes - 3, 'v');
  }
  return h;
}

class ProxyProtocolTest : public HttpsFixture {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rs-proxy-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    log_path_ = dir_ + "/access.log";
  }
  void TearDown() override {
    HttpsFixture::TearDown();  // the server stops first: its last lines are in
    std::remove(log_path_.c_str());
    ::rmdir(dir_.c_str());
  }

  // An HTTP server logging to log_path_ whose one listener is "127.0.0.1:0,proxy" (",tls" too
  // with `tls`), trusting `trusted`.
  void start_proxy(const char* trusted = "127.0.0.0/8", bool tls = false,
                   std::uint64_t header_timeout_ms = 10000) {
    const auto tweak = [&](net::ServerConfig& config) {
      config.listen = {
          net::parse_listen_address(tls ? "127.0.0.1:0,proxy,tls" : "127.0.0.1:0,proxy")};
      config.proxy.trusted.add(trusted);
      config.proxy.header_timeout_ms = header_timeout_ms;
      config.loop.access_log_path = log_path_;
    };
    if (tls) {
      start_https({}, tweak);
    } else {
      start({}, tweak);
    }
  }

  // An HTTP server on a plain listener logging to log_path_, taking X-Forwarded-For from
  // `trusted` peers (when `trust`).
  void start_forwarded(const char* trusted, bool trust = true) {
    start(
        [&](http::HttpConfig& http) {
          http.trust_forwarded_for = trust;
          http.trusted_proxies.add(trusted);
        },
        [&](net::ServerConfig& config) { config.loop.access_log_path = log_path_; });
  }

  // The remote field of each of the first n access-log lines.
  // The same, sorted: for lines of several connections, which two loops may log in either
  // order (each loop writes its own lines).
  std::vector<std::string> logged_clients_sorted(std::size_t n) {
    std::vector<std::string> remotes = logged_clients(n);
    std::sort(remotes.begin(), remotes.end());
    return remotes;
  }
  std::vector<std::string> logged_clients(std::size_t n) {
    std::vector<std::string> remotes;
    wait_until([&] { return read_lines(log_path_).size() >= n; });
    for (const std::string& line : read_lines(log_path_))
      remotes.push_back(line.substr(0, line.find(' ')));
    return remotes;
  }

  // Sends `bytes` one byte per send (each its own segment: no Nagle).
  static bool send_byte_by_byte(int fd, std::string_view bytes) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (const char c : bytes) {
      if (!send_all(fd, std::string_view(&c, 1))) return false;
    }
    return true;
  }

  static int status_of(int fd) { return HttpReader(fd).next().status; }

  std::string dir_;
  std::string log_path_;
};

TEST_P(ProxyProtocolTest, V1HeaderNamesTheClientInTheLog) {
  start_proxy();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, std::string(kV1) + kGetPlaintext));
  EXPECT_EQ(status_of(fd), 200);
  // The header comes once: the next request on the connection is plain HTTP.
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  EXPECT_EQ(status_of(fd), 200);
  const int six = connect();
  ASSERT_TRUE(send_all(six, std::string(kV1Six) + kGetPlaintext));
  EXPECT_EQ(status_of(six), 200);
  EXPECT_EQ(logged_clients_sorted(3),
            (std::vector<std::string>{"192.0.2.1", "192.0.2.1", "2001:db8::1"}));
  EXPECT_EQ(counter("proxy_headers"), 2);
  EXPECT_EQ(counter("proxy_header_errors"), 0);
}

TEST_P(ProxyProtocolTest, V2HeaderNamesTheClientAndSkipsItsTlvs) {
  start_proxy();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, v2_header(1, true, 100) + kGetPlaintext));
  EXPECT_EQ(status_of(fd), 200);
  EXPECT_EQ(logged_clients(1), std::vector<std::string>{"203.0.113.5"});
  EXPECT_EQ(counter("proxy_headers"), 1);
}

TEST_P(ProxyProtocolTest, LocalAndUnknownKeepTheSocketPeer) {
  start_proxy();
  const int local = connect();
  ASSERT_TRUE(send_all(local, v2_header(0, true) + kGetPlaintext));
  EXPECT_EQ(status_of(local), 200);
  const int unknown = connect();
  ASSERT_TRUE(send_all(unknown, std::string(kV1Unknown) + kGetPlaintext));
  EXPECT_EQ(status_of(unknown), 200);
  EXPECT_EQ(logged_clients(2), (std::vector<std::string>{"127.0.0.1", "127.0.0.1"}));
  EXPECT_EQ(counter("proxy_headers"), 2);
}

TEST_P(ProxyProtocolTest, HeadersSplitByteByByteStillNameTheClient) {
  start_proxy();
  const int v1 = connect();
  ASSERT_TRUE(send_byte_by_byte(v1, std::string(kV1) + "GET /plaintext HTTP/1.1\r\n"));
  ASSERT_TRUE(send_all(v1, "Host: t\r\n\r\n"));
  EXPECT_EQ(status_of(v1), 200);
  const int v2 = connect();
  ASSERT_TRUE(send_byte_by_byte(v2, v2_header(1, true, 40)));
  ASSERT_TRUE(send_all(v2, kGetPlaintext));
  EXPECT_EQ(status_of(v2), 200);
  EXPECT_EQ(logged_clients_sorted(2), (std::vector<std::string>{"192.0.2.1", "203.0.113.5"}));
  EXPECT_EQ(counter("proxy_headers"), 2);
}

TEST_P(ProxyProtocolTest, HeaderComesBeforeTheTlsHandshake) {
  start_proxy("127.0.0.1", /*tls=*/true);
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, kV1));
  TlsClient tls(fd, files_.cert);
  ASSERT_TRUE(tls.handshake());
  ASSERT_TRUE(tls.send(kGetPlaintext));
  EXPECT_EQ(tls.answer(), 200);
  // Split: the header byte by byte, the ClientHello right behind its last byte.
  const int split = connect();
  ASSERT_TRUE(send_byte_by_byte(split, v2_header(1, true)));
  TlsClient tls2(split, files_.cert);
  ASSERT_TRUE(tls2.handshake());
  ASSERT_TRUE(tls2.send(kGetPlaintext));
  EXPECT_EQ(tls2.answer(), 200);
  EXPECT_EQ(logged_clients_sorted(2), (std::vector<std::string>{"192.0.2.1", "203.0.113.5"}));
  EXPECT_EQ(counter("proxy_headers"), 2);
  EXPECT_EQ(counter("tls_handshakes") + counter("tls_resumed"), 2);
}

TEST_P(ProxyProtocolTest, BadHeadersCloseOnlyTheirConnectionAndAreCounted) {
  start_proxy();
  const int bystander = connect();  // its header is in; it waits for its request
  ASSERT_TRUE(send_all(bystander, kV1));
  std::string wrong_signature = v2_header(1, true);
  wrong_signature[9] = 'X';
  std::string over_bound = v2_header(1, true);
  over_bound[14] = 0x02;  // 16 + 0x020c bytes: over 536
  over_bound[15] = 0x0c;
  const std::vector<std::string> bad = {
      kGetPlaintext,                             // plain HTTP on a proxy listener
      "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",        // a field missing
      "PROXY UNKNOWN " + std::string(100, 'x'),  // no CRLF within 107 bytes
      wrong_signature,
      over_bound,
  };
  for (const std::string& bytes : bad) {
    const int fd = connect();
    ASSERT_TRUE(send_all(fd, bytes));
    EXPECT_TRUE(wait_closed(fd)) << testing::PrintToString(bytes);
    close_client(fd);
  }
  EXPECT_TRUE(wait_until([&] {
    return counter("proxy_header_errors") == static_cast<std::int64_t>(bad.size());
  })) << counter("proxy_header_errors");
  ASSERT_TRUE(send_all(bystander, kGetPlaintext));
  EXPECT_EQ(status_of(bystander), 200);
  // Cut short by the peer's close: counted too.
  const int cut = connect();
  ASSERT_TRUE(send_all(cut, "PROXY TCP4 1.2"));
  ::shutdown(cut, SHUT_WR);
  EXPECT_TRUE(wait_closed(cut));
  EXPECT_TRUE(wait_until(
      [&] { return counter("proxy_header_errors") == static_cast<std::int64_t>(bad.size()) + 1; }));
  close_client(cut);
  close_client(bystander);
  EXPECT_TRUE(expect_pools_returned());
}

TEST_P(ProxyProtocolTest, UntrustedPeerIsClosedAtOnce) {
  start_proxy("10.0.0.0/8");
  const int fd = connect();
  EXPECT_TRUE(wait_closed(fd));
  EXPECT_TRUE(wait_until([&] { return counter("proxy_untrusted_peers") == 1; }));
  EXPECT_EQ(counter("proxy_headers"), 0);
  close_client(fd);
  EXPECT_TRUE(expect_pools_returned());
}

TEST_P(ProxyProtocolTest, HeaderThatNeverCompletesIsCutByTheTimeout) {
  start_proxy("127.0.0.0/8", false, /*header_timeout_ms=*/100);
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "PROXY TCP4 192.0.2.1 "));
  const int silent = connect();
  EXPECT_TRUE(wait_closed(fd));
  EXPECT_TRUE(wait_closed(silent));
  EXPECT_TRUE(wait_until([&] { return counter("proxy_header_timeouts") == 2; }))
      << counter("proxy_header_timeouts");
  close_client(fd);
  close_client(silent);
  EXPECT_TRUE(expect_pools_returned());
}

TEST_P(ProxyProtocolTest, StopClosesConnectionsStillWaitingForTheirHeader) {
  start_proxy();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "PROXY "));
  EXPECT_TRUE(wait_until([&] { return counter("connections_open") == 1; }));
  server_->server().stop();
  EXPECT_TRUE(wait_closed(fd));
  EXPECT_TRUE(server_->stop_and_wait(milliseconds(10000)));
}

constexpr std::string_view kForwarded =
    "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9, 198.51.100.2\r\n\r\n";

TEST_P(ProxyProtocolTest, ForwardedForFromATrustedPeerNamesTheClient) {
  start_forwarded("127.0.0.0/8");
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, kForwarded));
  EXPECT_EQ(status_of(fd), 200);
  // Per request: the next one without the field is the connection's own client.
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  EXPECT_EQ(status_of(fd), 200);
  // Several fields, one list; the trusted loopback address at the right is skipped.
  ASSERT_TRUE(send_all(fd,
                       "GET /plaintext HTTP/1.1\r\nX-Forwarded-For: 192.0.2.44\r\nHost: t\r\n"
                       "X-Forwarded-For: 127.0.0.9\r\n\r\n"));
  EXPECT_EQ(status_of(fd), 200);
  EXPECT_EQ(logged_clients(3),
            (std::vector<std::string>{"198.51.100.2", "127.0.0.1", "192.0.2.44"}));
  EXPECT_EQ(http_counter(&http::HttpCounters::forwarded_for_errors), 0U);
}

TEST_P(ProxyProtocolTest, ForwardedForFromAnUntrustedPeerOrWhenOffIsIgnored) {
  start_forwarded("10.0.0.0/8");
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, kForwarded));
  EXPECT_EQ(status_of(fd), 200);
  EXPECT_EQ(logged_clients(1), std::vector<std::string>{"127.0.0.1"});
}

TEST_P(ProxyProtocolTest, ForwardedForIsOffByDefault) {
  start_forwarded("127.0.0.0/8", /*trust=*/false);
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, kForwarded));
  EXPECT_EQ(status_of(fd), 200);
  EXPECT_EQ(logged_clients(1), std::vector<std::string>{"127.0.0.1"});
}

TEST_P(ProxyProtocolTest, MalformedForwardedForIsIgnoredAndCounted) {
  start_forwarded("127.0.0.0/8");
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /plaintext HTTP/1.1\r\nHost: t\r\n"
                       "X-Forwarded-For: 198.51.100.2, not-an-address\r\n\r\n"));
  EXPECT_EQ(status_of(fd), 200);
  EXPECT_EQ(logged_clients(1), std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(http_counter(&http::HttpCounters::forwarded_for_errors), 1U);
}

TEST_P(ProxyProtocolTest, ForwardedForBehindAProxyHeaderWins) {
  // The socket's peer (the balancer that sent the PROXY header) is trusted: its X-Forwarded-For
  // names the client of each request; a request without one keeps the PROXY header's client.
  start(
      [](http::HttpConfig& http) {
        http.trust_forwarded_for = true;
        http.trusted_proxies.add("127.0.0.0/8");
      },
      [&](net::ServerConfig& config) {
        config.listen = {net::parse_listen_address("127.0.0.1:0,proxy")};
        config.proxy.trusted.add("127.0.0.0/8");
        config.loop.access_log_path = log_path_;
      });
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, std::string(kV1) + std::string(kForwarded)));
  EXPECT_EQ(status_of(fd), 200);
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  EXPECT_EQ(status_of(fd), 200);
  EXPECT_EQ(logged_clients(2), (std::vector<std::string>{"198.51.100.2", "192.0.2.1"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, ProxyProtocolTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
