// The server's TLS settings and the OpenSSL context made from them: certificate chain and key
// (checked at start-up: readable, matching, in date), protocol versions, ciphers, ALPN
// (http/1.1 only), no renegotiation, session tickets. Made once, before the loops start, and
// shared (read-only) by every loop; each connection makes its SSL from ctx().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

using SSL_CTX = struct ssl_ctx_st;

namespace rs::net::tls {

struct TlsConfig {
  std::string cert_file;                       // PEM, the full chain (leaf first); empty: no TLS
  std::string key_file;                        // PEM, the leaf's private key
  std::string min_version = "1.2";             // "1.2" or "1.3"
  std::string ciphers;                         // TLS 1.2 cipher list (OpenSSL syntax); "" default
  std::string ciphersuites;                    // TLS 1.3 suites; "": OpenSSL's default
  std::uint64_t handshake_timeout_ms = 10000;  // a handshake not done by then is closed
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// OpenSSL's reasons for the last failure on this thread, oldest first, joined with "; "; the
// error queue is left empty.
std::string openssl_reason();

class TlsContext {
 public:
  // Reads and checks the files and makes the context. Throws net::StartupError with a message
  // that names the file (or flag), OpenSSL's reason, and what to do.
  static std::shared_ptr<const TlsContext> load(const TlsConfig& config);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  const TlsConfig& config() const { return config_; }
  // For the start-up line, e.g. "TLS 1.2+ (CN=localhost, ECDSA P-256, until 2027-12-04)".
  const std::string& describe() const { return description_; }

 private:
  TlsContext(SSL_CTX* ctx, TlsConfig config, std::string description);

  SSL_CTX* ctx_;
  TlsConfig config_;
  std::string description_;
};

}  // namespace rs::net::tls
