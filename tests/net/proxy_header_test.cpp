// The PROXY protocol header parser (v1 and v2): whole headers, every prefix of one (incomplete,
// never bad), the bounds, and the malformed ones, each refused as early as the bytes allow.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "net/proxy_header.hpp"

namespace rs::net::proxy {
namespace {

using Status = Header::Status;

Header parse_text(std::string_view text) {
  return parse({reinterpret_cast<const std::byte*>(text.data()), text.size()});
}

std::string address_text(const IpAddress& a) {
  char out[64] = {};
  const sockaddr_storage s = a.to_sockaddr(0);
  if (a.family == IpAddress::kV4) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(s).sin_addr, out, sizeof(out));
  } else if (a.family == IpAddress::kV6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(s).sin6_addr, out, sizeof(out));
  }
  return out;
}

// A v2 header: version 2, `command` (0 LOCAL, 1 PROXY), `family_transport` (0x11 TCP over IPv4,
// 0x21 TCP over IPv6, ...), then `payload` (addresses and TLVs) with its length.
std::string v2(std::uint8_t command, std::uint8_t family_transport, const std::string& payload) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(family_transport);
  h += static_cast<char>(payload.size() >> 8);
  h += static_cast<char>(payload.size() & 0xff);
  return h + payload;
}

std::string v4_addresses() {
  // 192.0.2.1:51234 -> 198.51.100.7:443
  return std::string("\xc0\x00\x02\x01\xc6\x33\x64\x07\xc8\x22\x01\xbb", 12);
}

std::string v6_addresses() {
  // [2001:db8::1]:12345 -> [2001:db8::2]:80
  std::string a(36, '\0');
  for (const std::size_t at : {0, 16}) {
    a[at] = 0x20;
    a[at + 1] = 0x01;
    a[at + 2] = 0x0d;
    a[at + 3] = static_cast<char>(0xb8);
  }
  a[15] = 1;
  a[31] = 2;
  a[32] = 0x30;
  a[33] = 0x39;
  a[35] = 0x50;
  return a;
}

// Every proper prefix of a good header is incomplete, not bad.
void expect_prefixes_incomplete(const std::string& header) {
  for (std::size_t n = 0; n < header.size(); ++n) {
    EXPECT_EQ(parse_text(std::string_view(header).substr(0, n)).status, Status::kIncomplete)
        << "prefix of " << n << " bytes";
  }
}

TEST(ProxyHeaderV1, Tcp4NamesTheSourceAndTakesTheLineOnly) {
  const std::string header = "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n";
  const Header h = parse_text(header + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.size, header.size());
  EXPECT_EQ(address_text(h.source), "192.0.2.1");
  EXPECT_EQ(h.source_port, 51234);
  expect_prefixes_incomplete(header);
}

TEST(ProxyHeaderV1, Tcp6AndUnknown) {
  const Header six = parse_text("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
  ASSERT_EQ(six.status, Status::kDone) << six.error;
  EXPECT_EQ(address_text(six.source), "2001:db8::1");
  EXPECT_EQ(six.source_port, 1);
  const Header unknown =
      parse_text("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n");
  ASSERT_EQ(unknown.status, Status::kDone) << unknown.error;
  EXPECT_EQ(unknown.source.family, IpAddress::kNone) << "UNKNOWN keeps the socket's peer";
  const Header bare = parse_text("PROXY UNKNOWN\r\n");
  ASSERT_EQ(bare.status, Status::kDone);
  EXPECT_EQ(bare.size, 15);
}

TEST(ProxyHeaderV1, LongestLineIsTakenOneMoreIsNot) {
  // The longest the spec allows: "PROXY UNKNOWN" and padding up to 107 bytes with the CRLF.
  std::string longest = "PROXY UNKNOWN ";
  longest.append(kMaxV1Bytes - longest.size() - 2, 'x');
  longest += "\r\n";
  ASSERT_EQ(longest.size(), kMaxV1Bytes);
  EXPECT_EQ(parse_text(longest).status, Status::kDone);
  const std::string too_long =
      "PROXY UNKNOWN " + std::string(kMaxV1Bytes - 14 - 1, 'x') + "\r\n";  // 108 bytes
  EXPECT_EQ(parse_text(too_long).status, Status::kBad);
  // Without its CRLF, as soon as 107 bytes are in.
  EXPECT_EQ(parse_text(too_long.substr(0, kMaxV1Bytes - 1)).status, Status::kIncomplete);
  EXPECT_EQ(parse_text(too_long.substr(0, kMaxV1Bytes)).status, Status::kBad);
}

TEST(ProxyHeaderV1, MalformedLinesAreBad) {
  for (const char* text : {
           "GET / HTTP/1.1\r\n",
           "PROXY\r\n",
           "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
           "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
           "PROXY \r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
           "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 x\r\n",
           "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
           "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
           "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
           "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
           "PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
       }) {
    const Header h = parse_text(text);
    EXPECT_EQ(h.status, Status::kBad) << text;
    EXPECT_STRNE(h.error, "") << text;
  }
}

TEST(ProxyHeaderV1, NotAHeaderIsRefusedAtItsFirstByte) {
  EXPECT_EQ(parse_text("G").status, Status::kBad);
  EXPECT_EQ(parse_text("PROXX").status, Status::kBad);
  EXPECT_EQ(parse_text("PROX").status, Status::kIncomplete);
  EXPECT_EQ(parse_text("").status, Status::kIncomplete);
}

TEST(ProxyHeaderV2, ProxyOverTcp4NamesTheSourceAndSkipsTlvs) {
  const std::string tlvs = std::string("\x01\x00\x02h2", 5) + std::string("\x04\x00\x00", 3);
  const std::string header = v2(1, 0x11, v4_addresses() + tlvs);
  const Header h = parse_text(header + "rest");
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.size, header.size());
  EXPECT_EQ(address_text(h.source), "192.0.2.1");
  EXPECT_EQ(h.source_port, 51234);
  expect_prefixes_incomplete(header);
}

TEST(ProxyHeaderV2, ProxyOverTcp6NamesTheSource) {
  const Header h = parse_text(v2(1, 0x21, v6_addresses()));
  ASSERT_EQ(h.status, Status::kDone) << h.error;
  EXPECT_EQ(address_text(h.source), "2001:db8::1");
  EXPECT_EQ(h.source_port, 12345);
}

TEST(ProxyHeaderV2, LocalUnspecUnixAndUdpKeepTheSocketPeer) {
  for (const std::string& header : {
           v2(0, 0x00, ""),                     // LOCAL: a health check
           v2(0, 0x11, v4_addresses()),         // LOCAL with addresses: still the peer
           v2(1, 0x00, ""),                     // PROXY, UNSPEC
           v2(1, 0x31, std::string(216, 'u')),  // PROXY, UNIX stream
           v2(1, 0x12, v4_addresses()),         // PROXY, UDP over IPv4
       }) {
    const Header h = parse_text(header);
    ASSERT_EQ(h.status, Status::kDone) << h.error;
    EXPECT_EQ(h.size, header.size());
    EXPECT_EQ(h.source.family, IpAddress::kNone);
  }
}

TEST(ProxyHeaderV2, LengthUpToTheBoundIsTakenBeyondItIsBadAtOnce) {
  const std::string longest = v2(1, 0x11, v4_addresses() + std::string(kMaxV2Bytes - 28, '\0'));
  ASSERT_EQ(longest.size(), kMaxV2Bytes);
  EXPECT_EQ(parse_text(longest).status, Status::kDone);
  const std::string over = v2(1, 0x11, v4_addresses() + std::string(kMaxV2Bytes - 27, '\0'));
  // Bad as soon as the length is in, without waiting for the bytes it announces.
  EXPECT_EQ(parse_text(over.substr(0, 16)).status, Status::kBad);
  EXPECT_EQ(parse_text(v2(1, 0x11, std::string(65535, '\0'))).status, Status::kBad);
}

TEST(ProxyHeaderV2, MalformedHeadersAreBad) {
  std::string wrong_signature = v2(1, 0x11, v4_addresses());
  wrong_signature[7] = 'X';
  std::string version1 = v2(1, 0x11, v4_addresses());
  version1[12] = 0x11;
  std::string command2 = v2(1, 0x11, v4_addresses());
  command2[12] = 0x22;
  for (const std::string& header : {
           wrong_signature, version1, command2, v2(1, 0x41, v4_addresses()),  // family 4
           v2(1, 0x13, v4_addresses()),                                       // transport 3
           v2(1, 0x11, std::string(11, '\0')),  // too short for IPv4 addresses
           v2(1, 0x21, v4_addresses()),         // too short for IPv6 addresses
       }) {
    const Header h = parse_text(header);
    EXPECT_EQ(h.status, Status::kBad) << testing::PrintToString(header);
    EXPECT_STRNE(h.error, "");
  }
  // A wrong signature byte is bad as soon as it arrives.
  EXPECT_EQ(parse_text(wrong_signature.substr(0, 8)).status, Status::kBad);
  EXPECT_EQ(parse_text(wrong_signature.substr(0, 7)).status, Status::kIncomplete);
}

}  // namespace
}  // namespace rs::net::proxy
