// The epoll floor: one thread, level-triggered epoll, read until the socket is empty, answer
// every request end in one write per connection per readiness event.
// Usage: floor-epoll [--port N]
#include <sys/epoll.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "perf/floors/floor_common.hpp"

namespace {

struct Conn {
  int fd = -1;
  floors::RequestEnds ends;
  std::string out;  // answers the socket has not taken yet
  bool want_out = false;
};

void close_conn(int epfd, std::vector<std::unique_ptr<Conn>>& conns, Conn& c) {
  ::epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  conns[static_cast<std::size_t>(c.fd)].reset();
}

// Writes what it can; asks for EPOLLOUT only while something is left.
bool flush(int epfd, Conn& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) break;
      return false;
    }
    c.out.erase(0, static_cast<std::size_t>(n));
    floors::g_sent_bytes += static_cast<std::uint64_t>(n);
  }
  const bool want = !c.out.empty();
  if (want != c.want_out) {
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0U);
    ev.data.fd = c.fd;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_out = want;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int lfd = floors::listen_on(floors::port_argument(argc, argv), SOCK_NONBLOCK);
  const int epfd = ::epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  std::vector<std::unique_ptr<Conn>> conns(1 << 16);
  floors::Answer answer;
  floors::announce(lfd);
  std::vector<epoll_event> events(512);
  static char buf[64 * 1024];
  while (floors::g_stop == 0) {
    const int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (cfd < 0) {
            if (errno != EAGAIN) floors::die("accept4");  // out of descriptors: say so
            break;
          }
          if (static_cast<std::size_t>(cfd) >= conns.size()) {
            ::close(cfd);
            continue;
          }
          const int one = 1;
          ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          conns[static_cast<std::size_t>(cfd)] = std::make_unique<Conn>();
          conns[static_cast<std::size_t>(cfd)]->fd = cfd;
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = cfd;
          ::epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      Conn* c = conns[static_cast<std::size_t>(fd)].get();
      if (c == nullptr) continue;
      bool open = true;
      if ((events[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        int ends = 0;
        for (;;) {
          const ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
          if (got > 0) {
            ends += c->ends.count(buf, static_cast<std::size_t>(got));
            if (static_cast<std::size_t>(got) < sizeof(buf)) break;
            continue;
          }
          if (got < 0 && errno == EAGAIN) break;
          open = false;  // end of input or an error
          break;
        }
        floors::append_answers(c->out, answer.bytes(), ends);
      }
      if (open) open = flush(epfd, *c);
      if (!open) close_conn(epfd, conns, *c);
    }
  }
  return floors::report_and_exit(answer.bytes().size());
}
