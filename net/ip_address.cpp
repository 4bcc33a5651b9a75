#include "net/ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "net/startup_error.hpp"

namespace rs::net {

bool IpAddress::parse(std::string_view text) {
  // inet_pton wants a C string; the longest v6 literal (v4 tail included) is 45 characters.
  char buffer[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof(buffer)) return false;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  const bool v6 = text.find(':') != std::string_view::npos;
  std::uint8_t parsed[16] = {};
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, buffer, parsed) != 1) return false;
  std::memcpy(bytes, parsed, sizeof(bytes));
  family = v6 ? kV6 : kV4;
  return true;
}

IpAddress IpAddress::from(const sockaddr_storage& address) {
  IpAddress a;
  if (address.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(address);
    std::memcpy(a.bytes, &in.sin_addr, 4);
    a.family = kV4;
  } else if (address.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      std::memcpy(a.bytes, &in6.sin6_addr.s6_addr[12], 4);
      a.family = kV4;
    } else {
      std::memcpy(a.bytes, &in6.sin6_addr, 16);
      a.family = kV6;
    }
  }
  return a;
}

sockaddr_storage IpAddress::to_sockaddr(std::uint16_t port) const {
  sockaddr_storage out{};
  if (family == kV4) {
    auto& in = reinterpret_cast<sockaddr_in&>(out);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, bytes, 4);
  } else if (family == kV6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, bytes, 16);
  }
  return out;
}

namespace {

// Whether the first `bits` bits of a and b agree.
bool same_prefix(const std::uint8_t* a, const std::uint8_t* b, unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return ((a[whole] ^ b[whole]) & mask) == 0;
}

}  // namespace

void IpRanges::add(std::string_view cidr, std::string_view flag) {
  const auto bad = [&](std::string_view why) {
    return StartupError(
        fmt::format("{} {}: {}; write ADDRESS[/BITS], e.g. 10.0.0.0/8, 192.168.1.7 or ::1/128",
                    flag, cidr, why));
  };
  if (count_ == kMax) throw bad(fmt::format("more than {} ranges", kMax));
  const std::size_t slash = cidr.find('/');
  Range range;
  if (!range.base.parse(cidr.substr(0, slash))) {
    throw bad("not an IPv4 or IPv6 address literal (names are not resolved)");
  }
  const unsigned max_bits = range.base.family == IpAddress::kV4 ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view text = cidr.substr(slash + 1);
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bits);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
        bits > max_bits) {
      throw bad(fmt::format("the prefix is a number of bits from 0 to {}", max_bits));
    }
  }
  IpAddress masked = range.base;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned from = i * 8;
    if (from >= bits) {
      masked.bytes[i] = 0;
    } else if (bits - from < 8) {
      masked.bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - (bits - from)));
    }
  }
  if (std::memcmp(masked.bytes, range.base.bytes, 16) != 0) {
    throw bad(fmt::format("bits are set below the /{} prefix", bits));
  }
  range.prefix_bits = static_cast<std::uint8_t>(bits);
  ranges_[count_++] = range;
}

bool IpRanges::contains(const IpAddress& address) const {
  if (address.family == IpAddress::kNone) return false;
  for (std::size_t i = 0; i < count_; ++i) {
    const Range& r = ranges_[i];
    if (r.base.family == address.family &&
        same_prefix(r.base.bytes, address.bytes, r.prefix_bits)) {
      return true;
    }
  }
  return false;
}

}  // namespace rs::net
