#include "net/tls/tls_context.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>

#include <fmt/format.h>

#include "net/startup_error.hpp"
#include "net/tls/ktls.hpp"
#include "net/tls/ticket_keys.hpp"

namespace rs::net::tls {

// OpenSSL's reasons for the last failure, oldest first, joined; the (thread-local) error queue
// is left empty so the next failure reports only its own.
std::string openssl_reason() {
  std::string reason;
  char text[256];
  while (const unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, text, sizeof(text));
    if (!reason.empty()) reason += "; ";
    reason += text;
  }
  return reason.empty() ? "no reason given by OpenSSL" : reason;
}

namespace {

// Mozilla's "intermediate" TLS 1.2 list: forward secrecy and AEAD only, ECDSA first.
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr std::string_view kHttp11 = "http/1.1";

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

bool is_key_mismatch(unsigned long code) {
  return ERR_GET_LIB(code) == ERR_LIB_X509 && (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH ||
                                               ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH);
}

// Whether the queued failure is "this key is not the certificate's". Leaves the queue as it is
// (openssl_reason() drains it afterwards).
bool queue_says_key_mismatch() {
  return is_key_mismatch(ERR_peek_error()) || is_key_mismatch(ERR_peek_last_error());
}

int min_version_of(const std::string& text) {
  if (text == "1.2") return TLS1_2_VERSION;
  if (text == "1.3") return TLS1_3_VERSION;
  throw StartupError(fmt::format(
      "--tls-min-version {}: not a TLS version this server offers; use 1.2 or 1.3", text));
}

// An encrypted key would make OpenSSL prompt on the terminal for its pass phrase, blocking
// start-up (or failing oddly under a service manager): refuse to supply one instead, so the load
// fails with a reason.
int no_pass_phrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
  return 0;
}

// ALPN (RFC 7301): http/1.1 is the only protocol spoken. A client that offers ALPN without it
// gets a fatal no_application_protocol alert (§3.2); one that sends no ALPN never gets here and
// is served HTTP/1.1 as usual.
int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len,
                const unsigned char* in, unsigned int in_len, void* /*arg*/) {
  // The client's list: one length byte, then that many bytes, repeated.
  unsigned int at = 0;
  while (at < in_len) {
    const unsigned int len = in[at];
    if (len == 0 || len > in_len - at - 1) break;  // malformed: OpenSSL checks, but be safe
    const std::string_view name(reinterpret_cast<const char*>(in + at + 1), len);
    if (name == kHttp11) {
      *out = in + at + 1;  // the selection may point into the client's list
      *out_len = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    at += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// The certificate's time as "YYYY-MM-DD HH:MM:SS UTC" (with_time) or "YYYY-MM-DD".
std::string format_time(const ASN1_TIME* time, bool with_time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return "an unreadable date";
  char text[32];
  std::strftime(text, sizeof(text), with_time ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d", &tm);
  return text;
}

// "CN=localhost", or the whole subject (RFC 2253) when it has no common name.
std::string subject_of(X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    unsigned char* utf8 = nullptr;
    const int len =
        ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
    if (len >= 0) {
      std::string cn = "CN=" + std::string(reinterpret_cast<char*>(utf8), len);
      OPENSSL_free(utf8);
      return cn;
    }
  }
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "an unreadable subject";
  std::string text = "an empty subject";
  if (X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253) > 0) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    text.assign(data, static_cast<std::size_t>(len));
  }
  BIO_free(bio);
  return text;
}

// "ECDSA P-256", "RSA 2048", "Ed25519".
std::string key_kind_of(X509* cert) {
  const EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) return "unknown key";
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &len) != 1) {
        return fmt::format("ECDSA {}", bits);
      }
      const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group));  // prime256v1 -> P-256
      return fmt::format("ECDSA {}", nist != nullptr ? nist : group);
    }
    case EVP_PKEY_RSA:
      return fmt::format("RSA {}", bits);
    case EVP_PKEY_RSA_PSS:
      return fmt::format("RSA-PSS {}", bits);
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
    default:
      return fmt::format("{} {}", OBJ_nid2sn(EVP_PKEY_get_base_id(key)), bits);
  }
}

void check_both_files_given(const TlsConfig& config) {
  if (config.key_file.empty()) {
    throw StartupError(fmt::format(
        "--tls-cert {} is given without --tls-key: give the certificate's private key with "
        "--tls-key FILE (or neither flag, to serve without TLS)",
        config.cert_file));
  }
  if (config.cert_file.empty()) {
    throw StartupError(fmt::format(
        "--tls-key {} is given without --tls-cert: give the certificate chain with --tls-cert "
        "FILE (or neither flag, to serve without TLS)",
        config.key_file));
  }
}

// Protocol versions, options, groups, ciphers, ALPN and sessions: everything but the files.
void set_protocol(SSL_CTX* ctx, const TlsConfig& config) {
  if (SSL_CTX_set_min_proto_version(ctx, min_version_of(config.min_version)) != 1) {
    throw StartupError(
        fmt::format("--tls-min-version {}: {}", config.min_version, openssl_reason()));
  }
  // No renegotiation (a client could make the server redo the costly half of a handshake at
  // will, and TLS 1.3 has none), no compression (CRIME), and the server's cipher order wins.
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // As nginx does: a connection holds its ~34 KB of record buffers only while a record is in
  // flight, so idle keep-alive connections cost little.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (config.groups.empty() || SSL_CTX_set1_groups_list(ctx, config.groups.c_str()) != 1) {
    throw StartupError(
        fmt::format("--tls-groups {}: not a list of key exchange groups OpenSSL knows: {}; give a "
                    "colon-separated list such as X25519:P-256:P-384",
                    config.groups, config.groups.empty() ? "empty" : openssl_reason()));
  }
  const std::string ciphers = config.ciphers.empty() ? kDefaultCiphers : config.ciphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    throw StartupError(fmt::format(
        "--tls-ciphers {}: no usable TLS 1.2 cipher in the list: {}; give an OpenSSL cipher list "
        "(see `openssl ciphers -v`)",
        ciphers, openssl_reason()));
  }
  if (!config.ciphersuites.empty() &&
      SSL_CTX_set_ciphersuites(ctx, config.ciphersuites.c_str()) != 1) {
    throw StartupError(fmt::format(
        "--tls-ciphersuites {}: no usable TLS 1.3 suite in the list: {}; give a colon-separated "
        "list such as TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
        config.ciphersuites, openssl_reason()));
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  // Resumption rides on stateless tickets (the ticket carries the session), so the server keeps
  // no session cache: nothing to size, lock between loops, or expire.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

void check_ticket_rotation(const TlsConfig& config) {
  if (config.ticket_rotate_s > kMaxTicketRotateSeconds) {
    throw StartupError(fmt::format(
        "--tls-ticket-rotate-s {}: must be at most {} (7 days, the longest a TLS 1.3 ticket may "
        "live), or 0 to issue no session tickets",
        config.ticket_rotate_s, kMaxTicketRotateSeconds));
  }
}

// Tickets sealed with `keys` (or a new ring) rotated every config.ticket_rotate_s; with 0, none
// at all. Returns the ring in use, null when tickets are off.
std::shared_ptr<TicketKeys> set_tickets(SSL_CTX* ctx, const TlsConfig& config,
                                        std::shared_ptr<TicketKeys> keys) {
  if (config.ticket_rotate_s == 0) {
    // No tickets, and in TLS 1.3 not even the stateful kind that SSL_OP_NO_TICKET alone still
    // sends: with no session cache, nothing could resume from them.
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    return nullptr;
  }
  if (!keys || keys->rotate_seconds() != config.ticket_rotate_s) {
    keys = std::make_shared<TicketKeys>(config.ticket_rotate_s);
  }
  if (!TicketKeys::install(keys, ctx)) {
    throw StartupError(
        fmt::format("TLS session tickets: cannot set the ticket keys: {}", openssl_reason()));
  }
  return keys;
}

// The chain and key: readable, PEM, matching.
void load_files(SSL_CTX* ctx, const TlsConfig& config) {
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    throw StartupError(fmt::format(
        "--tls-cert {}: cannot load the certificate chain: {}; give a readable PEM file holding "
        "the server's certificate first, then its intermediates",
        config.cert_file, openssl_reason()));
  }
  SSL_CTX_set_default_passwd_cb(ctx, no_pass_phrase);
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the key against the certificate as it installs it.
    if (queue_says_key_mismatch()) {
      throw StartupError(fmt::format(
          "--tls-key {}: the private key does not match the certificate in --tls-cert {}: {}; "
          "give the key the certificate was issued for",
          config.key_file, config.cert_file, openssl_reason()));
    }
    throw StartupError(fmt::format(
        "--tls-key {}: cannot load the private key: {}; give a readable, unencrypted PEM file "
        "holding the certificate's private key (an encrypted one can be decrypted with "
        "`openssl pkey -in KEY -out PLAIN`)",
        config.key_file, openssl_reason()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw StartupError(fmt::format(
        "--tls-key {}: the private key does not match the certificate in --tls-cert {}: {}; give "
        "the key the certificate was issued for",
        config.key_file, config.cert_file, openssl_reason()));
  }
}

// The leaf must be in date now; clients would refuse it anyway, but with a less clear message
// and only once traffic arrives.
void check_validity(X509* leaf, const TlsConfig& config) {
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  const ASN1_TIME* not_before = X509_get0_notBefore(leaf);
  if (X509_cmp_current_time(not_after) < 0) {
    throw StartupError(fmt::format(
        "--tls-cert {}: the certificate ({}) expired on {}; renew it, or check the system clock",
        config.cert_file, subject_of(leaf), format_time(not_after, true)));
  }
  if (X509_cmp_current_time(not_before) > 0) {
    throw StartupError(fmt::format(
        "--tls-cert {}: the certificate ({}) is not valid until {}; check the system clock, or "
        "use a certificate valid now",
        config.cert_file, subject_of(leaf), format_time(not_before, true)));
  }
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::load(const TlsConfig& config,
                                                   std::shared_ptr<TicketKeys> ticket_keys) {
  check_both_files_given(config);
  min_version_of(config.min_version);  // refused before any file is read
  check_ticket_rotation(config);
  ERR_clear_error();  // earlier, unrelated failures must not show up below
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw StartupError(fmt::format("TLS: cannot make a context: {}", openssl_reason()));
  set_protocol(ctx.get(), config);
  if (config.ktls) ktls::log_tx_secrets(ctx.get());
  ticket_keys = set_tickets(ctx.get(), config, std::move(ticket_keys));
  load_files(ctx.get(), config);
  X509* leaf = SSL_CTX_get0_certificate(ctx.get());
  check_validity(leaf, config);
  std::string description =
      fmt::format("TLS {}+ ({}, {}, valid until {}), {}", config.min_version, subject_of(leaf),
                  key_kind_of(leaf), format_time(X509_get0_notAfter(leaf), false),
                  ticket_keys ? fmt::format("tickets rotated every {}s", config.ticket_rotate_s)
                              : std::string("tickets off"));
  return std::shared_ptr<const TlsContext>(
      new TlsContext(ctx.release(), config, std::move(ticket_keys), std::move(description)));
}

TlsContext::TlsContext(SSL_CTX* ctx, TlsConfig config, std::shared_ptr<TicketKeys> ticket_keys,
                       std::string description)
    : ctx_(ctx),
      config_(std::move(config)),
      ticket_keys_(std::move(ticket_keys)),
      description_(std::move(description)) {}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

}  // namespace rs::net::tls
