// An IPv4 or IPv6 address in 17 bytes, and a bounded table of address ranges (CIDRs): what the
// PROXY protocol and X-Forwarded-For need to name a client and to ask whether a peer is trusted.
// Neither allocates after it is made.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rs::net {

struct IpAddress {
  enum Family : std::uint8_t { kNone, kV4, kV6 };

  // A literal: "10.0.0.1", "2001:db8::1" (no brackets, no port, no zone). False otherwise.
  bool parse(std::string_view text);
  // A socket's address; a v4-mapped v6 address (a v4 client of a dual-stack listener) is the v4
  // address it is. kNone for other families.
  static IpAddress from(const sockaddr_storage& address);
  // The socket address with `port`; AF_UNSPEC for kNone.
  sockaddr_storage to_sockaddr(std::uint16_t port) const;

  Family family = kNone;
  std::uint8_t bytes[16] = {};  // a v4 address in the first 4
};

// A fixed table of address ranges (--trusted-proxy): at most kMax, each an address and a prefix.
class IpRanges {
 public:
  static constexpr std::size_t kMax = 64;

  // "10.0.0.0/8", "::1/128", "127.0.0.1" (one address: /32 or /128). Throws StartupError naming
  // the range and what is wrong with it (also when the table is full). Bits below the prefix
  // must be zero ("10.1.0.0/8" is refused: it is probably a typo for /16).
  void add(std::string_view cidr, std::string_view flag = "--trusted-proxy");
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  bool contains(const IpAddress& address) const;
  bool contains(const sockaddr_storage& address) const {
    return contains(IpAddress::from(address));
  }

 private:
  struct Range {
    IpAddress base;
    std::uint8_t prefix_bits = 0;
  };
  std::array<Range, kMax> ranges_{};
  std::size_t count_ = 0;
};

}  // namespace rs::net
