// One connection's TLS, driven by the connection as its I/O completes: the loop does every socket
// operation itself, and OpenSSL only ever sees bytes in memory. Ciphertext that arrived is handed
// to receive(), which advances the handshake and decrypts every whole record into the
// connection's plaintext input; plaintext output is sealed (seal()) into records in wire(), the
// ciphertext the connection's ordered send takes. A BIO of our own stands between OpenSSL and the
// two: reads take from the ciphertext being received, writes append to wire() (pooled chunks),
// so no call ever blocks and nothing is copied into a memory BIO on the way.
//
// A turn's answers are sealed together, in records of up to 16 KiB, when the connection sends:
// twenty pipelined answers of 150 bytes leave as one record in one send.
//
// With kTLS (net/tls/ktls.hpp) the kernel seals instead once the handshake's records have left:
// the session exports its sending keys, and seal() hands the plaintext on as it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/buffer.hpp"
#include "core/slab_pool.hpp"
#include "core/timer_wheel.hpp"
#include "net/tls/ktls.hpp"

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;

namespace rs::net::tls {

class TlsContext;

class TlsSession {
 public:
  // What receive() found.
  enum class Step : std::uint8_t {
    kHandshaking,  // more of the handshake is needed (wire() may hold our next flight)
    kOpen,         // established: every whole record's plaintext is in `plain`
    kPeerClosed,   // the peer sent close_notify (plaintext before it is in `plain`)
    kPlainHttp,    // the first bytes are a plain HTTP request, not a TLS record
    kFailed,       // a fatal error: wire() holds the alert for the peer; failure() says why
  };

  // scratch: kRecordBytes the loop's sessions share (one at a time) to gather a record's
  // plaintext or take one out.
  TlsSession(SSL_CTX* ctx, core::ChunkPool& chunks, std::byte* scratch);
  static constexpr std::size_t kRecordBytes = 16384;  // most plaintext a record holds (RFC 8446)
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // False when OpenSSL could not make the session (out of memory): close the connection.
  bool ok() const { return ssl_ != nullptr; }

  Step receive(std::span<const std::byte> ciphertext, core::BufferChain& plain);
  // Encrypts and consumes all of `plain` into wire(), in records of up to 16 KiB. Only once
  // established. False on a fatal error (failure() says why).
  bool seal(core::BufferChain& plain);
  // Queues close_notify in wire(), once, on an established session that has not failed.
  void close_notify();
  bool close_notify_sent() const { return (flags_ & kCloseNotifySent) != 0; }

  core::BufferChain& wire() { return wire_; }
  bool established() const { return (flags_ & kEstablished) != 0; }
  bool failed() const { return (flags_ & kFailed) != 0; }
  bool resumed() const;
  // Why the session failed (OpenSSL's reason), or "".
  std::string_view failure() const { return failure_; }

  // Closes a handshake that takes too long; the connection arms and handles it.
  core::Timer& handshake_timer() { return handshake_timer_; }

  // --- kTLS (net/tls/ktls.hpp): the kernel seals the output ---
  // The sending keys can go to the kernel now: the handshake is done, its TLS 1.3 sending secret
  // was kept (the context logs it only when kTLS is in force), and every record OpenSSL sealed
  // has left (wire() is empty), so the kernel's records follow them in order.
  bool kernel_tls_due() const {
    return (flags_ & (kEstablished | kFailed | kKeptTxSecret)) == (kEstablished | kKeptTxSecret) &&
           wire_.empty();
  }
  // The sending keys, their record sequence the number of records OpenSSL sealed under them.
  // False when they cannot be given: a suite the kernel is not given, or a key update made or
  // asked for. The kept secret is wiped either way.
  bool export_tx_keys(ktls::TxKeys& keys);
  // The kernel took the keys. From now on seal() hands the plaintext over as it is, close_notify()
  // only marks it sent (the connection has the kernel send it), and OpenSSL may send nothing more:
  // a peer's request for a key update fails the session (receive()), as does any record OpenSSL
  // would write, which could only be sealed with keys and a sequence the kernel now holds.
  void use_kernel_tls() { flags_ |= kKernelTls; }
  bool kernel_tls() const { return (flags_ & kKernelTls) != 0; }
  // The close of a kTLS connection waits for the kernel to push what it sealed (ktls.hpp).
  ktls::CloseDrain& close_drain() { return close_drain_; }
  const ktls::CloseDrain& close_drain() const { return close_drain_; }
  // For the key log (ktls.cpp): the server's first application traffic secret, as the handshake
  // derives it. From here the session counts the records sealed under it.
  void keep_tx_secret(std::span<const std::uint8_t> secret);
  // The session an SSL of ours belongs to; nullptr for any other SSL.
  static TlsSession* of(const SSL* ssl);

  // For the BIO (tls_session.cpp).
  int bio_read(char* out, int len);
  int bio_write(const char* data, int len);

 private:
  static constexpr std::uint8_t kEstablished = 1;
  static constexpr std::uint8_t kFailed = 2;
  static constexpr std::uint8_t kCloseNotifySent = 4;
  static constexpr std::uint8_t kReceivedBytes = 8;
  // kTLS: the sending secret is kept (SSL ex data) until it goes to the kernel; then the kernel
  // seals.
  static constexpr std::uint8_t kKeptTxSecret = 16;
  static constexpr std::uint8_t kKernelTls = 32;

  Step fail(int ssl_result, int error);
  void drop_kept_tx_secret();

  SSL* ssl_ = nullptr;
  std::span<const std::byte> source_;  // the ciphertext being received, for the BIO's reads
  core::BufferChain wire_;             // ciphertext for the peer, in order
  std::byte* scratch_;
  core::Timer handshake_timer_;
  ktls::CloseDrain close_drain_;
  std::uint8_t flags_ = 0;
  char failure_[96] = {};
};

// One loop's TLS: the shared context and the loop's sessions.
class TlsEndpoint {
 public:
  TlsEndpoint(std::shared_ptr<const TlsContext> context, core::ChunkPool& chunks,
              std::size_t per_slab)
      : context_(std::move(context)),
        chunks_(chunks),
        sessions_(per_slab),
        scratch_(std::make_unique<std::byte[]>(TlsSession::kRecordBytes)) {}
  TlsEndpoint(const TlsEndpoint&) = delete;
  TlsEndpoint& operator=(const TlsEndpoint&) = delete;

  // A new server-side session, or nullptr when OpenSSL could not make one.
  TlsSession* open();
  void close(TlsSession* session) { sessions_.destroy(session); }
  // New sessions are made from `context` (a reloaded certificate); open ones keep theirs (an
  // SSL holds a reference to its SSL_CTX).
  void use(std::shared_ptr<const TlsContext> context) {
    if (context) context_ = std::move(context);
  }
  std::uint64_t handshake_timeout_ms() const;
  std::size_t open_sessions() const { return sessions_.outstanding(); }

 private:
  std::shared_ptr<const TlsContext> context_;
  core::ChunkPool& chunks_;
  core::SlabPool<TlsSession> sessions_;
  // On the heap: a worker of the threads backend has a 64 KiB stack, and a thread_local would
  // be carved from it too (glibc places static TLS in the thread's stack).
  std::unique_ptr<std::byte[]> scratch_;
};

// What a plain HTTP request sent to a TLS port is answered with (as nginx does), in the clear.
inline constexpr std::string_view kPlainHttpAnswer =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 47\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This port speaks HTTPS: use https:// to ask it\n";

}  // namespace rs::net::tls
