// kTLS: the kernel seals a connection's records (Documentation/networking/tls.rst, linux/tls.h).
// Once a TLS 1.3 handshake is done and OpenSSL's last records (the session tickets) have left,
// the connection gives the kernel its sending keys (setsockopt TCP_ULP "tls", then SOL_TLS
// TLS_TX) and from then on sends its output as plaintext through the same ordered send; the
// kernel makes the records. Receiving stays with OpenSSL.
//
// OpenSSL never touches the socket here (a BIO of our own, net/tls/tls_session.cpp), so its own
// kTLS cannot be used: the keys are found here instead. OpenSSL 3.0 tells the server's
// application traffic secret only to a key log callback (SERVER_TRAFFIC_SECRET_0), set on the
// context only when kTLS is in force; the key and IV follow from it (RFC 8446 §7.3), and the
// record sequence is the count of records OpenSSL sealed under them (the session counts them).
//
// TLS 1.2 stays in user space: OpenSSL chooses AES-GCM's explicit nonces itself (from a random
// start inside its cipher state, which it does not export), so the kernel's nonces could not be
// shown never to repeat one of OpenSSL's under the same key.
#pragma once

#include <linux/tls.h>

#include <cstdint>
#include <span>
#include <string>

using SSL_CTX = struct ssl_ctx_st;

namespace rs::net::tls::ktls {

// Whether this kernel can seal TLS 1.3 records (for the start-up line), and why not.
struct Probe {
  bool available = false;
  std::string reason;  // when not available, e.g. "kernel has no TLS ULP: setsockopt TCP_ULP: ..."
};

// Tries the kernel's TLS on a connected TCP loopback pair (a socketpair cannot take a ULP):
// TCP_ULP "tls", then TLS 1.3 AES-128-GCM keys for sending. A few system calls, at start-up.
Probe probe_kernel();

// The sending keys as the kernel takes them (TLS_TX), for one of the TLS 1.3 suites:
// TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256. Wiped when
// destroyed.
struct TxKeys {
  TxKeys() : info{} {}
  ~TxKeys();
  TxKeys(const TxKeys&) = delete;
  TxKeys& operator=(const TxKeys&) = delete;

  union {
    tls_crypto_info info;  // version and cipher_type: which member below is in use
    tls12_crypto_info_aes_gcm_128 aes_gcm_128;
    tls12_crypto_info_aes_gcm_256 aes_gcm_256;
    tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
  };
  unsigned size = 0;  // bytes of the member in use: what setsockopt is given
};

// The largest traffic secret (SHA-384's).
inline constexpr std::size_t kMaxSecretBytes = 48;

// The kernel's keys from the server's application traffic secret of a TLS 1.3 connection
// (HKDF-Expand-Label "key" and "iv", RFC 8446 §7.3), `records` records already sealed under
// them. suite: the IANA number (SSL_CIPHER_get_protocol_id). False for any other suite, or a
// secret not of the suite's hash length.
bool derive_tx_keys(std::uint16_t suite, std::span<const std::uint8_t> secret,
                    std::uint64_t records, TxKeys& keys);

// What install_tx() found when the kernel refused.
struct InstallError {
  const char* step = "";  // "TCP_ULP" or "TLS_TX"
  int error = 0;          // errno
};

// Gives the socket's sending side to the kernel: TCP_ULP "tls", then TLS_TX. False when the
// kernel refused, saying where. A socket that took the ULP but not the keys still sends as plain
// TCP (the ULP passes through until keys are set), so the connection can seal in user space.
bool install_tx(int fd, const TxKeys& keys, InstallError& failed);

// Sends close_notify on a socket whose sending side the kernel holds: an alert record, asked for
// with a TLS_SET_RECORD_TYPE control message (tls.rst, "Send TLS control messages"). Does not
// block: false when the kernel did not take it (a full socket buffer, a peer gone).
bool send_close_notify(int fd);

// Makes ctx tell each TLS 1.3 server session its sending secret as the handshake derives it
// (TlsSession::keep_tx_secret). Only for a context whose sessions use kTLS: OpenSSL formats every
// secret of every handshake into a line for the callback.
void log_tx_secrets(SSL_CTX* ctx);

}  // namespace rs::net::tls::ktls
