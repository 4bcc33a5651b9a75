// One TlsSession against an OpenSSL client over memory, byte by byte where it matters: records
// split across receives, data and close_notify in one receive, a stale entry in the thread's
// error queue, and the records seal() makes.
#include "net/tls/tls_session.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include "tests/support/tls_pair.hpp"

namespace rs::net::tls {
namespace {

class TlsSessionTest : public test::TlsPair {
 protected:
  // A client of OpenSSL's defaults, the session's context without kTLS.
  void SetUp() override { open(); }
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
