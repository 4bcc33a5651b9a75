// The parsed request head: every string is a view into the block the parser was given, so it is
// valid only while that block is unchanged and alive.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace rs::http {

// Fixed capacity of RequestHead::headers; Limits::max_header_fields may only lower it.
inline constexpr size_t kMaxHeaderFields = 100;

enum class TargetForm : uint8_t {
  kOrigin,    // "/path?query"                   (RFC 9112 3.2.1)
  kAbsolute,  // "http://host:port/path?query"   (RFC 9112 3.2.2), http and https only
  kAsterisk,  // "*", OPTIONS only               (RFC 9112 3.2.4)
};

struct Header {
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // leading and trailing whitespace removed
};

struct RequestHead {
  std::string_view method;  // any token; case-sensitive (RFC 9110 9.1)
  std::string_view target;  // request-target exactly as received
  TargetForm form = TargetForm::kOrigin;
  std::string_view path;   // absolute path; "/" for empty absolute-form path, "*" for asterisk
  std::string_view query;  // after "?", without it; empty when absent
  int version_major = 1;
  int version_minor = 1;
  std::array<Header, kMaxHeaderFields> headers{};
  size_t header_count = 0;
  // Authority to serve: the target's authority in absolute-form (RFC 9112 3.2.2 says it wins
  // over Host), otherwise the Host field value; empty for HTTP/1.0 without Host.
  std::string_view host;
  bool keep_alive = true;
  bool expect_continue = false;  // "Expect: 100-continue" on HTTP/1.1
  bool chunked = false;
  std::optional<uint64_t> content_length;

  std::span<const Header> fields() const { return {headers.data(), header_count}; }
  // First field with this name, compared case-insensitively; nullptr when absent.
  const Header* find_header(std::string_view name) const;
  // Value of find_header(name), or nullopt.
  std::optional<std::string_view> header_value(std::string_view name) const;
};

}  // namespace rs::http
