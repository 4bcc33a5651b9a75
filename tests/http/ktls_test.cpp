// kTLS in process, on every backend, with an OpenSSL client over a real loopback socket. Where
// the kernel has no TLS (ktls::probe_kernel() says why), kTLS forced on falls back for each
// connection and HTTPS is served as without it; where it has, the kernel seals the answers of
// every TLS 1.3 suite (a large body, pipelined answers, close_notify too), zero-copy sends stay
// off, and a client's request for a key update closes the connection. Each of the two skips on
// the other kind of kernel, saying why.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "net/tls/ktls.hpp"
#include "net/tls/tls_context.hpp"
#include "tests/support/https_fixture.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/tls_client.hpp"

namespace rs::test {
namespace {

constexpr char kGetAndClose[] = "GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
constexpr const char* kSuites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                   "TLS_CHACHA20_POLY1305_SHA256"};

class KtlsServer : public HttpsFixture {
 protected:
  // kTLS on, as the start-up probe turns it on (here whatever the kernel has); on uring,
  // zero-copy sends for anything from 1 KiB, which kTLS connections must not use.
  void start_ktls() {
    start_https([](net::tls::TlsConfig& c) { c.ktls = true; },
                [](net::ServerConfig& s) { s.ring.send_zc_min_bytes = 1024; });
  }
  // TLS 1.3 unless told: the version whose keys go to the kernel.
  std::unique_ptr<TlsClient> client(int version = TLS1_3_VERSION, const char* suite = nullptr) {
    return HttpsFixture::client(version, suite);
  }
  // Keep-alive, twenty pipelined answers, a 3 MB body echoed, /metrics, and a close with
  // close_notify: all answered whole.
  void expect_served(TlsClient& c) {
    std::string body;
    ASSERT_TRUE(c.send(kGetPlaintext));
    ASSERT_EQ(c.answer(&body), 200);
    EXPECT_EQ(body, "Hello, World!");
    std::string burst;
    for (int i = 0; i < 20; ++i)
      burst += kGetPlaintext;
    ASSERT_TRUE(c.send(burst));
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(c.answer(&body), 200) << "answer " << i;
      EXPECT_EQ(body, "Hello, World!");
    }
    expect_echoed_whole(c, 7);
    ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    ASSERT_EQ(c.answer(&metrics_), 200);
    EXPECT_TRUE(c.closed_with_notify()) << "the server's last bytes are its close_notify";
  }

  std::string metrics_;  // the last /metrics answer of expect_served()
};

// On a kernel without TLS (this one, and so CI), each TLS 1.3 connection tries, is refused, and
// is served with OpenSSL sealing as if kTLS were off.
TEST_P(KtlsServer, ConnectionsFallBackToUserSpaceWhereTheKernelHasNoTls) {
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  if (probe.available) GTEST_SKIP() << "the kernel has TLS here: no connection falls back";
  start_ktls();
  auto c = client();
  const std::int64_t zero_copies = counter("send_zc");
  expect_served(*c);
  if (server_->in_force("send zc >= 1024 B")) {
    EXPECT_GT(counter("send_zc"), zero_copies) << "sealed in user space: zero copy as usual";
  }
  EXPECT_EQ(counter("tls_ktls_fallbacks"), 1);
  EXPECT_EQ(counter("tls_ktls_connections"), 0);
  EXPECT_EQ(metric_sum(metrics_, "ringserve_tls_ktls_fallbacks_total"), 1) << metrics_;
  EXPECT_EQ(metric_sum(metrics_, "ringserve_tls_ktls_connections_total"), 0);
  // TLS 1.2 never tries (its keys stay in user space): not a fallback.
  auto old = client(TLS1_2_VERSION);
  ASSERT_TRUE(old->send(kGetAndClose));
  EXPECT_EQ(old->answer(), 200);
  EXPECT_TRUE(old->closed_with_notify());
  EXPECT_EQ(counter("tls_ktls_fallbacks"), 1);
  EXPECT_TRUE(expect_pools_returned());
}

// Where the kernel has TLS, it seals the answers of every TLS 1.3 suite.
TEST_P(KtlsServer, KernelSealsTheAnswersOfEveryTls13Suite) {
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  if (!probe.available) GTEST_SKIP() << probe.reason;
  start_ktls();
  int served = 0;
  for (const char* suite : kSuites) {
    SCOPED_TRACE(suite);
    auto c = client(TLS1_3_VERSION, suite);
    // The handshake's flights are OpenSSL's, and may go zero-copy; the keys go to the kernel
    // with the first answer.
    ASSERT_TRUE(c->send(kGetPlaintext));
    ASSERT_EQ(c->answer(), 200);
    const std::int64_t zero_copies = counter("send_zc");
    expect_served(*c);
    EXPECT_EQ(counter("send_zc"), zero_copies) << "no zero-copy send once the kernel seals";
    ++served;
    EXPECT_EQ(counter("tls_ktls_connections"), served);
  }
  EXPECT_EQ(counter("tls_ktls_fallbacks"), 0);
  EXPECT_EQ(counter("tls_record_errors"), 0);
  // TLS 1.2 stays in user space.
  auto old = client(TLS1_2_VERSION);
  ASSERT_TRUE(old->send(kGetAndClose));
  EXPECT_EQ(old->answer(), 200);
  EXPECT_TRUE(old->closed_with_notify());
  EXPECT_EQ(counter("tls_ktls_connections"), served);
  EXPECT_TRUE(expect_pools_returned());
}

// A large last answer, then the close: the close waits for the kernel to push every record it
// sealed (ktls::CloseDrain), so the client reads the whole body, then close_notify.
TEST_P(KtlsServer, ALargeLastAnswerArrivesWholeBeforeTheClose) {
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  if (!probe.available) GTEST_SKIP() << probe.reason;
  start_ktls();
  auto c = client();
  expect_echoed_whole(*c, 11, /*close=*/true);
  EXPECT_TRUE(c->closed_with_notify()) << "the server's last bytes are its close_notify";
  EXPECT_EQ(counter("tls_ktls_connections"), 1);
  EXPECT_EQ(counter("tls_ktls_drain_timeouts"), 0);
}

// The client's own key update is followed (the receiving side is OpenSSL's); a request for ours
// cannot be met, as the kernel holds our keys: the connection is closed, never corrupted.
TEST_P(KtlsServer, AKeyUpdateRequestClosesAKtlsConnection) {
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  if (!probe.available) GTEST_SKIP() << probe.reason;
  start_ktls();
  auto c = client();
  ASSERT_TRUE(c->send(kGetPlaintext));
  ASSERT_EQ(c->answer(), 200);
  ASSERT_EQ(counter("tls_ktls_connections"), 1);
  ASSERT_EQ(SSL_key_update(c->ssl(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
  ASSERT_TRUE(c->send(kGetPlaintext));
  ASSERT_EQ(c->answer(), 200) << "served on after the client's own key update";
  ASSERT_EQ(SSL_key_update(c->ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  ASSERT_TRUE(c->send(kGetPlaintext));
  EXPECT_EQ(c->answer(), -1) << "closed, not answered under keys the client asked to retire";
  EXPECT_TRUE(wait_until([&] { return counter("tls_record_errors") == 1; }));
  EXPECT_TRUE(expect_pools_returned());
}

INSTANTIATE_TEST_SUITE_P(Backends, KtlsServer, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
