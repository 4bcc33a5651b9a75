// The keys that seal and open session tickets, rotated on a timer. A ticket is the session's
// state encrypted (AES-256-CBC) and authenticated (HMAC-SHA256) by the server and kept by the
// client, so resumption needs no server-side cache; whoever holds the keys can read every
// ticket sealed with them, so they are made at random in memory, never written anywhere, and
// replaced every rotation period. The key before the current one is still accepted, so a ticket
// stays usable for one to two periods (the session lifetime, one period, cuts it off first).
//
// One ring is shared by every loop (OpenSSL calls the ticket callback on all of them at once)
// and outlives reloads: a SIGHUP's new context takes the old context's ring, so tickets issued
// before the reload still resume after it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

using SSL_CTX = struct ssl_ctx_st;
using EVP_CIPHER = struct evp_cipher_st;
using EVP_CIPHER_CTX = struct evp_cipher_ctx_st;
using EVP_MAC_CTX = struct evp_mac_ctx_st;

namespace rs::net::tls {

class TicketKeys {
 public:
  static constexpr std::size_t kNameBytes = 16;  // names the key in the ticket's first bytes
  using Name = std::array<unsigned char, kNameBytes>;
  // Monotonic nanoseconds. Tests give a clock of their own to move time on.
  using Clock = std::function<std::uint64_t()>;

  // A current key made now, no previous one. Throws net::StartupError when OpenSSL cannot make
  // the keys; std::invalid_argument when rotate_seconds is 0 (no tickets: no ring).
  explicit TicketKeys(std::uint64_t rotate_seconds);
  TicketKeys(std::uint64_t rotate_seconds, Clock clock);
  ~TicketKeys();
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // Makes ctx seal and open its tickets with these keys (once per context), and sets its
  // sessions' lifetime to one rotation period. ctx holds a reference to the ring until it is freed
  // (its SSLs may outlive the TlsContext that made them). False, with OpenSSL's reason queued, when
  // it cannot.
  static bool install(const std::shared_ptr<TicketKeys>& keys, SSL_CTX* ctx);

  std::uint64_t rotate_seconds() const { return rotate_seconds_; }
  // Rotates at once, as if the period had ended: the current key becomes the previous one.
  void rotate_now();
  // The key new tickets are sealed with (no rotation is done here, even when one is due).
  Name current_name() const;
  // Rotations so far, on the timer or by rotate_now().
  std::uint64_t rotations() const { return rotations_.load(std::memory_order_relaxed); }

  // OpenSSL's ticket callback, for one handshake (SSL_CTX_set_tlsext_ticket_key_evp_cb). seal:
  // the current key's name, a fresh IV and the keys set in cipher and mac; 1, or 0 (no ticket
  // this time) when that fails. open: by the name, 1 for the current key, 2 for the previous
  // one (OpenSSL then issues a fresh ticket under the current key), 0 for any other (a full
  // handshake). Either first rotates when the period is over.
  int seal(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac);
  int open(const unsigned char* name, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
           EVP_MAC_CTX* mac);

 private:
  struct Key {
    Name name{};
    std::array<unsigned char, 32> aes{};   // AES-256
    std::array<unsigned char, 32> hmac{};  // HMAC-SHA256
  };
  // Never changed once published: a rotation publishes a new set, and a handshake still using
  // the old one keeps it alive through its shared_ptr.
  struct KeySet {
    Key current;
    Key previous;
    bool has_previous = false;
    std::uint64_t rotate_at_ns = 0;  // the current key stops sealing then
    KeySet() = default;
    KeySet(const KeySet&) = delete;
    KeySet& operator=(const KeySet&) = delete;
    ~KeySet();  // wipes the keys
  };

  // The keys in force now, rotated first when the period is over.
  std::shared_ptr<const KeySet> keys_now();
  // A set with a new current key, `previous` (when given) as the previous one, rotating at
  // now + the period. Null when OpenSSL's random generator fails.
  std::shared_ptr<const KeySet> make_set(std::uint64_t now_ns, const Key* previous) const;
  // Sets key and iv in cipher (to encrypt or decrypt) and mac.
  bool use(const Key& key, const unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
           bool encrypt) const;

  const std::uint64_t rotate_seconds_;
  const std::uint64_t period_ns_;
  const Clock clock_;
  EVP_CIPHER* aes_ = nullptr;  // fetched once, not per handshake
  // The handshakes' fast path is one clock read and this one load; rotation_mutex_ only keeps
  // two threads that see the period end at once from both rotating.
  std::atomic<std::shared_ptr<const KeySet>> keys_;
  std::mutex rotation_mutex_;
  std::atomic<std::uint64_t> rotations_{0};
};

}  // namespace rs::net::tls
