#include "tests/support/tls_pair.hpp"

#include <span>

namespace rs::test {
namespace {

// Everything `read` (BIO_read or SSL_read) gives from `from` until it has no more.
template <typename From>
std::string read_all(From* from, int (*read)(From*, void*, int)) {
  std::string out;
  char buffer[16384];
  for (int n; (n = read(from, buffer, sizeof(buffer))) > 0;)
    out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

}  // namespace

void TlsPair::open(const TlsPairOptions& options) {
  net::tls::TlsConfig config;
  config.cert_file = files_.cert;
  config.key_file = files_.key;
  config.ktls = options.ktls;
  if (options.suite != nullptr) config.ciphersuites = options.suite;
  context_ = net::tls::TlsContext::load(config);
  session_ = std::make_unique<net::tls::TlsSession>(context_->ctx(), chunks_, scratch_.data());
  ASSERT_TRUE(session_->ok());
  client_ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(client_ctx_, files_.cert.c_str(), nullptr);
  SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_PEER, nullptr);
  if (options.version != 0) {
    SSL_CTX_set_min_proto_version(client_ctx_, options.version);
    SSL_CTX_set_max_proto_version(client_ctx_, options.version);
  }
  if (options.suite != nullptr) SSL_CTX_set_ciphersuites(client_ctx_, options.suite);
  if (options.max_fragment_length != 0) {
    SSL_CTX_set_tlsext_max_fragment_length(client_ctx_, options.max_fragment_length);
  }
  client_ = SSL_new(client_ctx_);
  BIO* inner = nullptr;
  BIO_new_bio_pair(&inner, 1 << 20, &network_, 1 << 20);
  SSL_set_bio(client_, inner, inner);
  SSL_set_tlsext_host_name(client_, "localhost");
  SSL_set_connect_state(client_);
}

void TlsPair::TearDown() {
  session_.reset();
  SSL_free(client_);
  BIO_free(network_);
  SSL_CTX_free(client_ctx_);
}

std::string TlsPair::from_client() {
  return read_all(network_, BIO_read);
}

std::string TlsPair::to_client() {
  std::string bytes = text(session_->wire());
  session_->wire().consume(bytes.size());
  if (!bytes.empty()) BIO_write(network_, bytes.data(), static_cast<int>(bytes.size()));
  return bytes;
}

TlsPair::Step TlsPair::receive(const std::string& bytes) {
  return session_->receive(std::as_bytes(std::span(bytes.data(), bytes.size())), plain_);
}

int TlsPair::handshake() {
  int after_finished = 0;
  for (int i = 0; i < 10 && !session_->established(); ++i) {
    SSL_do_handshake(client_);
    const Step step = receive(from_client());
    EXPECT_TRUE(step == Step::kHandshaking || step == Step::kOpen) << session_->failure();
    if (session_->established()) after_finished = count_records(text(session_->wire()));
    to_client();
  }
  EXPECT_EQ(SSL_do_handshake(client_), 1);
  to_client();
  EXPECT_TRUE(session_->established());
  return after_finished;
}

std::string TlsPair::client_read() {
  return read_all(client_, SSL_read);
}

std::string TlsPair::text(const core::BufferChain& chain) {
  std::string out(chain.size(), '\0');
  chain.copy_out(0, std::as_writable_bytes(std::span(out)));
  return out;
}

int TlsPair::count_records(std::string_view bytes) {
  // Each record: a 5-byte header whose last two bytes are the length of what follows.
  const auto record_length = [](std::string_view rest) -> std::size_t {
    if (rest.size() < 5) return 0;
    const std::size_t n =
        5 + ((static_cast<unsigned char>(rest[3]) << 8) | static_cast<unsigned char>(rest[4]));
    return n <= rest.size() ? n : 0;
  };
  int n = 0;
  for (std::size_t len; (len = record_length(bytes)) != 0; bytes.remove_prefix(len))
    ++n;
  return n;
}

}  // namespace rs::test
