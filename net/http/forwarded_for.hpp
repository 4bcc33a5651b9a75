// The client X-Forwarded-For names, for the access log, when the socket's peer is a trusted
// proxy (--trust-x-forwarded-for with --trusted-proxy). As nginx's realip module finds it with
// real_ip_recursive on: the fields are joined in order, and the list is walked from the right,
// past the addresses that are themselves trusted proxies, to the first that is not; if every one
// is trusted, the leftmost. Bounded: at most kMaxForwardedForEntries entries are examined. An
// entry that is not an IPv4 or IPv6 literal (or a list that goes past the bound) leaves the
// address as it was: a malformed chain names nobody.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/ip_address.hpp"

namespace rs::http {

struct RequestHead;

inline constexpr std::size_t kMaxForwardedForEntries = 16;

enum class ForwardedFor : std::uint8_t {
  kAbsent,     // no X-Forwarded-For (or only empty entries)
  kFound,      // `client` is the address it names
  kMalformed,  // an entry that is not an address, or more than kMaxForwardedForEntries
};

// Reads the head's X-Forwarded-For fields (while its views are alive); nothing allocates.
ForwardedFor find_forwarded_client(const RequestHead& head, const net::IpRanges& trusted,
                                   net::IpAddress& client);

}  // namespace rs::http
