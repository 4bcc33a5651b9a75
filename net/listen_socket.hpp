// A listening socket as a loop holds it, and what the connections accepted on it are for.
#pragma once

#include <cstdint>

namespace rs::net {

// What a listener's connections are for; the protocol asks (Connection::listener_use()).
enum class ListenerUse : std::uint8_t {
  kServe,    // the protocol's requests
  kMetrics,  // only the server's metrics (a ,metrics listener: the Prometheus convention)
};

// A socket a loop accepts on (or one it accepted): whether its connections speak TLS, whether
// they begin with a PROXY protocol header (net/proxy_header.hpp), and what they are for. An
// accepted socket is its listener's copy with the fd replaced.
struct ListenSocket {
  int fd = -1;
  bool tls = false;
  bool proxy = false;
  ListenerUse use = ListenerUse::kServe;
};

}  // namespace rs::net
