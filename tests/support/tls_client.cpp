#include "tests/support/tls_client.hpp"

#include "tests/support/net_client.hpp"

namespace rs::test {

TlsClient::TlsClient(int fd, const std::string& ca_file, int version, const char* suite) {
  bound_receives(fd);
  ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
  if (version != 0) {
    SSL_CTX_set_min_proto_version(ctx_.get(), version);
    SSL_CTX_set_max_proto_version(ctx_.get(), version);
  }
  if (suite != nullptr) SSL_CTX_set_ciphersuites(ctx_.get(), suite);
  ssl_.reset(SSL_new(ctx_.get()));
  SSL_set_fd(ssl_.get(), fd);
  SSL_set_tlsext_host_name(ssl_.get(), "localhost");
  SSL_set1_host(ssl_.get(), "localhost");
  SSL_set_msg_callback(ssl_.get(), &TlsClient::on_message);
  SSL_set_msg_callback_arg(ssl_.get(), this);
}

bool TlsClient::send(std::string_view text) {
  return SSL_write(ssl_.get(), text.data(), static_cast<int>(text.size())) ==
         static_cast<int>(text.size());
}

bool TlsClient::read_some(std::string& out) {
  char buffer[16384];
  const int got = SSL_read(ssl_.get(), buffer, sizeof(buffer));
  if (got <= 0) return false;
  out.append(buffer, static_cast<std::size_t>(got));
  return true;
}

bool TlsClient::read(std::size_t n, std::string& out) {
  while (out.size() < n) {
    if (!read_some(out)) return false;
  }
  return true;
}

int TlsClient::answer(std::string* body) {
  std::size_t end;
  while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
    if (!read_some(pending_)) return -1;
  }
  const std::string head = pending_.substr(0, end);
  const auto at = head.find("Content-Length: ");
  const std::size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 16));
  if (!read(end + 4 + length, pending_)) return -1;
  if (body != nullptr) *body = pending_.substr(end + 4, length);
  pending_.erase(0, end + 4 + length);
  return std::stoi(head.substr(9, 3));
}

bool TlsClient::closed_with_notify() {
  char c;
  const int got = SSL_read(ssl_.get(), &c, 1);
  return got == 0 && SSL_get_error(ssl_.get(), got) == SSL_ERROR_ZERO_RETURN;
}

void TlsClient::on_message(int write_p, int /*version*/, int content_type, const void* /*buf*/,
                           std::size_t /*len*/, SSL* /*ssl*/, void* arg) {
  // The record layer's header of each record received (SSL3_RT_HEADER), and its type byte.
  if (write_p == 0 && content_type == SSL3_RT_HEADER) ++static_cast<TlsClient*>(arg)->records_;
}

}  // namespace rs::test
