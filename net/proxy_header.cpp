#include "net/proxy_header.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace rs::net::proxy {

namespace {

using Status = Header::Status;

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t kV2FixedBytes = 16;

Header bad(std::uint8_t version, const char* why) {
  Header h;
  h.status = Status::kBad;
  h.version = version;
  h.error = why;
  return h;
}

Header incomplete(std::uint8_t version) {
  Header h;
  h.version = version;
  return h;
}

Header done(std::uint8_t version, std::size_t size) {
  Header h;
  h.status = Status::kDone;
  h.version = version;
  h.size = static_cast<std::uint16_t>(size);
  return h;
}

// The next field of a v1 line: up to the next single space (or the end); false when empty.
bool next_field(std::string_view& line, std::string_view& field) {
  const std::size_t space = line.find(' ');
  field = line.substr(0, space);
  line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  return !field.empty();
}

// A decimal port: 1 to 5 digits, at most 65535.
bool parse_port(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

Header parse_v1(std::string_view s) {
  const std::size_t prefix = std::min(s.size(), kV1Prefix.size());
  if (s.substr(0, prefix) != kV1Prefix.substr(0, prefix)) return bad(0, "not a PROXY header");
  const std::string_view window = s.substr(0, kMaxV1Bytes);
  const std::size_t end = window.find_first_of("\r\n");
  if (end == std::string_view::npos) {
    return s.size() >= kMaxV1Bytes ? bad(1, "v1: no CRLF within 107 bytes") : incomplete(1);
  }
  if (window[end] != '\r') return bad(1, "v1: a bare LF");
  if (end + 1 == window.size()) {  // the LF is yet to come, if it fits
    return end + 2 > kMaxV1Bytes ? bad(1, "v1: no CRLF within 107 bytes") : incomplete(1);
  }
  if (window[end + 1] != '\n') return bad(1, "v1: a CR without LF");
  std::string_view line = s.substr(kV1Prefix.size(), end - kV1Prefix.size());
  std::string_view protocol;
  if (!next_field(line, protocol)) return bad(1, "v1: no protocol");
  Header h = done(1, end + 2);
  if (protocol == "UNKNOWN") return h;  // the rest of the line is ignored (the spec says so)
  if (protocol != "TCP4" && protocol != "TCP6") return bad(1, "v1: not TCP4, TCP6 or UNKNOWN");
  std::string_view source, destination, source_port, destination_port;
  IpAddress ignored;
  std::uint16_t ignored_port = 0;
  if (!next_field(line, source) || !next_field(line, destination) ||
      !next_field(line, source_port) || !next_field(line, destination_port) || !line.empty() ||
      destination_port.data() + destination_port.size() != s.data() + end) {
    return bad(1, "v1: not four fields after the protocol, one space apart");
  }
  const IpAddress::Family family = protocol == "TCP4" ? IpAddress::kV4 : IpAddress::kV6;
  if (!h.source.parse(source) || h.source.family != family || !ignored.parse(destination) ||
      ignored.family != family) {
    return bad(1, "v1: an address that is not of the protocol's family");
  }
  if (!parse_port(source_port, h.source_port) || !parse_port(destination_port, ignored_port)) {
    return bad(1, "v1: a port that is not a number from 0 to 65535");
  }
  return h;
}

std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

Header parse_v2(const std::uint8_t* p, std::size_t n) {
  if (std::memcmp(p, kV2Signature, std::min(n, sizeof(kV2Signature))) != 0) {
    return bad(0, "not a PROXY header");
  }
  if (n > 12) {
    if ((p[12] >> 4) != 2) return bad(2, "v2: not version 2");
    if ((p[12] & 0xf) > 1) return bad(2, "v2: a command other than LOCAL or PROXY");
  }
  if (n > 13 && ((p[13] >> 4) > 3 || (p[13] & 0xf) > 2)) {
    return bad(2, "v2: an unknown address family or transport");
  }
  if (n < kV2FixedBytes) return incomplete(2);
  const std::size_t length = be16(p + 14);
  if (kV2FixedBytes + length > kMaxV2Bytes) return bad(2, "v2: longer than 536 bytes");
  if (n < kV2FixedBytes + length) return incomplete(2);
  Header h = done(2, kV2FixedBytes + length);
  const bool proxy = (p[12] & 0xf) == 1;
  const unsigned family = p[13] >> 4;
  const bool stream = (p[13] & 0xf) == 1;
  if (!proxy || !stream) return h;  // LOCAL, or not TCP: the socket's peer stays
  const std::uint8_t* addresses = p + kV2FixedBytes;
  if (family == 1) {
    if (length < 12) return bad(2, "v2: too short for IPv4 addresses");
    h.source.family = IpAddress::kV4;
    std::memcpy(h.source.bytes, addresses, 4);
    h.source_port = be16(addresses + 8);
  } else if (family == 2) {
    if (length < 36) return bad(2, "v2: too short for IPv6 addresses");
    h.source.family = IpAddress::kV6;
    std::memcpy(h.source.bytes, addresses, 16);
    h.source_port = be16(addresses + 32);
  }
  return h;  // UNSPEC or UNIX: the socket's peer stays
}

}  // namespace

Header parse(std::span<const std::byte> bytes) {
  if (bytes.empty()) return incomplete(0);
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (p[0] == kV2Signature[0]) return parse_v2(p, bytes.size());
  return parse_v1({reinterpret_cast<const char*>(p), bytes.size()});
}

}  // namespace rs::net::proxy
