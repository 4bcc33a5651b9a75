#include "tests/support/http_client.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "tests/support/net_client.hpp"

namespace rs::test {

std::string HttpResponse::header(std::string_view name) const {
  const std::string key = "\r\n" + std::string(name) + ": ";
  const auto at = head.find(key);
  if (at == std::string::npos) return {};
  const auto end = head.find("\r\n", at + key.size());
  return head.substr(at + key.size(), end - at - key.size());
}

HttpResponse HttpReader::next(std::chrono::milliseconds timeout) {
  HttpResponse r;
  const auto deadline = Clock::now() + timeout;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return r;
  }
  r.head = buffer_.substr(0, end + 2);
  buffer_.erase(0, end + 4);
  r.status = std::atoi(r.head.c_str() + 9);
  const std::string length = r.header("Content-Length");
  const std::size_t n = length.empty() ? 0 : std::stoul(length);
  const bool bodiless =
      head_request_ || (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  if (!bodiless) {
    while (buffer_.size() < n) {
      if (!fill(deadline)) return r;
    }
    r.body = buffer_.substr(0, n);
    buffer_.erase(0, n);
  }
  r.ok = true;
  return r;
}

bool HttpReader::closed(std::chrono::milliseconds timeout) {
  return buffer_.empty() && wait_closed(fd_, timeout);
}

bool HttpReader::fill(Clock::time_point deadline) {
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) break;
    if (rc == 0 || errno != EINTR) return false;
  }
  std::vector<char> chunk(std::max<std::size_t>(read_bytes_, 1));
  const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
  if (n <= 0) return false;
  buffer_.append(chunk.data(), static_cast<std::size_t>(n));
  if (watch_) watch_();
  return true;
}

}  // namespace rs::test
