// What the tests of the perf load generators (echo-load, http-load) share: the one flat JSON
// line the tools print with --json, read by key, and loopback sockets to point them at.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace rs::test {

// A number from the line; NaN when the key is absent.
inline double json_number(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const auto at = json.find(needle);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(json.c_str() + at + needle.size(), nullptr);
}

// The line beginning {"tool":"TOOL" in a tool's stdout; empty when there is none.
inline std::string json_line_of(const std::string& out, const std::string& tool) {
  const auto at = out.find("{\"tool\":\"" + tool + "\"");
  if (at == std::string::npos) return {};
  return out.substr(at, out.find('\n', at) - at);
}

// A TCP socket bound to 127.0.0.1 on a port the kernel chose (in `port`), listening when
// `listen` is set; -1 on failure. A bound socket that does not listen refuses connects to its
// port at once: a port nothing serves, which no other test can take meanwhile.
inline int loopback_socket(bool listen, std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (listen && ::listen(fd, 16) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace rs::test
