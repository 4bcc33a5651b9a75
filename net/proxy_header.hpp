// The PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer sends before the
// client's first byte, naming the client it accepted. A bounded parser over the bytes received so
// far: it keeps nothing, allocates nothing, and says as early as it can that the bytes cannot be
// a header (so a client that is not a proxy is cut at its first receive).
//
//   v1: "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n" (TCP6, or UNKNOWN and anything up to
//       the CRLF), at most 107 bytes.
//   v2: the 12-byte signature, version and command, family and transport, a 16-bit length, the
//       addresses, then TLVs (skipped); at most kMaxV2Bytes here.
//
// Only a v1 TCP4/TCP6 header and a v2 PROXY command over TCP on IPv4/IPv6 name a client; UNKNOWN,
// LOCAL (the balancer's own health check), UNSPEC, UNIX and UDP keep the socket's peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "net/ip_address.hpp"

namespace rs::net {

// What the connections of a ,proxy listener obey (ServerConfig::proxy; every loop shares it).
struct ProxyConfig {
  IpRanges trusted;  // the peers a PROXY header is taken from (--trusted-proxy)
  // From the accept to the end of the header (--handshake-timeout-ms); then a close, counted.
  std::uint64_t header_timeout_ms = 10000;
};

}  // namespace rs::net

namespace rs::net::proxy {

inline constexpr std::size_t kMaxV1Bytes = 107;
// 16 bytes of fixed part and up to 520 of addresses and TLVs: IPv6 addresses (36) leave room for
// the TLVs balancers add (ALPN, authority, unique id, SSL details); larger is refused.
inline constexpr std::size_t kMaxV2Bytes = 536;
inline constexpr std::size_t kMaxHeaderBytes = kMaxV2Bytes;

struct Header {
  enum class Status : std::uint8_t { kIncomplete, kDone, kBad };
  Status status = Status::kIncomplete;
  std::uint8_t version = 0;  // 1 or 2 once known
  std::uint16_t size = 0;    // kDone: the bytes the header took
  // kDone: the client, when the header names one (family kNone: keep the socket's peer).
  IpAddress source;
  std::uint16_t source_port = 0;
  const char* error = "";  // kBad: what is wrong, for the debug log
};

// Parses a header from the first bytes of a connection (all of them so far). kIncomplete: more
// bytes may make it whole (never with kMaxHeaderBytes or more given).
Header parse(std::span<const std::byte> bytes);

}  // namespace rs::net::proxy
