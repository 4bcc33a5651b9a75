#include "apps/service_manager.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string_view>

#include <fmt/format.h>

#include "core/log.hpp"
#include "net/socket.hpp"

namespace rs::apps {

namespace {

std::mutex status_mutex;
std::string last_status;  // under status_mutex: READY=1 after a reload says it again

void notify(const std::string& state) {
  // 0: NOTIFY_SOCKET stays set, for the notifications after this one. sd_notify returns 0
  // outside systemd; a failed send is worth a line, never a stop.
  if (const int rc = ::sd_notify(0, state.c_str()); rc < 0) {
    core::log_warn("sd_notify: {}", std::strerror(-rc));
  }
}

}  // namespace

void notify_ready(const std::string& status) {
  std::lock_guard lock(status_mutex);
  last_status = status;
  notify(fmt::format("READY=1\nSTATUS={}", status));
}

void notify_stopping() {
  notify("STOPPING=1\nSTATUS=stopping");
}

void notify_reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  // MONOTONIC_USEC: systemd 253's Type=notify-reload matches the reload to this message.
  const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                    static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  notify(fmt::format("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}", usec));
}

void notify_reloaded() {
  std::lock_guard lock(status_mutex);
  notify(fmt::format("READY=1\nSTATUS={}", last_status));
}

namespace {

// What systemd names a socket it was not told to name: "unknown" (no LISTEN_FDNAMES) or the
// socket unit's name ("ringserve-http.socket"). Such a socket is plain, as is one named so.
bool plain_name(std::string_view name) {
  return name == "plain" || name == "unknown" || name.ends_with(".socket");
}

net::ListenAddress inherited_listener(int fd, std::string_view name) {
  const auto bad = [fd, name](std::string_view why) {
    return net::StartupError(
        fmt::format("descriptor {} from systemd (LISTEN_FDS), named \"{}\": {}", fd, name, why));
  };
  if (::sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
    throw bad("not a listening stream socket; pass ListenStream= sockets (Accept=no)");
  }
  if (::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
    throw bad(
        "not a TCP socket; the server listens on IPv4 and IPv6 (ListenStream=PORT or "
        "ADDRESS:PORT)");
  }
  net::ListenAddress listener{
      .address = net::local_address(fd), .port = net::local_port(fd), .fd = fd};
  if (!plain_name(name)) {
    if (const std::string why = net::parse_listener_options(name, listener); !why.empty()) {
      throw bad(
          fmt::format("{}; name it (FileDescriptorName=) plain, tls, metrics or "
                      "tls,metrics",
                      why));
    }
  }
  // The loops expect what listen_tcp makes: non-blocking, close-on-exec, and TCP_NODELAY for
  // the connections accepted on it to inherit.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    throw bad(fmt::format("fcntl: {}", std::strerror(errno)));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return listener;
}

}  // namespace

std::vector<net::ListenAddress> inherited_listeners() {
  char** names = nullptr;
  // 1: LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES are unset, so nothing started later takes
  // them for its own. A LISTEN_PID that is not this process's means none are for it (0).
  const int count = ::sd_listen_fds_with_names(1, &names);
  if (count < 0) {
    throw net::StartupError(
        fmt::format("the sockets systemd passed (LISTEN_FDS, LISTEN_FDNAMES): {}; check the "
                    "socket units",
                    std::strerror(-count)));
  }
  const auto free_names = [&names, count] {
    for (int i = 0; names != nullptr && i < count; ++i)
      std::free(names[i]);
    std::free(static_cast<void*>(names));
    names = nullptr;
  };
  std::vector<net::ListenAddress> listeners;
  try {
    for (int i = 0; i < count; ++i) {
      listeners.push_back(
          inherited_listener(SD_LISTEN_FDS_START + i, names != nullptr ? names[i] : "unknown"));
    }
  } catch (...) {
    free_names();
    throw;
  }
  free_names();
  return listeners;
}

}  // namespace rs::apps
