#include "net/tls/ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "net/startup_error.hpp"
#include "net/tls/tls_context.hpp"

namespace rs::net::tls {

namespace {

constexpr std::uint64_t kNanosPerSecond = 1'000'000'000;
constexpr int kIvBytes = 16;  // AES's block
constexpr char kMacDigest[] = "SHA256";

// The ring a context's tickets use, held by the context itself (an SSL_CTX ex_data slot whose
// free function drops the reference), so the ring lives as long as any SSL that may call back.
void free_ring(void* /*parent*/, void* held, CRYPTO_EX_DATA* /*data*/, int /*index*/, long /*argl*/,
               void* /*argp*/) {
  delete static_cast<std::shared_ptr<TicketKeys>*>(held);  // null in contexts without a ring
}

int ring_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_ring);
  return index;
}

// SSL_get_SSL_CTX is the context the SSL was made from (no SNI callback swaps it here), the one
// whose callback OpenSSL calls.
int ticket_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                    EVP_MAC_CTX* mac, int enc) {
  const auto* ring = static_cast<std::shared_ptr<TicketKeys>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
  if (ring == nullptr) return 0;  // no ticket; a full handshake
  // A failure here means "no ticket" (or a full handshake), never a failed connection: what the
  // failed call queued is dropped, or SSL_get_error would read it as a fatal error of the
  // handshake that called us.
  ERR_set_mark();
  const int result =
      enc == 1 ? (*ring)->seal(name, iv, cipher, mac) : (*ring)->open(name, iv, cipher, mac);
  if (result == 0) {
    ERR_pop_to_mark();
  } else {
    ERR_clear_last_mark();
  }
  return result;
}

bool random_key(auto& bytes) {
  return RAND_priv_bytes(bytes.data(), static_cast<int>(bytes.size())) == 1;
}

}  // namespace

TicketKeys::KeySet::~KeySet() {
  OPENSSL_cleanse(&current, sizeof(current));
  OPENSSL_cleanse(&previous, sizeof(previous));
}

TicketKeys::TicketKeys(std::uint64_t rotate_seconds)
    : TicketKeys(rotate_seconds, core::monotonic_ns) {}

TicketKeys::TicketKeys(std::uint64_t rotate_seconds, Clock clock)
    : rotate_seconds_(rotate_seconds),
      period_ns_(rotate_seconds * kNanosPerSecond),
      clock_(std::move(clock)) {
  if (rotate_seconds == 0) throw std::invalid_argument("TicketKeys: a rotation period of 0");
  aes_ = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (aes_ == nullptr) {
    throw StartupError(
        fmt::format("TLS session tickets: no AES-256-CBC in OpenSSL: {}", openssl_reason()));
  }
  std::shared_ptr<const KeySet> first = make_set(clock_(), nullptr);
  if (!first) {
    EVP_CIPHER_free(aes_);
    throw StartupError(
        fmt::format("TLS session tickets: cannot make random keys: {}", openssl_reason()));
  }
  keys_.store(std::move(first), std::memory_order_release);
}

TicketKeys::~TicketKeys() {
  EVP_CIPHER_free(aes_);
}

bool TicketKeys::install(const std::shared_ptr<TicketKeys>& keys, SSL_CTX* ctx) {
  const int index = ring_index();
  if (index < 0) return false;
  auto* held = new std::shared_ptr<TicketKeys>(keys);
  if (SSL_CTX_set_ex_data(ctx, index, held) != 1) {
    delete held;
    return false;
  }
  // Tickets older than a period are refused however they are sealed: the key that sealed one
  // is then the previous key at best, and the ticket's lifetime hint tells clients so too.
  SSL_CTX_set_timeout(ctx, static_cast<long>(keys->rotate_seconds()));
  return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_callback) == 1;
}

void TicketKeys::rotate_now() {
  const std::lock_guard lock(rotation_mutex_);
  const std::shared_ptr<const KeySet> keys = keys_.load(std::memory_order_acquire);
  std::shared_ptr<const KeySet> fresh = make_set(clock_(), &keys->current);
  if (!fresh) return;  // the random generator failed: these keys stay
  keys_.store(std::move(fresh), std::memory_order_release);
  rotations_.fetch_add(1, std::memory_order_relaxed);
}

TicketKeys::Name TicketKeys::current_name() const {
  return keys_.load(std::memory_order_acquire)->current.name;
}

std::shared_ptr<const TicketKeys::KeySet> TicketKeys::keys_now() {
  std::shared_ptr<const KeySet> keys = keys_.load(std::memory_order_acquire);
  const std::uint64_t now = clock_();
  if (now < keys->rotate_at_ns) return keys;
  const std::lock_guard lock(rotation_mutex_);
  keys = keys_.load(std::memory_order_acquire);  // another thread may have just rotated
  if (now < keys->rotate_at_ns) return keys;
  // Every ticket the current key sealed was sealed before rotate_at (a later handshake would
  // have rotated first). A period past that, all of them are older than their lifetime, so
  // after two periods without a handshake the current key is not kept as the previous one.
  const bool keep_current = now - keys->rotate_at_ns < period_ns_;
  std::shared_ptr<const KeySet> fresh = make_set(now, keep_current ? &keys->current : nullptr);
  if (!fresh) return keys;  // the random generator failed: try again at the next handshake
  keys_.store(fresh, std::memory_order_release);
  rotations_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

std::shared_ptr<const TicketKeys::KeySet> TicketKeys::make_set(std::uint64_t now_ns,
                                                               const Key* previous) const {
  auto keys = std::make_shared<KeySet>();
  if (RAND_bytes(keys->current.name.data(), kNameBytes) != 1 || !random_key(keys->current.aes) ||
      !random_key(keys->current.hmac)) {
    return nullptr;
  }
  if (previous != nullptr) {
    keys->previous = *previous;
    keys->has_previous = true;
  }
  keys->rotate_at_ns = now_ns + period_ns_;
  return keys;
}

bool TicketKeys::use(const Key& key, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                     EVP_MAC_CTX* mac, bool encrypt) const {
  // OSSL_PARAM takes non-const pointers; OpenSSL only reads these.
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac.data()), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(kMacDigest), 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(mac, params) == 1 &&
         EVP_CipherInit_ex(cipher, aes_, nullptr, key.aes.data(), iv, encrypt ? 1 : 0) == 1;
}

int TicketKeys::seal(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                     EVP_MAC_CTX* mac) {
  const std::shared_ptr<const KeySet> keys = keys_now();
  if (RAND_bytes(iv, kIvBytes) != 1) return 0;
  std::memcpy(name, keys->current.name.data(), kNameBytes);
  return use(keys->current, iv, cipher, mac, true) ? 1 : 0;
}

int TicketKeys::open(const unsigned char* name, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                     EVP_MAC_CTX* mac) {
  const std::shared_ptr<const KeySet> keys = keys_now();
  if (std::memcmp(name, keys->current.name.data(), kNameBytes) == 0) {
    return use(keys->current, iv, cipher, mac, false) ? 1 : 0;
  }
  if (keys->has_previous && std::memcmp(name, keys->previous.name.data(), kNameBytes) == 0) {
    return use(keys->previous, iv, cipher, mac, false) ? 2 : 0;
  }
  return 0;  // an unknown key, or one rotated out: a full handshake
}

}  // namespace rs::net::tls
