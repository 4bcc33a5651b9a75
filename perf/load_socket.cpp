#include "perf/load_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace rs::perf {

LoadSocket::~LoadSocket() {
  if (fd >= 0) ::close(fd);
}

int start_connect(LoadRing& ring, LoadSocket& socket, const ServerAddress& address,
                  std::uint64_t now_ns) {
  const int fd = ::socket(address.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  // Requests and messages leave as soon as they are issued; Nagle would hold back every
  // second one.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  socket.fd = fd;
  socket.connect_ns = now_ns;
  socket.connect_busy = true;
  io_uring_prep_connect(ring.sqe(&socket.connect_op), fd, address.sockaddr_ptr(), address.len);
  return 0;
}

void end_operations(LoadRing& ring, LoadSocket& socket) {
  if (socket.fd >= 0 && (socket.send_busy || socket.recv_busy)) ::shutdown(socket.fd, SHUT_RDWR);
  if (socket.connect_busy) io_uring_prep_cancel(ring.sqe(nullptr), &socket.connect_op, 0);
}

bool close_when_idle(LoadSocket& socket) {
  if (socket.fd < 0 || !socket.idle()) return false;
  ::close(socket.fd);
  socket.fd = -1;
  return true;
}

}  // namespace rs::perf
