#include "net/tls/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "net/tls/ktls.hpp"
#include "net/tls/tls_context.hpp"

namespace rs::net::tls {

namespace {

int bio_write(BIO* bio, const char* data, int len) {
  return static_cast<TlsSession*>(BIO_get_data(bio))->bio_write(data, len);
}

int bio_read(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  const int n = static_cast<TlsSession*>(BIO_get_data(bio))->bio_read(out, len);
  if (n == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return n;
}

long bio_ctrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
  // Writes reach wire() at once: a flush has nothing to do.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

struct OurBio {
  int type;  // tells our BIOs from others (TlsSession::of)
  BIO_METHOD* method;
};

// Made once, for every thread (a function-local static is initialised once, safely).
const OurBio& our_bio() {
  static const OurBio bio = [] {
    const int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
    BIO_METHOD* m = BIO_meth_new(type, "ringserve");
    if (m != nullptr) {
      BIO_meth_set_write(m, bio_write);
      BIO_meth_set_read(m, bio_read);
      BIO_meth_set_ctrl(m, bio_ctrl);
      BIO_meth_set_create(m, bio_create);
    }
    return OurBio{type, m};
  }();
  return bio;
}

// kTLS: a session's sending secret from the moment the handshake derives it until it goes to the
// kernel, and how many records OpenSSL has sealed under it since (the kernel's first record
// sequence number). On the heap, and only then, so no other session pays for it.
struct KeptTxSecret {
  std::uint8_t secret[ktls::kMaxSecretBytes];
  std::size_t size;
  std::uint64_t records;
  bool key_updated;  // OpenSSL moved to new sending keys: these are spent
};

int kept_secret_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Every record OpenSSL writes passes here, header first (SSL3_RT_HEADER), while a secret is kept.
void count_records(int write_p, int /*version*/, int content_type, const void* buf, std::size_t len,
                   SSL* /*ssl*/, void* arg) {
  if (write_p == 0) return;
  auto* kept = static_cast<KeptTxSecret*>(arg);
  if (content_type == SSL3_RT_HEADER) {
    ++kept->records;
  } else if (content_type == SSL3_RT_HANDSHAKE && len > 0 &&
             static_cast<const unsigned char*>(buf)[0] == SSL3_MT_KEY_UPDATE) {
    kept->key_updated = true;
  }
}

// A request line starts with a method: upper-case letters. A TLS record starts with its type
// (20 to 24), so the first byte tells the two apart.
bool looks_like_plain_http(std::span<const std::byte> bytes) {
  const auto c = static_cast<unsigned char>(bytes.front());
  return c >= 'A' && c <= 'Z';
}

}  // namespace

TlsSession::TlsSession(SSL_CTX* ctx, core::ChunkPool& chunks, std::byte* scratch)
    : wire_(chunks), scratch_(scratch) {
  BIO_METHOD* method = our_bio().method;
  if (method == nullptr) return;
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return;
  BIO* bio = BIO_new(method);
  if (bio == nullptr) {
    SSL_free(ssl);
    return;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl, bio, bio);  // one reference, for both directions
  SSL_set_accept_state(ssl);
  ssl_ = ssl;
}

TlsSession::~TlsSession() {
  drop_kept_tx_secret();
  if (ssl_ != nullptr) SSL_free(ssl_);
}

TlsSession* TlsSession::of(const SSL* ssl) {
  BIO* bio = SSL_get_wbio(ssl);
  if (bio == nullptr || BIO_method_type(bio) != our_bio().type) return nullptr;
  return static_cast<TlsSession*>(BIO_get_data(bio));
}

bool TlsSession::resumed() const {
  return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

int TlsSession::bio_read(char* out, int len) {
  const std::size_t n = std::min(source_.size(), static_cast<std::size_t>(len));
  if (n == 0) return 0;
  std::memcpy(out, source_.data(), n);
  source_ = source_.subspan(n);
  return static_cast<int>(n);
}

int TlsSession::bio_write(const char* data, int len) {
  if (kernel_tls()) {
    // OpenSSL's sending keys and sequence are stale: the kernel has sealed records since. What
    // it wrote would reuse the kernel's nonces, so it is dropped, never sent, and the session
    // fails: the connection closes rather than corrupt the stream. (An alert for a record that
    // failed SSL_read comes here; fail() then gives OpenSSL's reason.)
    if (!failed()) {
      flags_ |= kFailed;
      std::snprintf(failure_, sizeof(failure_),
                    "a record to send, but the kernel holds the sending keys (kTLS)");
    }
    return len;
  }
  wire_.append(std::as_bytes(std::span(data, static_cast<std::size_t>(len))));
  return len;
}

TlsSession::Step TlsSession::fail(int ssl_result, int error) {
  flags_ |= kFailed;
  const unsigned long reason = ERR_peek_error();  // the first: what went wrong, not its echoes
  if (reason != 0) {
    ERR_error_string_n(reason, failure_, sizeof(failure_));
  } else if (error == SSL_ERROR_SYSCALL || error == SSL_ERROR_SSL) {
    std::snprintf(failure_, sizeof(failure_), "TLS error %d (result %d)", error, ssl_result);
  } else {
    std::snprintf(failure_, sizeof(failure_), "unexpected TLS state %d", error);
  }
  ERR_clear_error();
  source_ = {};
  return Step::kFailed;
}

TlsSession::Step TlsSession::receive(std::span<const std::byte> ciphertext,
                                     core::BufferChain& plain) {
  if (failed()) return Step::kFailed;
  if (ciphertext.empty()) return established() ? Step::kOpen : Step::kHandshaking;
  if ((flags_ & kReceivedBytes) == 0) {
    flags_ |= kReceivedBytes;
    if (looks_like_plain_http(ciphertext)) {
      flags_ |= kFailed;
      std::snprintf(failure_, sizeof(failure_), "a plain HTTP request on the TLS port");
      return Step::kPlainHttp;
    }
  }
  source_ = ciphertext;
  // The thread's error queue is shared by every connection of the loop: an entry left by any
  // call would make SSL_get_error() report a failure here (as nginx, clear before each call).
  ERR_clear_error();
  if (!established()) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const int error = SSL_get_error(ssl_, r);
      if (error == SSL_ERROR_WANT_READ) return Step::kHandshaking;
      return fail(r, error);
    }
    flags_ |= kEstablished;
  }
  // Every whole record: OpenSSL keeps a record's first part until the rest arrives, so what was
  // received is all taken when it asks for more.
  std::byte* room = scratch_;
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, room, static_cast<int>(kRecordBytes));
    if (n > 0) {
      plain.append(std::span<const std::byte>(room, static_cast<std::size_t>(n)));
      continue;
    }
    const int error = SSL_get_error(ssl_, n);
    if (error == SSL_ERROR_WANT_READ) break;
    if (error == SSL_ERROR_ZERO_RETURN) {
      source_ = {};
      return failed() ? Step::kFailed : Step::kPeerClosed;
    }
    return fail(n, error);
  }
  source_ = {};
  // kTLS: a peer's KeyUpdate that asks for ours (OpenSSL would send it before its next record)
  // cannot be answered, as the kernel holds the sending keys: the connection is closed rather
  // than go on under keys the peer asked us to retire.
  if (kernel_tls() && !failed() && SSL_get_key_update_type(ssl_) != SSL_KEY_UPDATE_NONE) {
    flags_ |= kFailed;
    std::snprintf(failure_, sizeof(failure_),
                  "the peer asked for a key update, but the kernel holds the sending keys (kTLS)");
  }
  return failed() ? Step::kFailed : Step::kOpen;  // failed: under kTLS, above or in bio_write()
}

bool TlsSession::seal(core::BufferChain& plain) {
  if (failed() || !established()) return false;
  if (kernel_tls()) {
    wire_.splice_back(plain);  // the kernel makes the records as it sends
    return true;
  }
  while (!plain.empty()) {
    // A record's plaintext in one piece: straight from a chunk that holds a whole record (or
    // all that is left), else gathered from several.
    std::span<const std::byte> front = plain.front_segment();
    const std::size_t n = std::min(plain.size(), kRecordBytes);
    const std::byte* from = front.data();
    if (front.size() < n) {
      plain.copy_out(0, std::span<std::byte>(scratch_, n));
      from = scratch_;
    }
    ERR_clear_error();
    const int r = SSL_write(ssl_, from, static_cast<int>(n));
    if (r <= 0) {
      fail(r, SSL_get_error(ssl_, r));
      return false;
    }
    plain.consume(static_cast<std::size_t>(r));
  }
  return true;
}

void TlsSession::close_notify() {
  if (failed() || !established() || close_notify_sent()) return;
  flags_ |= kCloseNotifySent;
  if (kernel_tls()) return;  // the kernel seals it (ktls::send_close_notify)
  ERR_clear_error();
  SSL_shutdown(ssl_);  // writes the alert to wire(); the peer's answer is not waited for
  ERR_clear_error();
}

void TlsSession::keep_tx_secret(std::span<const std::uint8_t> secret) {
  if ((flags_ & (kKeptTxSecret | kKernelTls)) != 0 || secret.size() > ktls::kMaxSecretBytes) return;
  auto* kept = new (std::nothrow) KeptTxSecret{};
  if (kept == nullptr) return;  // no kTLS for this connection: it seals in user space
  std::memcpy(kept->secret, secret.data(), secret.size());
  kept->size = secret.size();
  if (SSL_set_ex_data(ssl_, kept_secret_index(), kept) != 1) {
    OPENSSL_cleanse(kept, sizeof(*kept));
    delete kept;
    return;
  }
  flags_ |= kKeptTxSecret;
  // OpenSSL logs the secret right after it sealed the last record under the handshake keys (the
  // server's Finished): every record from here is sealed under this secret.
  SSL_set_msg_callback(ssl_, count_records);
  SSL_set_msg_callback_arg(ssl_, kept);
}

void TlsSession::drop_kept_tx_secret() {
  if ((flags_ & kKeptTxSecret) == 0) return;
  flags_ &= static_cast<std::uint8_t>(~kKeptTxSecret);
  auto* kept = static_cast<KeptTxSecret*>(SSL_get_ex_data(ssl_, kept_secret_index()));
  SSL_set_ex_data(ssl_, kept_secret_index(), nullptr);
  SSL_set_msg_callback(ssl_, nullptr);  // nothing more to count: no cost per record from here
  SSL_set_msg_callback_arg(ssl_, nullptr);
  if (kept != nullptr) {
    OPENSSL_cleanse(kept, sizeof(*kept));
    delete kept;
  }
}

bool TlsSession::export_tx_keys(ktls::TxKeys& keys) {
  if ((flags_ & kKeptTxSecret) == 0) return false;
  const auto* kept = static_cast<const KeptTxSecret*>(SSL_get_ex_data(ssl_, kept_secret_index()));
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  const SSL_SESSION* session = SSL_get_session(ssl_);
  // A key update made, or one the peer asked for and OpenSSL has yet to send: these keys are
  // spent, or about to be. A client that asked for smaller records (max_fragment_length, which
  // OpenSSL agrees to) would get the kernel's full-size ones: it stays with OpenSSL.
  const bool ok =
      kept != nullptr && !kept->key_updated &&
      SSL_get_key_update_type(ssl_) == SSL_KEY_UPDATE_NONE && session != nullptr &&
      SSL_SESSION_get_max_fragment_length(session) == TLSEXT_max_fragment_length_DISABLED &&
      cipher != nullptr && SSL_version(ssl_) == TLS1_3_VERSION &&
      ktls::derive_tx_keys(SSL_CIPHER_get_protocol_id(cipher), std::span(kept->secret, kept->size),
                           kept->records, keys);
  drop_kept_tx_secret();
  return ok;
}

TlsSession* TlsEndpoint::open() {
  TlsSession* session = sessions_.make(context_->ctx(), chunks_, scratch_.get());
  if (!session->ok()) {
    sessions_.destroy(session);
    ERR_clear_error();
    return nullptr;
  }
  return session;
}

std::uint64_t TlsEndpoint::handshake_timeout_ms() const {
  return context_->config().handshake_timeout_ms;
}

}  // namespace rs::net::tls
