#include "tests/support/tls_files.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "tests/support/openssl_ptr.hpp"

namespace rs::test {
namespace {

constexpr long kHour = 3600;
constexpr long kDay = 24 * kHour;

[[noreturn]] void fail(const std::string& what) {
  char reason[256] = "no reason given";
  if (const unsigned long code = ERR_get_error()) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  throw std::runtime_error("TlsFiles: " + what + ": " + reason);
}

KeyPtr make_p256_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EVP_EC_gen(P-256)");
  return key;
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);  // self-signed: issuer is the subject
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) fail(std::string("extension ") + value);
  X509_EXTENSION_free(ext);
}

// A self-signed CN=localhost certificate for `key`, valid from now + from_s for days_valid.
CertPtr make_cert(EVP_PKEY* key, long from_s, long days_valid) {
  CertPtr cert(X509_new());
  if (!cert) fail("X509_new");
  unsigned char serial[8];
  if (RAND_bytes(serial, sizeof(serial)) != 1) fail("RAND_bytes");
  serial[0] &= 0x7f;  // a positive serial
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  const bool serial_set =
      bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (!serial_set) fail("serial number");
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  const bool named =
      X509_set_subject_name(cert.get(), name) == 1 && X509_set_issuer_name(cert.get(), name) == 1;
  X509_NAME_free(name);
  if (!named || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_s) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), from_s + days_valid * kDay) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    fail("certificate fields");
  }
  // No keyUsage: a self-signed leaf that is also its own trust anchor must be allowed to have
  // signed itself.
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), NID_subject_key_identifier, "hash");
  add_extension(cert.get(), NID_authority_key_identifier, "keyid:always");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0) fail("X509_sign");
  return cert;
}

BioPtr open_for_writing(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "w"));
  if (!bio) fail("open " + path);
  return bio;
}

void write_cert(const std::string& path, X509* cert) {
  if (PEM_write_bio_X509(open_for_writing(path).get(), cert) != 1) fail("write " + path);
}

void write_key(const std::string& path, EVP_PKEY* key, const char* pass_phrase = nullptr) {
  const EVP_CIPHER* cipher = pass_phrase != nullptr ? EVP_aes_256_cbc() : nullptr;
  if (PEM_write_bio_PrivateKey(open_for_writing(path).get(), key, cipher, nullptr, 0, nullptr,
                               const_cast<char*>(pass_phrase)) != 1) {
    fail("write " + path);
  }
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ringserve-tls-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("TlsFiles: mkdtemp " + pattern + ": " +
                             std::error_code(errno, std::generic_category()).message());
  }
  return pattern;
}

}  // namespace

TlsFiles::TlsFiles() : dir(make_temp_dir()) {
  cert = dir + "/cert.pem";
  key = dir + "/key.pem";
  expired_cert = dir + "/expired-cert.pem";
  future_cert = dir + "/future-cert.pem";
  other_key = dir + "/other-key.pem";
  encrypted_key = dir + "/encrypted-key.pem";
  garbage = dir + "/garbage.pem";
  missing = dir + "/no-such-file.pem";

  try {
    const KeyPtr leaf_key = make_p256_key();
    write_key(key, leaf_key.get());
    write_key(encrypted_key, leaf_key.get(), "secret");
    write_cert(cert, make_cert(leaf_key.get(), -kHour, 30).get());
    write_cert(expired_cert, make_cert(leaf_key.get(), -60 * kDay, 30).get());
    write_cert(future_cert, make_cert(leaf_key.get(), kDay, 30).get());
    write_key(other_key, make_p256_key().get());
    std::ofstream(garbage) << "this is not a certificate\n";
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);  // the destructor will not run
    throw;
  }
}

TlsFiles::~TlsFiles() {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace rs::test
