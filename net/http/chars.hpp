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
  kPathQuery = 1 << 7,   // pchar / "/" / "?" without pct-encoded: a byte of an origin-form target
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
  for (int c = 0; c < 256; ++c) {
    if ((t[c] & kPchar) != 0) {
      t[c] |= kPathQuery;
    }
  }
  add("/?", kPathQuery);
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

// A byte class of ASCII bytes as two 16-byte tables indexed by the low and the high nibble, for
// the SIMD byte-shuffle lookup (Muła's method): c is in the class when
// lo[c & 15] & hi[c >> 4] != 0. Bytes from 0x80 have hi[...] == 0 and are never in it.
struct NibbleTables {
  std::array<uint8_t, 16> lo{};
  std::array<uint8_t, 16> hi{};
};

// The class: bytes with `flag` in kTable, and the bytes of `extra`.
constexpr NibbleTables nibble_tables(uint8_t flag, std::string_view extra = {}) {
  NibbleTables n;
  for (int h = 0; h < 8; ++h) {
    n.hi[h] = static_cast<uint8_t>(1U << h);
    for (int l = 0; l < 16; ++l) {
      const int c = (h << 4) | l;
      if ((kTable[c] & flag) != 0 || extra.find(static_cast<char>(c)) != std::string_view::npos) {
        n.lo[l] |= n.hi[h];
      }
    }
  }
  return n;
}

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

inline constexpr std::array<int8_t, 256> kHexValue = [] {
  std::array<int8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[c] = c >= '0' && c <= '9'   ? static_cast<int8_t>(c - '0')
           : c >= 'a' && c <= 'f' ? static_cast<int8_t>(c - 'a' + 10)
           : c >= 'A' && c <= 'F' ? static_cast<int8_t>(c - 'A' + 10)
                                  : int8_t{-1};
  }
  return t;
}();

// 0-15 for a HEXDIG, -1 for anything else.
constexpr int hex_value(char c) {
  return kHexValue[static_cast<unsigned char>(c)];
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
