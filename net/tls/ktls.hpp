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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

using SSL_CTX = struct ssl_ctx_st;

namespace rs::net::tls::ktls {

// Whether this kernel can seal TLS 1.3 records (for the start-up line), and why not.
struct Probe {
  bool available = false;
  std::string reason;  // when not available, e.g. "kernel has no TLS ULP: setsockopt TCP_ULP: ..."
};

// Tries the kernel's TLS on a connected TCP loopback pair (a socketpair cannot take a ULP):
// TCP_ULP "tls", then TLS 1.3 AES-128-GCM keys for sending derived as a connection's are, then
// a record and a close_notify sealed by the kernel and opened by the peer (open_record): kTLS
// goes on only where the kernel seals what this code expects. A few system calls, at start-up.
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

// TLS record content types (RFC 8446 §5.1).
inline constexpr std::uint8_t kAlert = 21;
inline constexpr std::uint8_t kApplicationData = 23;

// A TLS 1.3 record opened: its content and its inner content type.
struct OpenedRecord {
  std::string content;
  std::uint8_t type = 0;
};

// Opens one TLS 1.3 record (header included) as the peer would, sealed with `keys`, `later`
// records after their first sequence number (RFC 8446 §5.2-5.3: nonce = IV XOR sequence, the
// header as additional data); nullopt when it does not open. For the start-up self-test and the
// tests.
std::optional<OpenedRecord> open_record(const TxKeys& keys, std::string_view record,
                                        std::uint64_t later = 0);

// What install_tx() found when the kernel refused.
struct InstallError {
  const char* step = "";  // "TCP_ULP" or "TLS_TX"
  int error = 0;          // errno
};

// Gives the socket's sending side to the kernel: TCP_ULP "tls", then TLS_TX. False when the
// kernel refused, saying where. A socket that took the ULP but not the keys still sends as plain
// TCP (the ULP passes through until keys are set), so the connection can seal in user space.
bool install_tx(int fd, const TxKeys& keys, InstallError& failed);

// What sending close_notify did.
enum class CloseNotify : std::uint8_t {
  kSent,        // the kernel sealed it (it may still wait in the kernel for room in TCP)
  kBufferFull,  // the socket's send buffer is full: try again once the peer has read
  kFailed,      // the peer is gone (reset, closed): nothing more can reach it
};

// Sends close_notify on a socket whose sending side the kernel holds: an alert record, asked for
// with a TLS_SET_RECORD_TYPE control message (tls.rst, "Send TLS control messages"). Does not
// block.
CloseNotify send_close_notify(int fd);

// Bytes TCP still holds for the peer, unsent or unacknowledged (SIOCOUTQ); 0 when the socket
// cannot say (it is no longer connected).
std::size_t unsent_bytes(int fd);

// The close of a connection whose output the kernel seals. A send completes once the kernel has
// sealed its bytes, but when TCP's send buffer is full the last records wait in the kernel's TLS
// layer and leave as the peer reads, pushed by a work item that runs when TCP has room
// (net/tls/tls_sw.c: tls_sw_sendmsg returns with records queued, tls_sw_write_space schedules
// their push). A shutdown's FIN would go before them, and a close pushes once more and frees what
// still does not fit (tls_sw_release_resources_tx). So the close waits until TCP holds nothing
// for the peer (unsent_bytes() 0: all sent and acknowledged, so it has all its room), then has
// the kernel seal close_notify: that send pushes every record still waiting, then the alert,
// at once into the empty queue (tls_push_record, tls_tx_records). A full buffer there is tried
// again later; a peer that is gone ends it. The connection checks at once, then on a timer, 1 ms
// doubling to 64 ms, for at most a bound; past it the close goes ahead (the peer that stopped
// reading loses the end, as on a plain connection that outstays its linger). The wait costs the
// peer's round trip for the last bytes' acknowledgement.
//
// Nothing may send on a kTLS socket with MSG_MORE: an open record would be pushed first by the
// close_notify's send, and kernels before the fix "tls: always set record_type in
// tls_process_cmsg" (2025) could then seal the alert as application data.
class CloseDrain {
 public:
  enum class Next : std::uint8_t {
    kClose,        // drained, close_notify sealed (or the peer is gone): the close goes ahead
    kWait,         // check again in wait_ms()
    kBoundPassed,  // still not drained at the bound: the close goes ahead anyway
  };

  // One check at now_ms; the first one starts the bound. close_notify: whether to send it (not
  // on a session that failed: an alert under keys the peer may have asked us to retire, or after
  // its bad record, would read as an orderly end). Socket: send_close_notify() -> CloseNotify
  // and unsent_bytes() -> std::size_t for the connection's socket (KernelSocket, or a test's).
  template <class Socket>
  Next check(Socket& socket, std::uint64_t now_ms, std::uint64_t bound_ms, bool close_notify) {
    if (until_ms_ == 0) until_ms_ = now_ms + bound_ms + 1;  // never 0: started
    if (socket.unsent_bytes() == 0 &&
        (!close_notify || socket.send_close_notify() != CloseNotify::kBufferFull)) {
      return Next::kClose;
    }
    if (now_ms >= until_ms_ - 1) return Next::kBoundPassed;
    wait_ms_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(
        std::uint64_t{1} << std::min<unsigned>(checks_, 6), until_ms_ - 1 - now_ms));
    if (checks_ < 255) ++checks_;
    return Next::kWait;
  }
  bool started() const { return until_ms_ != 0; }
  std::uint64_t wait_ms() const { return wait_ms_; }

 private:
  std::uint64_t until_ms_ = 0;  // the bound, plus one; 0 until the first check
  std::uint32_t wait_ms_ = 0;
  std::uint8_t checks_ = 0;
};

// The socket as CloseDrain asks for it.
struct KernelSocket {
  int fd;
  CloseNotify send_close_notify() const { return ktls::send_close_notify(fd); }
  std::size_t unsent_bytes() const { return ktls::unsent_bytes(fd); }
};

// Makes ctx tell each TLS 1.3 server session its sending secret as the handshake derives it
// (TlsSession::keep_tx_secret). Only for a context whose sessions use kTLS: OpenSSL formats every
// secret of every handshake into a line for the callback.
void log_tx_secrets(SSL_CTX* ctx);

}  // namespace rs::net::tls::ktls
