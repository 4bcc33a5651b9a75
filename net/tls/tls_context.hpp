// The server's TLS settings and the OpenSSL context made from them: certificate chain and key
// (checked at start-up: readable, matching, in date), protocol versions, ciphers, ALPN
// (http/1.1 only), no renegotiation, session tickets (sealed with keys rotated on a timer). Made
// once, before the loops start, and shared (read-only) by every loop; each connection makes its
// SSL from ctx(). A reload makes a new one, which takes over the old one's ticket keys.
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
  std::string groups = "X25519:P-256:P-384";   // key exchange groups offered, in order
  std::uint64_t handshake_timeout_ms = 10000;  // a handshake not done by then is closed
  // Seconds between ticket key rotations, and a ticket's lifetime; 0: no session tickets.
  std::uint64_t ticket_rotate_s = 3600;
  // kTLS in force (net/tls/ktls.hpp): the caller found the kernel's TLS (ktls::probe_kernel) and
  // --tls-ktls allows it. TLS 1.3 connections then give their sending keys to the kernel.
  bool ktls = false;
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// The longest --tls-ticket-rotate-s: 7 days, the longest a TLS 1.3 ticket may live (RFC 8446
// §4.6.1).
constexpr std::uint64_t kMaxTicketRotateSeconds = std::uint64_t{7} * 24 * 3600;

class TicketKeys;

// OpenSSL's reasons for the last failure on this thread, oldest first, joined with "; "; the
// error queue is left empty.
std::string openssl_reason();

class TlsContext {
 public:
  // Reads and checks the files and makes the context. Throws net::StartupError with a message
  // that names the file (or flag), OpenSSL's reason, and what to do. ticket_keys: the ring of
  // the context this one replaces (a reload), so that tickets it issued still resume; null, or
  // one whose period is not config.ticket_rotate_s: a new ring. Unused when tickets are off.
  static std::shared_ptr<const TlsContext> load(const TlsConfig& config,
                                                std::shared_ptr<TicketKeys> ticket_keys = nullptr);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  const TlsConfig& config() const { return config_; }
  // The keys this context's tickets are sealed with; null when tickets are off.
  const std::shared_ptr<TicketKeys>& ticket_keys() const { return ticket_keys_; }
  // For the start-up line, e.g. "TLS 1.2+ (CN=localhost, ECDSA P-256, valid until 2027-12-04),
  // tickets rotated every 3600s".
  const std::string& describe() const { return description_; }

 private:
  TlsContext(SSL_CTX* ctx, TlsConfig config, std::shared_ptr<TicketKeys> ticket_keys,
             std::string description);

  SSL_CTX* ctx_;
  TlsConfig config_;
  std::shared_ptr<TicketKeys> ticket_keys_;
  std::string description_;
};

}  // namespace rs::net::tls
