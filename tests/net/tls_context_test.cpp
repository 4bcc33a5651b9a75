// The server's TLS context: what it refuses at start-up (with the file or flag named and
// OpenSSL's reason), and what it negotiates, over real handshakes between two SSL objects joined
// by an in-memory BIO pair.
#include "net/tls/tls_context.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>
#include <vector>

#include "net/socket.hpp"
#include "tests/support/openssl_ptr.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {
namespace {

using net::StartupError;
using net::tls::TlsConfig;
using net::tls::TlsContext;

// Whether `text` contains `shape`, where '#' in the shape stands for any digit (std::regex
// trips GCC 12's -Wmaybe-uninitialized in the sanitizer build).
bool has_shape(std::string_view text, std::string_view shape) {
  for (std::size_t at = 0; at + shape.size() <= text.size(); ++at) {
    bool same = true;
    for (std::size_t i = 0; i < shape.size() && same; ++i) {
      const char c = text[at + i];
      same = shape[i] == '#' ? (c >= '0' && c <= '9') : c == shape[i];
    }
    if (same) return true;
  }
  return false;
}

// The message of the StartupError that load() throws; fails the test when it throws none.
std::string refusal(const TlsConfig& config) {
  try {
    TlsContext::load(config);
  } catch (const StartupError& e) {
    return e.what();
  }
  ADD_FAILURE() << "load() accepted cert=" << config.cert_file << " key=" << config.key_file;
  return {};
}

// A client that trusts the generated certificate and checks the name "localhost".
CtxPtr client_ctx(const TlsFiles& files, int max_version = 0) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  EXPECT_EQ(SSL_CTX_load_verify_locations(ctx.get(), files.cert.c_str(), nullptr), 1)
      << net::tls::openssl_reason();
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  return ctx;
}

// An "h2" / "http/1.1" list in ALPN's wire form: a length byte before each name.
std::string alpn_wire(const std::vector<std::string>& names) {
  std::string wire;
  for (const std::string& name : names) {
    wire += static_cast<char>(name.size());
    wire += name;
  }
  return wire;
}

// A client and a server SSL joined by a BIO pair, stepped in turn on this thread.
class Handshake {
 public:
  Handshake(const TlsContext& server_ctx, SSL_CTX* client_ctx,
            const std::vector<std::string>& client_alpn = {})
      : server_(SSL_new(server_ctx.ctx())), client_(SSL_new(client_ctx)) {
    BIO* client_bio = nullptr;
    BIO* server_bio = nullptr;
    EXPECT_EQ(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0), 1);
    SSL_set_bio(client_.get(), client_bio, client_bio);
    SSL_set_bio(server_.get(), server_bio, server_bio);
    SSL_set_connect_state(client_.get());
    SSL_set_accept_state(server_.get());
    SSL_set_tlsext_host_name(client_.get(), "localhost");
    SSL_set1_host(client_.get(), "localhost");
    if (!client_alpn.empty()) {
      const std::string wire = alpn_wire(client_alpn);
      // Returns 0 on success, unlike the rest of OpenSSL.
      EXPECT_EQ(
          SSL_set_alpn_protos(client_.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())),
          0);
    }
  }

  // Steps both sides until each has finished or failed (a side that fails still lets the other
  // read its alert). True when both finished.
  bool run() {
    for (int round = 0; round < 20; ++round) {
      step(client_.get(), client_state_, client_error_);
      step(server_.get(), server_state_, server_error_);
      if (client_state_ != State::kRunning && server_state_ != State::kRunning) break;
    }
    return client_state_ == State::kDone && server_state_ == State::kDone;
  }

  // TLS 1.3 tickets arrive after the handshake: the client reads them (there is no data).
  void client_reads_tickets() {
    char byte;
    EXPECT_LE(SSL_read(client_.get(), &byte, 1), 0);
    EXPECT_EQ(SSL_get_error(client_.get(), -1), SSL_ERROR_WANT_READ) << net::tls::openssl_reason();
  }

  std::string selected_alpn() const {
    const unsigned char* data = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(client_.get(), &data, &len);
    return std::string(reinterpret_cast<const char*>(data), len);
  }

  SSL* client() const { return client_.get(); }
  SSL* server() const { return server_.get(); }
  const std::string& client_error() const { return client_error_; }
  const std::string& server_error() const { return server_error_; }

 private:
  enum class State { kRunning, kDone, kFailed };

  static void step(SSL* ssl, State& state, std::string& error) {
    if (state != State::kRunning) return;
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
      state = State::kDone;
      return;
    }
    const int code = SSL_get_error(ssl, r);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return;
    state = State::kFailed;
    error = net::tls::openssl_reason();
  }

  SslPtr server_;
  SslPtr client_;
  State client_state_ = State::kRunning;
  State server_state_ = State::kRunning;
  std::string client_error_;
  std::string server_error_;
};

class TlsContextTest : public ::testing::Test {
 protected:
  TlsConfig good() const {
    TlsConfig config;
    config.cert_file = files_.cert;
    config.key_file = files_.key;
    return config;
  }

  TlsFiles files_;
};

TEST_F(TlsContextTest, GoodPairLoadsAndIsDescribed) {
  const auto tls = TlsContext::load(good());
  ASSERT_NE(tls->ctx(), nullptr);
  EXPECT_EQ(tls->config().cert_file, files_.cert);
  const std::string& text = tls->describe();
  constexpr std::string_view kShape =
      "TLS 1.2+ (CN=localhost, ECDSA P-256, valid until ####-##-##), tickets rotated every 3600s";
  EXPECT_TRUE(text.size() == kShape.size() && has_shape(text, kShape)) << text;
}

TEST_F(TlsContextTest, DescriptionSaysTls13WhenThatIsTheMinimum) {
  TlsConfig config = good();
  config.min_version = "1.3";
  EXPECT_EQ(TlsContext::load(config)->describe().rfind("TLS 1.3+ (CN=localhost", 0), 0u);
}

TEST_F(TlsContextTest, CertWithoutKeyNamesTheMissingFlag) {
  TlsConfig config = good();
  config.key_file.clear();
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-key"), std::string::npos) << message;
  EXPECT_NE(message.find(files_.cert), std::string::npos) << message;
}

TEST_F(TlsContextTest, KeyWithoutCertNamesTheMissingFlag) {
  TlsConfig config = good();
  config.cert_file.clear();
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-cert"), std::string::npos) << message;
  EXPECT_NE(message.find(files_.key), std::string::npos) << message;
}

TEST_F(TlsContextTest, MissingCertFileIsRefused) {
  TlsConfig config = good();
  config.cert_file = files_.missing;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-cert " + files_.missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST_F(TlsContextTest, CertThatIsNotPemIsRefused) {
  TlsConfig config = good();
  config.cert_file = files_.garbage;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-cert " + files_.garbage), std::string::npos) << message;
  EXPECT_NE(message.find("no start line"), std::string::npos) << message;
  EXPECT_NE(message.find("PEM"), std::string::npos) << message;
}

TEST_F(TlsContextTest, MissingKeyFileIsRefused) {
  TlsConfig config = good();
  config.key_file = files_.missing;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-key " + files_.missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST_F(TlsContextTest, KeyThatIsNotPemIsRefused) {
  TlsConfig config = good();
  config.key_file = files_.garbage;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-key " + files_.garbage), std::string::npos) << message;
  EXPECT_NE(message.find("cannot load the private key"), std::string::npos) << message;
}

TEST_F(TlsContextTest, EncryptedKeyIsRefusedWithoutAskingForAPassPhrase) {
  TlsConfig config = good();
  config.key_file = files_.encrypted_key;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-key " + files_.encrypted_key), std::string::npos) << message;
  EXPECT_NE(message.find("unencrypted"), std::string::npos) << message;
}

TEST_F(TlsContextTest, KeyThatDoesNotMatchTheCertIsRefused) {
  TlsConfig config = good();
  config.key_file = files_.other_key;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-key " + files_.other_key), std::string::npos) << message;
  EXPECT_NE(message.find(files_.cert), std::string::npos) << message;
  EXPECT_NE(message.find("does not match"), std::string::npos) << message;
  EXPECT_NE(message.find("key values mismatch"), std::string::npos) << message;
}

TEST_F(TlsContextTest, ExpiredCertIsRefusedSayingWhen) {
  TlsConfig config = good();
  config.cert_file = files_.expired_cert;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-cert " + files_.expired_cert), std::string::npos) << message;
  EXPECT_TRUE(has_shape(message, "expired on ####-##-## ##:##")) << message;
  EXPECT_NE(message.find("CN=localhost"), std::string::npos) << message;
}

TEST_F(TlsContextTest, NotYetValidCertIsRefusedSayingWhen) {
  TlsConfig config = good();
  config.cert_file = files_.future_cert;
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-cert " + files_.future_cert), std::string::npos) << message;
  EXPECT_TRUE(has_shape(message, "not valid until ####-##-##")) << message;
}

TEST_F(TlsContextTest, UnknownMinVersionIsRefused) {
  for (const char* version : {"1.1", "1.0", "", "TLSv1.2", "1.4"}) {
    TlsConfig config = good();
    config.min_version = version;
    const std::string message = refusal(config);
    EXPECT_NE(message.find("--tls-min-version"), std::string::npos) << message;
  }
}

TEST_F(TlsContextTest, CipherListWithNoKnownCipherIsRefused) {
  TlsConfig config = good();
  config.ciphers = "NOT-A-CIPHER:ALSO-NOT-ONE";
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-ciphers NOT-A-CIPHER"), std::string::npos) << message;
  EXPECT_NE(message.find("no cipher match"), std::string::npos) << message;
}

TEST_F(TlsContextTest, CiphersuiteListWithNoKnownSuiteIsRefused) {
  TlsConfig config = good();
  config.ciphersuites = "TLS_NOT_A_SUITE";
  const std::string message = refusal(config);
  EXPECT_NE(message.find("--tls-ciphersuites TLS_NOT_A_SUITE"), std::string::npos) << message;
  EXPECT_NE(message.find("no cipher match"), std::string::npos) << message;
}

// The TLS 1.2 ciphers (or, with tls13, the TLS 1.3 suites) of an SSL made from the context,
// in preference order.
std::vector<std::string> ciphers_of(const TlsContext& tls, bool tls13) {
  const SslPtr ssl(SSL_new(tls.ctx()));
  std::vector<std::string> names;
  STACK_OF(SSL_CIPHER)* list = SSL_get_ciphers(ssl.get());
  for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(list, i);
    if ((std::string(SSL_CIPHER_get_version(c)) == "TLSv1.3") == tls13)
      names.emplace_back(SSL_CIPHER_get_name(c));
  }
  return names;
}

TEST_F(TlsContextTest, Tls12CiphersDefaultToMozillaIntermediate) {
  const auto tls = TlsContext::load(good());
  const std::vector<std::string> expected = {
      "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
      "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
      "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"};
  EXPECT_EQ(ciphers_of(*tls, false), expected);
  EXPECT_FALSE(ciphers_of(*tls, true).empty());  // OpenSSL's TLS 1.3 default stays
}

TEST_F(TlsContextTest, CipherAndCiphersuiteListsOverrideTheDefaults) {
  TlsConfig config = good();
  config.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
  config.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
  const auto tls = TlsContext::load(config);
  EXPECT_EQ(ciphers_of(*tls, false), std::vector<std::string>{"ECDHE-ECDSA-AES256-GCM-SHA384"});
  EXPECT_EQ(ciphers_of(*tls, true), std::vector<std::string>{"TLS_CHACHA20_POLY1305_SHA256"});
}

TEST_F(TlsContextTest, ContextSetsTheHardeningOptionsAndNoSessionCache) {
  const auto tls = TlsContext::load(good());
  const SslPtr ssl(SSL_new(tls->ctx()));
  const std::uint64_t options = SSL_get_options(ssl.get());
  EXPECT_NE(options & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_NE(options & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_NE(options & SSL_OP_CIPHER_SERVER_PREFERENCE, 0u);
  EXPECT_EQ(options & SSL_OP_NO_TICKET, 0u);         // resumption rides on tickets
  EXPECT_EQ(SSL_CTX_get_timeout(tls->ctx()), 3600);  // a ticket lives one rotation period
  EXPECT_NE(SSL_get_mode(ssl.get()) & SSL_MODE_RELEASE_BUFFERS, 0u);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(tls->ctx()), SSL_SESS_CACHE_OFF);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(tls->ctx()), TLS1_2_VERSION);
}

TEST_F(TlsContextTest, HandshakeNegotiatesHttp11WhenOffered) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_);
  Handshake hs(*tls, client.get(), {"h2", "http/1.1"});
  ASSERT_TRUE(hs.run()) << hs.client_error() << hs.server_error();
  EXPECT_EQ(hs.selected_alpn(), "http/1.1");
  EXPECT_EQ(SSL_version(hs.client()), TLS1_3_VERSION);
  // The generated certificate verifies for "localhost" (the client checks the name).
  EXPECT_EQ(SSL_get_verify_result(hs.client()), X509_V_OK);
}

TEST_F(TlsContextTest, HandshakeWithoutAlpnIsServed) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_);
  Handshake hs(*tls, client.get());
  ASSERT_TRUE(hs.run()) << hs.client_error() << hs.server_error();
  EXPECT_EQ(hs.selected_alpn(), "");
}

TEST_F(TlsContextTest, ClientOfferingOnlyH2GetsNoApplicationProtocol) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_);
  Handshake hs(*tls, client.get(), {"h2"});
  EXPECT_FALSE(hs.run());
  // The server refuses; the client reads the fatal no_application_protocol alert (RFC 7301).
  EXPECT_NE(hs.server_error().find("no application protocol"), std::string::npos)
      << hs.server_error();
  EXPECT_NE(hs.client_error().find("no application protocol"), std::string::npos)
      << hs.client_error();
}

TEST_F(TlsContextTest, Tls12HandshakeUsesAnIntermediateCipher) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_, TLS1_2_VERSION);
  Handshake hs(*tls, client.get(), {"http/1.1"});
  ASSERT_TRUE(hs.run()) << hs.client_error() << hs.server_error();
  EXPECT_EQ(SSL_version(hs.server()), TLS1_2_VERSION);
  EXPECT_STREQ(SSL_get_cipher_name(hs.server()), "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(hs.selected_alpn(), "http/1.1");
}

TEST_F(TlsContextTest, MinVersion13RefusesATls12Client) {
  TlsConfig config = good();
  config.min_version = "1.3";
  const auto tls = TlsContext::load(config);
  const CtxPtr client = client_ctx(files_, TLS1_2_VERSION);
  Handshake hs(*tls, client.get());
  EXPECT_FALSE(hs.run());
  EXPECT_NE(hs.server_error().find("protocol"), std::string::npos) << hs.server_error();
}

TEST_F(TlsContextTest, Tls12RenegotiationIsRefused) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_, TLS1_2_VERSION);
  Handshake hs(*tls, client.get());
  ASSERT_TRUE(hs.run()) << hs.client_error() << hs.server_error();
  ASSERT_EQ(SSL_renegotiate(hs.client()), 1);
  // The client sends its new ClientHello; the server answers no_renegotiation and carries on.
  EXPECT_LE(SSL_do_handshake(hs.client()), 0);
  char byte;
  EXPECT_LE(SSL_read(hs.server(), &byte, 1), 0);
  EXPECT_EQ(SSL_get_error(hs.server(), -1), SSL_ERROR_WANT_READ) << net::tls::openssl_reason();
  EXPECT_LE(SSL_do_handshake(hs.client()), 0);
  EXPECT_EQ(SSL_get_error(hs.client(), -1), SSL_ERROR_SSL);
  EXPECT_NE(net::tls::openssl_reason().find("no renegotiation"), std::string::npos);
}

// A second handshake presenting the first one's ticket resumes, with no server-side cache.
void expect_resumption(const TlsContext& tls, SSL_CTX* client, bool tls13) {
  SessionPtr session;
  {
    Handshake first(tls, client);
    ASSERT_TRUE(first.run()) << first.client_error() << first.server_error();
    EXPECT_EQ(SSL_session_reused(first.server()), 0);
    if (tls13) first.client_reads_tickets();
    session.reset(SSL_get1_session(first.client()));
    // A clean close: an SSL freed without one marks its session not resumable.
    SSL_shutdown(first.client());
  }
  ASSERT_TRUE(session);
  ASSERT_EQ(SSL_SESSION_is_resumable(session.get()), 1);
  EXPECT_TRUE(SSL_SESSION_has_ticket(session.get()));
  Handshake second(tls, client);
  ASSERT_EQ(SSL_set_session(second.client(), session.get()), 1);
  ASSERT_TRUE(second.run()) << second.client_error() << second.server_error();
  EXPECT_EQ(SSL_session_reused(second.server()), 1);
}

TEST_F(TlsContextTest, Tls13SessionResumesWithATicket) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_);
  expect_resumption(*tls, client.get(), true);
}

TEST_F(TlsContextTest, Tls12SessionResumesWithATicket) {
  const auto tls = TlsContext::load(good());
  const CtxPtr client = client_ctx(files_, TLS1_2_VERSION);
  expect_resumption(*tls, client.get(), false);
}

}  // namespace
}  // namespace rs::test
