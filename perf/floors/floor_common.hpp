// What both floor responders share: the listening socket, the canned answer and the count of
// request ends. A floor is the least work an I/O model can do for the lab's plaintext load: it
// answers every "\r\n\r\n" it sees with the same bytes ringserve-http sends for /plaintext, with
// no parsing, one batch of answers per connection per loop turn. scripts/bench.sh runs one
// beside each backend, so every run shows how far a backend is from its model's floor.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

namespace floors {

inline volatile std::sig_atomic_t g_stop = 0;
// Bytes of answers the kernel took: every answer has the same length, so at exit this says how
// many were sent, which the lab checks against the client's count.
inline std::uint64_t g_sent_bytes = 0;

inline void on_stop_signal(int /*signal*/) {
  g_stop = 1;
}

inline void die(const char* what) {
  std::fprintf(stderr, "floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Listens on 127.0.0.1:port (0: any free port); announce() tells the lab it is ready.
inline int listen_on(int port, int flags) {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGPIPE, SIG_IGN);
  const int fd = ::socket(AF_INET, SOCK_STREAM | flags, 0);
  if (fd < 0) die("socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("bind");
  if (::listen(fd, 4096) != 0) die("listen");
  return fd;
}

// "listening on 127.0.0.1 port N", once everything is set up.
inline void announce(int listen_fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening on 127.0.0.1 port %d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
}

inline int port_argument(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) == "--port") return std::atoi(argv[i + 1]);
  }
  return 0;
}

// ringserve-http's /plaintext answer, byte for byte; the Date is rewritten once a second.
class Answer {
 public:
  Answer() { refresh(); }
  std::string_view bytes() {
    const std::time_t now = std::time(nullptr);
    if (now != second_) refresh();
    return text_;
  }

 private:
  void refresh() {
    second_ = std::time(nullptr);
    char date[64];
    tm parts{};
    gmtime_r(&second_, &parts);
    std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &parts);
    text_ = std::string("HTTP/1.1 200 OK\r\nServer: ringserve\r\nDate: ") + date +
            "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
  }
  std::time_t second_ = 0;
  std::string text_;
};

// Counts "\r\n\r\n" across reads with memchr for each LF (glibc's is vectorised), looking back
// three bytes, into the previous read when needed. (An empty line right after a head would
// count twice; the lab's load never sends one.)
class RequestEnds {
 public:
  int count(const char* data, std::size_t n) {
    int ends = 0;
    const char* const end = data + n;
    for (const char* p = data;
         (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))) !=
         nullptr;
         ++p) {
      if (back(data, p, 1) == '\r' && back(data, p, 2) == '\n' && back(data, p, 3) == '\r') {
        ++ends;
      }
    }
    char last[3];
    for (int k = 0; k < 3; ++k) {
      last[k] = back(data, end, 3 - k);
    }
    std::memcpy(tail_, last, sizeof(tail_));
    return ends;
  }

 private:
  // The byte `k` (1 to 3) before p, which may lie in the previous read.
  char back(const char* data, const char* p, int k) const {
    const std::ptrdiff_t at = (p - data) - k;
    return at >= 0 ? data[at] : tail_[3 + at];
  }
  char tail_[3] = {};
};

// Appends `times` answers to `out`.
inline void append_answers(std::string& out, std::string_view answer, int times) {
  for (int i = 0; i < times; ++i)
    out.append(answer);
}

inline int report_and_exit(std::size_t answer_bytes) {
  std::printf("answered %llu\n", static_cast<unsigned long long>(g_sent_bytes / answer_bytes));
  return 0;
}

}  // namespace floors
