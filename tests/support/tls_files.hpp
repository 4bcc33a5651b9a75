// Certificates and keys for the TLS tests, made with the OpenSSL API (no openssl CLI needed)
// into a fresh temporary directory that goes away with the object.
#pragma once

#include <string>

namespace rs::test {

struct TlsFiles {
  // Makes the directory and every file below; throws std::runtime_error when it cannot.
  TlsFiles();
  ~TlsFiles();  // removes the directory and everything in it
  TlsFiles(const TlsFiles&) = delete;
  TlsFiles& operator=(const TlsFiles&) = delete;

  std::string dir;
  // Self-signed ECDSA P-256, CN=localhost, subjectAltName DNS:localhost and IP:127.0.0.1, valid
  // from an hour ago for 30 days; a client that trusts this file verifies the server.
  std::string cert;
  std::string key;            // its private key (PEM, unencrypted)
  std::string expired_cert;   // the same name and key, valid from 60 to 30 days ago
  std::string future_cert;    // the same name and key, valid from tomorrow for 30 days
  std::string other_key;      // a P-256 key that belongs to none of the certificates
  std::string encrypted_key;  // `key`, encrypted (AES-256-CBC) with the pass phrase "secret"
  std::string garbage;        // neither PEM nor DER: text
  std::string missing;        // a path in the directory where no file is
};

}  // namespace rs::test
