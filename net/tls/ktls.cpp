#include "net/tls/ktls.hpp"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "net/tls/tls_session.hpp"

namespace rs::net::tls::ktls {

namespace {

constexpr char kUlpName[] = "tls";

// A descriptor closed when it goes out of scope (the probe's sockets).
class Socket {
 public:
  Socket() = default;
  ~Socket() { reset(-1); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// A client connected to a listener on the loopback address of `family`. The connection is
// established once connect() returns (the listener's backlog completes it: nobody accepts), and
// stays so while the listener is open. False with errno set.
bool connect_loopback(int family, Socket& listener, Socket& client) {
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(address);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(in);
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(address);
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = in6addr_loopback;
    length = sizeof(in6);
  }
  listener.reset(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) return false;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return false;
  }
  client.reset(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (client.get() < 0) return false;
  return ::connect(client.get(), reinterpret_cast<sockaddr*>(&address), length) == 0;
}

struct Suite {
  std::uint16_t id;          // IANA number
  const char* digest;        // the HKDF hash
  std::size_t secret_bytes;  // the hash's length
  std::uint16_t cipher;      // linux/tls.h
  std::size_t key_bytes;
};

constexpr Suite kSuites[] = {
    {0x1301, "SHA256", 32, TLS_CIPHER_AES_GCM_128, TLS_CIPHER_AES_GCM_128_KEY_SIZE},
    {0x1302, "SHA384", 48, TLS_CIPHER_AES_GCM_256, TLS_CIPHER_AES_GCM_256_KEY_SIZE},
    {0x1303, "SHA256", 32, TLS_CIPHER_CHACHA20_POLY1305, TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE},
};

// A TLS 1.3 record nonce is 12 bytes for every suite above (RFC 8446 §5.3).
constexpr std::size_t kIvBytes = 12;

// Fetched once: a fetch looks the algorithm up in the provider tables.
EVP_KDF* hkdf() {
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  return kdf;
}

// HKDF-Expand-Label(secret, label, "", out.size()) (RFC 8446 §7.1).
bool expand_label(const char* digest, std::span<const std::uint8_t> secret, std::string_view label,
                  std::span<std::uint8_t> out) {
  constexpr std::string_view kPrefix = "tls13 ";
  // struct HkdfLabel { uint16 length; opaque label<7..255>; opaque context<0..255>; }
  std::uint8_t info[2 + 1 + kPrefix.size() + 8 + 1];
  if (label.size() > 8 || hkdf() == nullptr) return false;
  std::size_t n = 0;
  info[n++] = static_cast<std::uint8_t>(out.size() >> 8);
  info[n++] = static_cast<std::uint8_t>(out.size() & 0xff);
  info[n++] = static_cast<std::uint8_t>(kPrefix.size() + label.size());
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;  // no context
  EVP_KDF_CTX* kdf = EVP_KDF_CTX_new(hkdf());
  if (kdf == nullptr) return false;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<std::uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(kdf, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(kdf);
  return ok;
}

// The kernel's crypto info of one AES-GCM size: the key, the IV's first 4 bytes as the salt and
// the other 8 as the IV (the kernel joins them and XORs in the sequence number, as TLS 1.3 does).
template <class Info>
void fill_aes_gcm(Info& info, std::uint16_t cipher, const std::uint8_t* key, const std::uint8_t* iv,
                  const std::uint8_t* seq) {
  info.info.version = TLS_1_3_VERSION;
  info.info.cipher_type = cipher;
  std::memcpy(info.key, key, sizeof(info.key));
  std::memcpy(info.salt, iv, sizeof(info.salt));
  std::memcpy(info.iv, iv + sizeof(info.salt), sizeof(info.iv));
  std::memcpy(info.rec_seq, seq, sizeof(info.rec_seq));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// OpenSSL's key log: "SERVER_TRAFFIC_SECRET_0 <client random, hex> <secret, hex>" is the
// server's first application traffic secret; every other line (handshake secrets, the client's,
// TLS 1.2's CLIENT_RANDOM) is of no use here.
void on_key_log(const SSL* ssl, const char* line) {
  constexpr std::string_view kLabel = "SERVER_TRAFFIC_SECRET_0 ";
  std::string_view text(line);
  if (text.substr(0, kLabel.size()) != kLabel) return;
  text.remove_prefix(kLabel.size());
  const std::size_t space = text.find(' ');
  if (space == std::string_view::npos) return;
  const std::string_view hex = text.substr(space + 1);
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() / 2 > kMaxSecretBytes) return;
  std::uint8_t secret[kMaxSecretBytes];
  const std::size_t n = hex.size() / 2;
  bool ok = true;
  for (std::size_t i = 0; i < n && ok; ++i) {
    const int high = hex_digit(hex[2 * i]);
    const int low = hex_digit(hex[2 * i + 1]);
    ok = high >= 0 && low >= 0;
    secret[i] = static_cast<std::uint8_t>((high << 4) | low);
  }
  if (ok) {
    if (TlsSession* session = TlsSession::of(ssl)) session->keep_tx_secret(std::span(secret, n));
  }
  OPENSSL_cleanse(secret, sizeof(secret));
}

// One whole TLS record from a blocking socket (the probe's peer, which has a receive timeout),
// header included; "" when none came.
std::string read_record(int fd) {
  std::string record;
  std::size_t want = 5;
  char buffer[512];
  while (record.size() < want) {
    const std::size_t room = std::min(sizeof(buffer), want - record.size());
    const ssize_t n = ::recv(fd, buffer, room, 0);
    if (n <= 0) return {};
    record.append(buffer, static_cast<std::size_t>(n));
    if (want == 5 && record.size() == 5) {
      want += (static_cast<std::size_t>(static_cast<unsigned char>(record[3])) << 8) |
              static_cast<unsigned char>(record[4]);
      if (want > 5 + 16384 + 256) return {};
    }
  }
  return record;
}

}  // namespace

std::optional<OpenedRecord> open_record(const TxKeys& keys, std::string_view record,
                                        std::uint64_t later) {
  constexpr std::size_t kTag = 16;
  if (record.size() < 5 + kTag + 1 || record[0] != kApplicationData) return std::nullopt;
  const EVP_CIPHER* cipher = nullptr;
  const unsigned char* key = nullptr;
  const unsigned char* rec_seq = nullptr;
  unsigned char nonce[kIvBytes];
  // AES-GCM's nonce is the 4-byte salt, then the 8-byte IV; the two sizes differ in the key only.
  const auto gcm = [&](const EVP_CIPHER* gcm_cipher, const auto& info) {
    cipher = gcm_cipher;
    key = info.key;
    std::memcpy(nonce, info.salt, 4);
    std::memcpy(nonce + 4, info.iv, 8);
    rec_seq = info.rec_seq;
  };
  switch (keys.info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
      gcm(EVP_aes_128_gcm(), keys.aes_gcm_128);
      break;
    case TLS_CIPHER_AES_GCM_256:
      gcm(EVP_aes_256_gcm(), keys.aes_gcm_256);
      break;
    case TLS_CIPHER_CHACHA20_POLY1305:
      cipher = EVP_chacha20_poly1305();
      key = keys.chacha20_poly1305.key;
      std::memcpy(nonce, keys.chacha20_poly1305.iv, kIvBytes);
      rec_seq = keys.chacha20_poly1305.rec_seq;
      break;
    default:
      return std::nullopt;
  }
  // The sequence number, big-endian, plus `later`, XORed into the nonce's last 8 bytes.
  std::uint64_t seq = 0;
  for (int i = 0; i < 8; ++i)
    seq = (seq << 8) | rec_seq[i];
  seq += later;
  for (int i = 0; i < 8; ++i)
    nonce[4 + i] ^= static_cast<unsigned char>(seq >> (8 * (7 - i)));

  const auto* bytes = reinterpret_cast<const unsigned char*>(record.data());
  const std::size_t body = record.size() - 5 - kTag;
  OpenedRecord opened;
  opened.content.assign(body, '\0');
  auto* into = reinterpret_cast<unsigned char*>(opened.content.data());
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  int last = 0;
  const bool ok =
      ctx != nullptr && EVP_DecryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, sizeof(nonce), nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx, nullptr, nullptr, key, nonce) == 1 &&
      EVP_DecryptUpdate(ctx, nullptr, &len, bytes, 5) == 1 &&  // the header: additional data
      EVP_DecryptUpdate(ctx, into, &len, bytes + 5, static_cast<int>(body)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTag,
                          const_cast<unsigned char*>(bytes + 5 + body)) == 1 &&
      EVP_DecryptFinal_ex(ctx, into + len, &last) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return std::nullopt;
  // TLSInnerPlaintext: the content, its type, then zeros.
  std::string& content = opened.content;
  while (!content.empty() && content.back() == '\0')
    content.pop_back();
  if (content.empty()) return std::nullopt;
  opened.type = static_cast<std::uint8_t>(content.back());
  content.pop_back();
  return opened;
}

TxKeys::~TxKeys() {
  OPENSSL_cleanse(static_cast<void*>(this), sizeof(*this));
}

Probe probe_kernel() {
  Socket listener;
  Socket connection;
  if (!connect_loopback(AF_INET, listener, connection) &&
      !connect_loopback(AF_INET6, listener, connection)) {
    return {false, fmt::format("cannot try the kernel's TLS: no loopback TCP connection: {}",
                               std::strerror(errno))};
  }
  const int client = connection.get();
  if (::setsockopt(client, SOL_TCP, TCP_ULP, kUlpName, sizeof(kUlpName)) != 0) {
    const int error = errno;
    if (error == ENOENT) {
      return {false,
              fmt::format("kernel has no TLS ULP: setsockopt TCP_ULP: {}", std::strerror(error))};
    }
    return {false, fmt::format("kernel refused the TLS ULP: setsockopt TCP_ULP: {}",
                               std::strerror(error))};
  }
  // The whole path, end to end, before any client depends on it: keys derived as a connection's
  // are (from a made-up secret, a few records in), a record and a close_notify sealed by the
  // kernel, and both opened here as a client would. A kernel that takes the keys but seals
  // otherwise than this code expects turns kTLS off instead of breaking every connection.
  std::uint8_t secret[32];
  for (std::size_t i = 0; i < sizeof(secret); ++i)
    secret[i] = static_cast<std::uint8_t>(0x5a ^ (i * 37));
  constexpr std::uint64_t kRecordsBefore = 3;
  TxKeys keys;
  derive_tx_keys(0x1301, secret, kRecordsBefore, keys);  // TLS_AES_128_GCM_SHA256
  if (::setsockopt(client, SOL_TLS, TLS_TX, &keys.info, keys.size) != 0) {
    return {false, fmt::format("kernel TLS takes no TLS 1.3 keys: setsockopt TLS_TX: {}",
                               std::strerror(errno))};
  }
  Socket peer;
  peer.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  const timeval limit{1, 0};
  if (peer.get() < 0 ||
      ::setsockopt(peer.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)) != 0) {
    return {false, fmt::format("cannot try the kernel's TLS: accept: {}", std::strerror(errno))};
  }
  constexpr std::string_view kPlain = "ringserve kTLS self-test";
  if (::send(client, kPlain.data(), kPlain.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kPlain.size())) {
    return {false, fmt::format("kernel TLS self-test: send: {}", std::strerror(errno))};
  }
  const std::optional<OpenedRecord> data = open_record(keys, read_record(peer.get()));
  if (!data || data->type != kApplicationData || data->content != kPlain) {
    return {false, "kernel TLS self-test: its record does not open with the keys given"};
  }
  if (send_close_notify(client) != CloseNotify::kSent) {
    return {false, fmt::format("kernel TLS self-test: close_notify: {}", std::strerror(errno))};
  }
  const std::optional<OpenedRecord> alert = open_record(keys, read_record(peer.get()), 1);
  if (!alert || alert->type != kAlert || alert->content != std::string_view("\x01\x00", 2)) {
    return {false, "kernel TLS self-test: its close_notify does not open as one"};
  }
  return {true, ""};
}

bool derive_tx_keys(std::uint16_t suite_id, std::span<const std::uint8_t> secret,
                    std::uint64_t records, TxKeys& keys) {
  const Suite* suite = nullptr;
  for (const Suite& s : kSuites) {
    if (s.id == suite_id) suite = &s;
  }
  if (suite == nullptr || secret.size() != suite->secret_bytes) return false;
  std::uint8_t key[32];
  std::uint8_t iv[kIvBytes];
  std::uint8_t seq[8];
  for (int i = 7; i >= 0; --i, records >>= 8)
    seq[i] = static_cast<std::uint8_t>(records & 0xff);  // big-endian, as the kernel keeps it
  bool ok = expand_label(suite->digest, secret, "key", std::span(key, suite->key_bytes)) &&
            expand_label(suite->digest, secret, "iv", std::span(iv));
  if (ok) {
    switch (suite->cipher) {
      case TLS_CIPHER_AES_GCM_128:
        fill_aes_gcm(keys.aes_gcm_128, suite->cipher, key, iv, seq);
        keys.size = sizeof(keys.aes_gcm_128);
        break;
      case TLS_CIPHER_AES_GCM_256:
        fill_aes_gcm(keys.aes_gcm_256, suite->cipher, key, iv, seq);
        keys.size = sizeof(keys.aes_gcm_256);
        break;
      case TLS_CIPHER_CHACHA20_POLY1305: {
        // No salt: the whole 12-byte IV, XORed with the sequence number per record.
        auto& info = keys.chacha20_poly1305;
        info.info.version = TLS_1_3_VERSION;
        info.info.cipher_type = suite->cipher;
        std::memcpy(info.key, key, sizeof(info.key));
        std::memcpy(info.iv, iv, sizeof(info.iv));
        std::memcpy(info.rec_seq, seq, sizeof(info.rec_seq));
        keys.size = sizeof(info);
        break;
      }
      default:
        ok = false;
    }
  }
  OPENSSL_cleanse(key, sizeof(key));
  OPENSSL_cleanse(iv, sizeof(iv));
  return ok;
}

bool install_tx(int fd, const TxKeys& keys, InstallError& failed) {
  if (::setsockopt(fd, SOL_TCP, TCP_ULP, kUlpName, sizeof(kUlpName)) != 0) {
    failed = {"TCP_ULP", errno};
    return false;
  }
  if (::setsockopt(fd, SOL_TLS, TLS_TX, &keys.info, keys.size) != 0) {
    failed = {"TLS_TX", errno};
    return false;
  }
  return true;
}

CloseNotify send_close_notify(int fd) {
  // An alert record: level warning, description close_notify (RFC 8446 §6.1).
  unsigned char alert[2] = {1, 0};
  constexpr unsigned char kAlertRecord = 21;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(kAlertRecord))] = {};
  iovec iov{alert, sizeof(alert)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_TLS;
  cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
  cmsg->cmsg_len = CMSG_LEN(sizeof(kAlertRecord));
  std::memcpy(CMSG_DATA(cmsg), &kAlertRecord, sizeof(kAlertRecord));
  if (::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(alert))) {
    return CloseNotify::kSent;
  }
  // A record is taken whole or not at all. A full buffer (EAGAIN), the socket's memory (ENOMEM)
  // or a signal (EINTR: the kernel may wait for the socket's TLS lock interruptibly) are tried
  // again; anything else (EPIPE, ECONNRESET, ENOTCONN, EBADMSG after a failed push) is a peer
  // nothing more can reach.
  switch (errno) {
    case EAGAIN:
    case ENOMEM:
    case EINTR:
      return CloseNotify::kBufferFull;
    default:
      return CloseNotify::kFailed;
  }
}

std::size_t unsent_bytes(int fd) {
  // A reset connection keeps its send sequence (SIOCOUTQ would go on counting what it had),
  // but nothing is left to wait for: only an open connection can still deliver.
  tcp_info info{};
  socklen_t size = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0 ||
      (info.tcpi_state != TCP_ESTABLISHED && info.tcpi_state != TCP_CLOSE_WAIT)) {
    return 0;
  }
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0) return 0;
  return static_cast<std::size_t>(queued);
}

void log_tx_secrets(SSL_CTX* ctx) {
  SSL_CTX_set_keylog_callback(ctx, on_key_log);
}

}  // namespace rs::net::tls::ktls
