#include "net/http/target.hpp"

#include "net/http/chars.hpp"

namespace rs::http {

namespace {

using chars::has;
using chars::is_digit;
using chars::is_hex;

// True when s[i] starts a valid pct-encoded triplet.
bool valid_pct(std::string_view s, size_t i) {
  return i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2]);
}

// Every byte is `flag`, one of `extra`, or part of a pct-encoded triplet.
bool all_chars(std::string_view s, uint8_t flag, std::string_view extra) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (!valid_pct(s, i)) {
        return false;
      }
      i += 2;
    } else if (!has(s[i], flag) && extra.find(s[i]) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// path-abempty [ "?" query ] (or absolute-path [ "?" query ] when it starts with "/").
bool split_path_query(std::string_view rest, TargetParts& parts) {
  const size_t question = rest.find('?');
  parts.path = rest.substr(0, question);
  if (question != std::string_view::npos) {
    parts.query = rest.substr(question + 1);
  }
  return all_chars(parts.path, chars::kPchar, "/") && all_chars(parts.query, chars::kPchar, "/?");
}

// dec-octet "." dec-octet "." dec-octet "." dec-octet, without leading zeros (RFC 3986 3.2.2).
bool valid_ipv4(std::string_view s) {
  for (int octet = 0; octet < 4; ++octet) {
    size_t len = 0;
    int value = 0;
    while (len < s.size() && is_digit(s[len]) && len < 3) {
      value = value * 10 + (s[len++] - '0');
    }
    if (len == 0 || value > 255 || (len > 1 && s[0] == '0')) {
      return false;
    }
    s.remove_prefix(len);
    if (octet < 3) {
      if (s.empty() || s[0] != '.') {
        return false;
      }
      s.remove_prefix(1);
    }
  }
  return s.empty();
}

// RFC 3986 IPv6address: eight 16-bit groups, one "::" standing for one or more zero groups,
// and an optional dotted IPv4 tail counting as two groups.
bool valid_ipv6(std::string_view s) {
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.starts_with("::")) {
    compressed = true;
    i = 2;
  } else if (s.starts_with(":")) {
    return false;
  }
  while (i < s.size()) {
    const size_t start = i;
    while (i < s.size() && is_hex(s[i])) {
      ++i;
    }
    if (i < s.size() && s[i] == '.') {
      if (!valid_ipv4(s.substr(start))) {
        return false;
      }
      groups += 2;
      break;
    }
    if (i == start || i - start > 4) {
      return false;
    }
    ++groups;
    if (i == s.size()) {
      break;
    }
    if (s[i++] != ':') {
      return false;
    }
    if (i < s.size() && s[i] == ':') {
      if (compressed) {
        return false;
      }
      compressed = true;
      ++i;
    } else if (i == s.size()) {
      return false;  // a single trailing colon
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

// IP-literal = "[" ( IPv6address / IPvFuture ) "]", without the brackets.
bool valid_ip_literal(std::string_view s) {
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) {
    const size_t dot = s.find('.');
    if (dot == std::string_view::npos || dot == 1 || dot + 1 == s.size()) {
      return false;
    }
    for (const char c : s.substr(1, dot - 1)) {
      if (!is_hex(c)) {
        return false;
      }
    }
    for (const char c : s.substr(dot + 1)) {
      if (!has(c, chars::kRegName) && c != ':') {
        return false;
      }
    }
    return true;
  }
  return valid_ipv6(s);
}

TargetParts parse_absolute_form(std::string_view target) {
  TargetParts parts;
  parts.form = TargetForm::kAbsolute;
  parts.error = ParseError::kBadTarget;
  const size_t colon = target.find(':');
  if (colon == std::string_view::npos) {
    return parts;
  }
  const std::string_view scheme = target.substr(0, colon);
  // Only http and https name resources this server can own; other schemes are not ours.
  if (!chars::iequals(scheme, "http") && !chars::iequals(scheme, "https")) {
    return parts;
  }
  std::string_view rest = target.substr(colon + 1);
  if (!rest.starts_with("//")) {
    return parts;
  }
  rest.remove_prefix(2);
  const size_t authority_end = rest.find_first_of("/?");
  parts.authority = rest.substr(0, authority_end);
  // userinfo in an http(s) URI: RFC 9110 4.2.4 says treat it as an error. '@' is legal nowhere
  // else in an authority, so its presence is enough.
  if (parts.authority.find('@') != std::string_view::npos) {
    return parts;
  }
  if (!is_valid_host(parts.authority, /*require_host=*/true)) {
    return parts;
  }
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (!split_path_query(rest, parts)) {
    return parts;
  }
  if (parts.path.empty()) {
    parts.path = "/";  // RFC 9112 3.2.1: an empty path means "/"
  }
  parts.error = ParseError::kNone;
  return parts;
}

}  // namespace

TargetParts parse_target(std::string_view method, std::string_view target) {
  TargetParts parts;
  if (method == "CONNECT") {
    parts.error = ParseError::kConnectUnsupported;
    return parts;
  }
  if (target.empty()) {
    parts.error = ParseError::kBadTarget;
    return parts;
  }
  if (target == "*") {
    parts.form = TargetForm::kAsterisk;
    parts.path = target;
    if (method != "OPTIONS") {
      parts.error = ParseError::kBadTarget;
    }
    return parts;
  }
  if (target[0] == '/') {
    if (!split_path_query(target, parts)) {
      parts.error = ParseError::kBadTarget;
    }
    return parts;
  }
  return parse_absolute_form(target);
}

bool is_valid_host(std::string_view value, bool require_host) {
  size_t i = 0;
  if (!value.empty() && value[0] == '[') {
    const size_t close = value.find(']');
    if (close == std::string_view::npos || !valid_ip_literal(value.substr(1, close - 1))) {
      return false;
    }
    i = close + 1;
  } else {
    while (i < value.size() && has(value[i], chars::kRegName)) {
      ++i;  // the common bytes first, in a tight loop
    }
    for (; i < value.size() && value[i] != ':'; ++i) {
      if (value[i] == '%') {
        if (!valid_pct(value, i)) {
          return false;
        }
        i += 2;
      } else if (!has(value[i], chars::kRegName)) {
        return false;
      }
    }
    if (require_host && i == 0) {
      return false;
    }
  }
  if (i == value.size()) {
    return true;
  }
  if (value[i] != ':') {
    return false;
  }
  for (const char c : value.substr(i + 1)) {
    if (!is_digit(c)) {
      return false;
    }
  }
  return true;
}

}  // namespace rs::http
