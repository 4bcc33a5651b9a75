// Byte classes from the RFC 9110 / RFC 9112 / RFC 3986 grammars, as one compile-time table so
// that every hot loop in the parser is a single indexed load per byte.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace rs::http::chars {

enum : uint8_t {
  kTchar = 1 << 0,       // RFC 9110 5.6.2 token character
  kValue = 1 << 1,       // field-vchar / obs-text / SP / HTAB: may appear inside a field value
  kTarget = 1 << 2,      // may appear anywhere in a request-target we accept (pre-filter)
  kPchar = 1 << 3,       // RFC 3986 pchar without pct-encoded: unreserved / sub-delims / ":" / "@"
  kHex = 1 << 4,         // HEXDIG
  kRegName = 1 << 5,     // RFC 3986 reg-name without pct-encoded: unreserved / sub-delims
  kSchemeChar = 1 << 6,  // ALPHA / DIGIT / "+" / "-" / "."
};

constexpr std::array<uint8_t, 256> make_table() {
  std::array<uint8_t, 256> t{};
  const auto add = [&t](std::string_view set, uint8_t flag) {
    for (const char c : set) {
      t[static_cast<unsigned char>(c)] |= flag;
    }
  };
  constexpr std::string_view alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  constexpr std::string_view digit = "0123456789";
  constexpr std::string_view unreserved_extra = "-._~";
  constexpr std::string_view sub_delims = "!$&'()*+,;=";
  for (std::string_view set : {alpha, digit}) {
    add(set, kTchar | kTarget | kPchar | kRegName | kSchemeChar);
  }
  add("!#$%&'*+-.^_`|~", kTchar);
  add(unreserved_extra, kTarget | kPchar | kRegName);
  add(sub_delims, kTarget | kPchar | kRegName);
  add(":@", kTarget | kPchar);
  add("/?%[]", kTarget);
  add("+-.", kSchemeChar);
  add("0123456789ABCDEFabcdef", kHex);
  for (int c = 0x21; c <= 0x7e; ++c) {
    t[c] |= kValue;  // VCHAR
  }
  for (int c = 0x80; c <= 0xff; ++c) {
    t[c] |= kValue;  // obs-text
  }
  t[' '] |= kValue;
  t['\t'] |= kValue;
  return t;
}

inline constexpr std::array<uint8_t, 256> kTable = make_table();

constexpr bool has(char c, uint8_t flag) {
  return (kTable[static_cast<unsigned char>(c)] & flag) != 0;
}
constexpr bool is_tchar(char c) {
  return has(c, kTchar);
}
constexpr bool is_value_char(char c) {
  return has(c, kValue);
}
constexpr bool is_hex(char c) {
  return has(c, kHex);
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_ws(char c) {
  return c == ' ' || c == '\t';
}

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

constexpr char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) {
      return false;
    }
  }
  return true;
}

constexpr bool is_token(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (const char c : s) {
    if (!is_tchar(c)) {
      return false;
    }
  }
  return true;
}

// Strips optional whitespace (SP / HTAB) from both ends.
constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_ws(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace rs::http::chars
