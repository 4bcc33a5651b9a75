#include "net/http/forwarded_for.hpp"

#include <span>
#include <string_view>

#include "net/http/chars.hpp"
#include "net/http/request_head.hpp"

namespace rs::http {

namespace {}  // namespace

ForwardedFor find_forwarded_client(const RequestHead& head, const net::IpRanges& trusted,
                                   net::IpAddress& client) {
  std::size_t examined = 0;
  net::IpAddress leftmost;  // the last one examined: every one so far was trusted
  const std::span<const Header> fields = head.fields();
  for (auto field = fields.rbegin(); field != fields.rend(); ++field) {
    if (!chars::iequals(field->name, "X-Forwarded-For")) continue;
    std::string_view rest = field->value;
    while (!rest.empty()) {
      const std::size_t comma = rest.rfind(',');
      const std::string_view entry =
          chars::trim_ows(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
      if (entry.empty()) continue;  // "a, , b": the list rule allows empty elements
      if (++examined > kMaxForwardedForEntries) return ForwardedFor::kMalformed;
      net::IpAddress address;
      if (!address.parse(entry)) return ForwardedFor::kMalformed;
      if (!trusted.contains(address)) {
        client = address;
        return ForwardedFor::kFound;
      }
      leftmost = address;
    }
  }
  if (examined == 0) return ForwardedFor::kAbsent;
  client = leftmost;
  return ForwardedFor::kFound;
}

}  // namespace rs::http
