// libFuzzer target for the TLS glue (net/tls/tls_session.cpp): a server session fed ciphertext
// in pieces whose sizes the input chooses. The first byte picks what is fed:
//   even: the input itself (garbage, or records the fuzzer has learnt to shape);
//   odd:  a genuine ClientHello (recorded once from an OpenSSL client), cut at the input's
//         boundaries, with bytes of the input XORed into it, then the rest of the input.
// Whatever comes back must be well formed for the glue: a failed session refuses to seal, a
// plain-HTTP guess happens only on the first bytes, and nothing the session holds outlives it
// (ASan, UBSan and LeakSanitizer watch).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.hpp"
#include "net/tls/tls_context.hpp"
#include "net/tls/tls_session.hpp"
#include "tests/support/tls_files.hpp"

namespace {

using rs::net::tls::TlsSession;

struct World {
  World() {
    rs::net::tls::TlsConfig config;
    config.cert_file = files.cert;
    config.key_file = files.key;
    context = rs::net::tls::TlsContext::load(config);
    client_hello = record_client_hello();
  }

  // The first flight of an OpenSSL client (TLS 1.3 and 1.2 offered, ALPN http/1.1).
  static std::string record_client_hello() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    BIO* inner = nullptr;
    BIO* network = nullptr;
    BIO_new_bio_pair(&inner, 1 << 16, &network, 1 << 16);
    SSL_set_bio(ssl, inner, inner);
    SSL_set_tlsext_host_name(ssl, "localhost");
    const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(ssl, alpn, sizeof(alpn));
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl);
    std::string hello;
    char buffer[4096];
    for (int n; (n = BIO_read(network, buffer, sizeof(buffer))) > 0;)
      hello.append(buffer, static_cast<std::size_t>(n));
    SSL_free(ssl);
    BIO_free(network);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return hello;
  }

  rs::test::TlsFiles files;
  std::shared_ptr<const rs::net::tls::TlsContext> context;
  std::string client_hello;
  rs::core::ChunkPool chunks{16384, 8};
  std::vector<std::byte> scratch = std::vector<std::byte>(TlsSession::kRecordBytes);
};

World& world() {
  static World* w = new World();  // for the whole run
  return *w;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  World& w = world();
  std::string feed;
  std::size_t at = 1;
  if ((data[0] & 1) != 0) {
    feed = w.client_hello;
    // XOR a few bytes of the hello with the input (position, value pairs).
    const std::size_t edits = data[0] >> 5;
    for (std::size_t i = 0; i < edits && at + 2 <= size; ++i, at += 2) {
      feed[(data[at] * 7u) % feed.size()] ^= static_cast<char>(data[at + 1]);
    }
  }
  feed.append(reinterpret_cast<const char*>(data) + at, size - at);

  TlsSession session(w.context->ctx(), w.chunks, w.scratch.data());
  check(session.ok());
  rs::core::BufferChain plain(w.chunks);
  // Piece sizes from the input's bytes: 1 to 256, cycling.
  std::size_t offset = 0;
  std::size_t piece = 0;
  bool stopped = false;
  while (offset < feed.size() && !stopped) {
    const std::size_t n = std::min<std::size_t>(feed.size() - offset, 1 + data[piece++ % size]);
    const auto step = session.receive(std::as_bytes(std::span(feed.data() + offset, n)), plain);
    offset += n;
    switch (step) {
      case TlsSession::Step::kPlainHttp:
        check(offset == n);  // only ever the first bytes
        stopped = true;
        break;
      case TlsSession::Step::kFailed:
        check(session.failed());
        stopped = true;
        break;
      case TlsSession::Step::kPeerClosed:
        stopped = true;
        break;
      case TlsSession::Step::kHandshaking:
      case TlsSession::Step::kOpen:
        break;
    }
    session.wire().clear();  // as if sent
  }
  // Plaintext can be sealed only on an established session that has not failed.
  rs::core::BufferChain out(w.chunks);
  out.append(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  const bool sealed = session.seal(out);
  check(sealed == (session.established() && !session.failed()));
  session.close_notify();
  return 0;
}
