#include "tests/support/net_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace rs::test {

namespace {

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool poll_for(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

bool wait_until(const std::function<bool()>& pred, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

int connect_to(std::uint16_t port, int receive_buffer_bytes, int max_segment) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  // Before connect, so the window and the segment size the server sees hold from the handshake.
  if (receive_buffer_bytes > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
  }
  if (max_segment > 0) {
    ::setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &max_segment, sizeof(max_segment));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void bound_receives(int fd, milliseconds timeout) {
  timeval bound{};
  bound.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  bound.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

bool send_all(int fd, std::span<const std::byte> bytes, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!poll_for(fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

bool send_all(int fd, std::string_view text, milliseconds timeout) {
  return send_all(fd, std::as_bytes(std::span(text.data(), text.size())), timeout);
}

bool recv_exact(int fd, std::span<std::byte> out, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::recv(fd, out.data() + done, out.size() - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!poll_for(fd, POLLIN, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::string recv_string(int fd, std::size_t n, milliseconds timeout) {
  std::string s(n, '\0');
  if (!recv_exact(fd, std::as_writable_bytes(std::span(s.data(), s.size())), timeout)) return {};
  return s;
}

bool wait_closed(int fd, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  char sink[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return true;  // reset
    if (n < 0 && !poll_for(fd, POLLIN, deadline)) return false;
  }
}

std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed) {
  std::vector<std::byte> bytes(size);
  std::uint32_t x = seed * 2654435761U + 1;
  for (std::size_t i = 0; i < size; ++i) {
    x = x * 1103515245U + 12345U;
    bytes[i] = static_cast<std::byte>(x >> 23);
  }
  return bytes;
}

bool run_echo_jobs(std::vector<EchoJob>& jobs, std::size_t fragment, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<pollfd> fds(jobs.size());
  std::vector<std::byte> scratch(std::size_t{256} * 1024);
  for (auto& job : jobs)
    set_nonblocking(job.fd);
  for (;;) {
    std::size_t active = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      EchoJob& job = jobs[i];
      const bool done = job.failed || job.mismatch || job.received == job.payload.size();
      fds[i].fd = done ? -1 : job.fd;
      fds[i].events = static_cast<short>(POLLIN | (job.sent < job.payload.size() ? POLLOUT : 0));
      fds[i].revents = 0;
      if (!done) ++active;
    }
    if (active == 0) break;
    const int rc = ::poll(fds.data(), fds.size(), remaining_ms(deadline));
    if (rc == 0) return false;
    if (rc < 0) continue;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      EchoJob& job = jobs[i];
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      if ((fds[i].revents & POLLOUT) != 0 && job.sent < job.payload.size()) {
        const std::size_t n = std::min(fragment, job.payload.size() - job.sent);
        const ssize_t w = ::send(job.fd, job.payload.data() + job.sent, n, MSG_NOSIGNAL);
        if (w > 0) job.sent += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) job.failed = true;
      }
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const std::size_t want = std::min(scratch.size(), job.payload.size() - job.received);
        const ssize_t r = ::recv(job.fd, scratch.data(), want, 0);
        if (r > 0) {
          if (std::memcmp(scratch.data(), job.payload.data() + job.received,
                          static_cast<std::size_t>(r)) != 0) {
            job.mismatch = true;
          }
          job.received += static_cast<std::size_t>(r);
        } else if (r == 0 || errno != EAGAIN) {
          job.failed = true;
        }
      }
    }
  }
  for (const auto& job : jobs) {
    if (job.failed || job.mismatch || job.received != job.payload.size()) return false;
  }
  return true;
}

}  // namespace rs::test
