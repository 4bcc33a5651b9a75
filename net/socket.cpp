#include "net/socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace rs::net {

namespace {

[[noreturn]] void fail(int fd, const std::string& message) {
  if (fd >= 0) ::close(fd);
  throw StartupError(message);
}

}  // namespace

int listen_tcp(const std::string& address, std::uint16_t port, bool reuse_port, int backlog) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof(sockaddr_in6);
  } else {
    throw StartupError(fmt::format(
        "--address {}: not an IPv4 or IPv6 address (use a literal such as 127.0.0.1 or ::1)",
        address));
  }
  const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(-1, fmt::format("socket(): {}", std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    fail(fd, fmt::format("SO_REUSEPORT: {}", std::strerror(errno)));
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    const int err = errno;
    std::string advice = err == EADDRINUSE ? "; another process holds the port: pick another "
                                             "--port, or --port 0 for any free one"
                         : err == EACCES   ? "; ports below 1024 need root or CAP_NET_BIND_SERVICE"
                         : err == EADDRNOTAVAIL ? "; the address is not on this machine"
                                                : "";
    fail(fd,
         fmt::format("cannot bind {} port {}: {}{}", address, port, std::strerror(err), advice));
  }
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::listen(fd, backlog) != 0) fail(fd, fmt::format("listen(): {}", std::strerror(errno)));
  return fd;
}

std::uint16_t local_port(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return 0;
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

std::string local_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return {};
  char text[INET6_ADDRSTRLEN] = {};
  const void* address = nullptr;
  if (storage.ss_family == AF_INET6) {
    address = &reinterpret_cast<sockaddr_in6*>(&storage)->sin6_addr;
  } else if (storage.ss_family == AF_INET) {
    address = &reinterpret_cast<sockaddr_in*>(&storage)->sin_addr;
  }
  if (address == nullptr ||
      ::inet_ntop(storage.ss_family, address, text, sizeof(text)) == nullptr) {
    return {};
  }
  return text;
}

FdLimit raise_fd_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return FdLimit{static_cast<std::uint64_t>(limit.rlim_cur),
                 static_cast<std::uint64_t>(limit.rlim_max)};
}

void check_connection_cap(std::uint64_t max_connections, unsigned loops, const FdLimit& limit) {
  const std::uint64_t reserved = kReservedFds + kReservedFdsPerLoop * loops;
  if (limit.soft <= reserved || max_connections > limit.soft - reserved) {
    throw StartupError(fmt::format(
        "--max-connections {} is above what the open-file limit allows ({} descriptors, {} kept "
        "for the server itself): lower --max-connections to at most {}, or raise the hard limit "
        "(ulimit -Hn, LimitNOFILE= in a systemd unit)",
        max_connections, limit.soft, reserved, limit.soft > reserved ? limit.soft - reserved : 0));
  }
}

}  // namespace rs::net
