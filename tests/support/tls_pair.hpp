// One server TlsSession and an OpenSSL client joined over memory, driven from the test's thread:
// what the client writes goes to the session by hand (from_client(), receive()), and the
// session's wire() to the client (to_client()), so a test sees and can cut every byte between
// them. A fixture base: open() makes the pair, TearDown frees it.
#pragma once

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer.hpp"
#include "net/tls/tls_context.hpp"
#include "net/tls/tls_session.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {

struct TlsPairOptions {
  int version = 0;              // the only TLS version the client offers; 0: OpenSSL's range
  const char* suite = nullptr;  // the only TLS 1.3 suite, on both sides; nullptr: the defaults
  bool ktls = false;            // the context logs the sending secret (kTLS in force)
  // The client asks for records of at most 2^(8 + n) bytes (RFC 6066 max_fragment_length, an
  // OpenSSL TLSEXT_max_fragment_length_* value); 0: full-size records.
  std::uint8_t max_fragment_length = 0;
};

class TlsPair : public ::testing::Test {
 protected:
  using Step = net::tls::TlsSession::Step;

  // A context from the generated certificate, its session, and a client that verifies it.
  void open(const TlsPairOptions& options = {});
  void TearDown() override;

  // What the client has written, as the server's socket would receive it.
  std::string from_client();
  // The session's ciphertext, taken from its wire() (as a send would) and handed to the client.
  std::string to_client();
  Step receive(const std::string& bytes);
  // The handshake, stepped in turn until the session is established (at most ten rounds);
  // returns how many records the server sent after its own Finished (TLS 1.3's session
  // tickets, under the application keys).
  int handshake();
  // All the plaintext the client can read now.
  std::string client_read();

  static std::string text(const core::BufferChain& chain);
  // The number of whole records at the start of `bytes`.
  static int count_records(std::string_view bytes);

  TlsFiles files_;
  std::shared_ptr<const net::tls::TlsContext> context_;
  core::ChunkPool chunks_{16384, 8};
  std::vector<std::byte> scratch_ = std::vector<std::byte>(net::tls::TlsSession::kRecordBytes);
  std::unique_ptr<net::tls::TlsSession> session_;
  core::BufferChain plain_{chunks_};
  SSL_CTX* client_ctx_ = nullptr;
  SSL* client_ = nullptr;
  BIO* network_ = nullptr;  // the client's end of the BIO pair, as the server's socket
};

}  // namespace rs::test
