// One TlsSession against an OpenSSL client over memory, byte by byte where it matters: records
// split across receives, data and close_notify in one receive, a stale entry in the thread's
// error queue, and the records seal() makes.
#include "net/tls/tls_session.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "net/tls/tls_context.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::net::tls {
namespace {

using Step = TlsSession::Step;

std::string text(const core::BufferChain& chain) {
  std::string out(chain.size(), '\0');
  chain.copy_out(0, std::as_writable_bytes(std::span(out)));
  return out;
}

class TlsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TlsConfig config;
    config.cert_file = files_.cert;
    config.key_file = files_.key;
    context_ = TlsContext::load(config);
    session_ = std::make_unique<TlsSession>(context_->ctx(), chunks_, scratch_.data());
    ASSERT_TRUE(session_->ok());
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(client_ctx_, files_.cert.c_str(), nullptr);
    SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_PEER, nullptr);
    client_ = SSL_new(client_ctx_);
    BIO* inner = nullptr;
    BIO_new_bio_pair(&inner, 1 << 20, &network_, 1 << 20);
    SSL_set_bio(client_, inner, inner);
    SSL_set_tlsext_host_name(client_, "localhost");
    SSL_set_connect_state(client_);
  }
  void TearDown() override {
    session_.reset();
    SSL_free(client_);
    BIO_free(network_);
    SSL_CTX_free(client_ctx_);
  }

  // What the client has written, as the server's socket would receive it.
  std::string from_client() {
    std::string out;
    char buffer[4096];
    for (int n; (n = BIO_read(network_, buffer, sizeof(buffer))) > 0;)
      out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
  // The session's ciphertext, handed to the client.
  void to_client() {
    const std::string bytes = text(session_->wire());
    session_->wire().consume(bytes.size());
    if (!bytes.empty()) BIO_write(network_, bytes.data(), static_cast<int>(bytes.size()));
  }
  Step receive(const std::string& bytes) {
    return session_->receive(std::as_bytes(std::span(bytes.data(), bytes.size())), plain_);
  }
  void handshake() {
    for (int i = 0; i < 10 && !session_->established(); ++i) {
      SSL_do_handshake(client_);
      const Step step = receive(from_client());
      ASSERT_TRUE(step == Step::kHandshaking || step == Step::kOpen) << session_->failure();
      to_client();
    }
    ASSERT_EQ(SSL_do_handshake(client_), 1);
    to_client();
    ASSERT_TRUE(session_->established());
  }
  std::string client_read() {
    std::string out;
    char buffer[16384];
    for (int n; (n = SSL_read(client_, buffer, sizeof(buffer))) > 0;)
      out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }

  test::TlsFiles files_;
  std::shared_ptr<const TlsContext> context_;
  core::ChunkPool chunks_{16384, 8};
  std::vector<std::byte> scratch_ = std::vector<std::byte>(TlsSession::kRecordBytes);
  std::unique_ptr<TlsSession> session_;
  core::BufferChain plain_{chunks_};
  SSL_CTX* client_ctx_ = nullptr;
  SSL* client_ = nullptr;
  BIO* network_ = nullptr;
};

TEST_F(TlsSessionTest, RecordsSplitIntoSingleBytesAreDecryptedWhole) {
  handshake();
  const std::string request = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(SSL_write(client_, request.data(), static_cast<int>(request.size())),
            static_cast<int>(request.size()));
  const std::string wire = from_client();
  for (char c : wire)
    ASSERT_EQ(receive(std::string(1, c)), Step::kOpen);
  EXPECT_EQ(text(plain_), request);
}

TEST_F(TlsSessionTest, DataAndCloseNotifyInOneReceiveGiveTheDataThenTheEnd) {
  handshake();
  ASSERT_EQ(SSL_write(client_, "last words", 10), 10);
  SSL_shutdown(client_);
  EXPECT_EQ(receive(from_client()), Step::kPeerClosed);
  EXPECT_EQ(text(plain_), "last words");
}

// Another connection of the loop (or any OpenSSL call on its thread) may leave an entry in the
// thread's error queue: a healthy record must still be read.
TEST_F(TlsSessionTest, AStaleErrorOnTheThreadDoesNotFailAHealthyRecord) {
  handshake();
  ASSERT_EQ(SSL_write(client_, "hello", 5), 5);
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
  EXPECT_EQ(receive(from_client()), Step::kOpen) << session_->failure();
  EXPECT_EQ(text(plain_), "hello");
  ERR_clear_error();
}

// seal() makes full records from plaintext spread over chunks: 40,000 bytes are three records,
// and the client reads them back whole.
TEST_F(TlsSessionTest, SealMakesFullSizeRecordsFromScatteredPlaintext) {
  handshake();
  core::BufferChain out(chunks_);
  std::string payload;
  for (int i = 0; i < 400; ++i) {
    const std::string piece(100, static_cast<char>('a' + i % 26));
    out.append(piece);
    payload += piece;
  }
  ASSERT_TRUE(session_->seal(out));
  EXPECT_TRUE(out.empty());
  // Count the application-data records in the ciphertext (type 23, then the length).
  const std::string wire = text(session_->wire());
  int records = 0;
  for (std::size_t at = 0; at + 5 <= wire.size();) {
    if (wire[at] == 23) ++records;
    at += 5 + ((static_cast<unsigned char>(wire[at + 3]) << 8) |
               static_cast<unsigned char>(wire[at + 4]));
  }
  EXPECT_EQ(records, 3);
  to_client();
  EXPECT_EQ(client_read(), payload);
}

TEST_F(TlsSessionTest, APlainHttpRequestIsToldApart) {
  EXPECT_EQ(receive("GET / HTTP/1.1\r\n"), Step::kPlainHttp);
  EXPECT_TRUE(session_->failed());
}

}  // namespace
}  // namespace rs::net::tls
