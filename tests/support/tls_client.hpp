// A blocking OpenSSL client on one connected loopback socket, for the tests that talk HTTPS to a
// server. It verifies the server's certificate for "localhost" against the file it is given;
// receives are bounded, so a lost answer fails the test instead of hanging it. It counts the
// records the server sends, so a test can tell how its answers were sealed.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "tests/support/openssl_ptr.hpp"

namespace rs::test {

class TlsClient {
 public:
  // fd: a connected socket, which stays the caller's to close. version: the only TLS version
  // offered (0: OpenSSL's range); suite: the only TLS 1.3 suite (nullptr: OpenSSL's).
  TlsClient(int fd, const std::string& ca_file, int version = 0, const char* suite = nullptr);

  bool handshake() { return SSL_connect(ssl_.get()) == 1; }
  bool send(std::string_view text);
  // Appends what one read brings (false if the stream ended or failed instead).
  bool read_some(std::string& out);
  // Reads until `n` bytes of plaintext are in `out` (false if the stream ended or failed first).
  bool read(std::size_t n, std::string& out);
  // One answer with a Content-Length body: its status (-1 when the stream ended or failed
  // first), its body in `body`.
  int answer(std::string* body = nullptr);
  // The server ended the stream with close_notify (not only a FIN or a reset).
  bool closed_with_notify();
  void close_notify() { SSL_shutdown(ssl_.get()); }
  // The records received so far, of every type (handshake, tickets and alerts too).
  int records() const { return records_; }
  SSL* ssl() { return ssl_.get(); }

 private:
  static void on_message(int write_p, int version, int content_type, const void* buf,
                         std::size_t len, SSL* ssl, void* arg);

  CtxPtr ctx_;
  SslPtr ssl_;
  std::string pending_;  // read past the last answer
  int records_ = 0;
};

}  // namespace rs::test
