// The server fixture over TLS: an HTTP server in process, on every backend, whose context is made
// from freshly generated certificate files (tweaked per test), and TlsClients that trust it.
#pragma once

#include <openssl/err.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "net/tls/tls_context.hpp"
#include "tests/support/server_fixture.hpp"
#include "tests/support/tls_client.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {

class HttpsFixture : public ServerFixture {
 protected:
  using TlsTweak = std::function<void(net::tls::TlsConfig&)>;

  // An HTTPS server taking bodies of up to 4 MiB (the tests echo 3 MB through TLS).
  void start_https(const TlsTweak& tls_tweak = {}, const ServerTweak& server_tweak = {}) {
    net::tls::TlsConfig config;
    config.cert_file = files_.cert;
    config.key_file = files_.key;
    if (tls_tweak) tls_tweak(config);
    auto context = net::tls::TlsContext::load(config);
    start([](http::HttpConfig& c) { c.limits.max_body_bytes = 4 << 20; },
          [&](net::ServerConfig& s) {
            s.tls = context;
            if (server_tweak) server_tweak(s);
          });
  }
  // A client of the server's port, its handshake made; the arguments are TlsClient's.
  std::unique_ptr<TlsClient> client(int version = 0, const char* suite = nullptr) {
    auto c = std::make_unique<TlsClient>(connect(), files_.cert, version, suite);
    EXPECT_TRUE(c->handshake()) << ERR_error_string(ERR_get_error(), nullptr);
    return c;
  }

  // POST /echo of a 3 MB body whose pattern shows any byte out of place (`seed` varies it), sent
  // in 64 KiB writes, with Connection: close when `close`; checks it came back whole.
  static void expect_echoed_whole(TlsClient& c, std::size_t seed, bool close = false) {
    std::string payload(3 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<char>('a' + (i * seed + i / 4096) % 26);
    ASSERT_TRUE(c.send(std::string("POST /echo HTTP/1.1\r\nHost: t\r\n") +
                       (close ? "Connection: close\r\n" : "") +
                       "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n"));
    for (std::size_t at = 0; at < payload.size(); at += 65536)
      ASSERT_TRUE(c.send(std::string_view(payload).substr(at, 65536)));
    std::string body;
    ASSERT_EQ(c.answer(&body), 200);
    EXPECT_TRUE(body == payload) << "echoed " << body.size() << " bytes";
  }

  TlsFiles files_;
};

}  // namespace rs::test
