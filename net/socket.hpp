// Socket set-up shared by every backend: listeners, per-socket options, the fd limit.
#pragma once

#include <cstdint>
#include <string>

#include "net/startup_error.hpp"

namespace rs::net {

// A non-blocking, close-on-exec TCP listener (IPv4 or IPv6 literal address). With reuse_port
// several loops can each own a listener on the same port. Throws StartupError.
// Accepted sockets inherit TCP_NODELAY from it, which saves a system call per connection.
int listen_tcp(const std::string& address, std::uint16_t port, bool reuse_port, int backlog);

std::uint16_t local_port(int fd);
// The address a socket is bound to, as a literal ("0.0.0.0", "::1"); empty when not IP.
std::string local_address(int fd);

struct FdLimit {
  std::uint64_t soft;
  std::uint64_t hard;
};
// Raises the soft RLIMIT_NOFILE to the hard limit and returns the limits now in force.
FdLimit raise_fd_limit();

// Descriptors kept aside for the process (log files, served files, the signalfd) and for each
// loop (listener, ring, eventfd, a few in flight).
constexpr std::uint64_t kReservedFds = 64;
constexpr std::uint64_t kReservedFdsPerLoop = 4;

// Throws StartupError when max_connections cannot be honoured under the fd limit.
void check_connection_cap(std::uint64_t max_connections, unsigned loops, const FdLimit& limit);

}  // namespace rs::net
