// Size limits of one request. Each one bounds memory or work an unauthenticated peer can cause.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rs::http {

struct Limits {
  // Request line without its CRLF; over it: 414. Leading empty lines count separately (400).
  size_t max_request_line_bytes = 8192;
  // Field lines plus the final empty line; over it: 431. Also bounds a chunked trailer section.
  size_t max_header_bytes = 16384;
  // Field lines; over it: 431. Capped at kMaxHeaderFields (the size of RequestHead::headers).
  size_t max_header_fields = 100;
  // Decoded body; over it: 413.
  uint64_t max_body_bytes = uint64_t{1} << 20;
  // One chunk-size line with its extensions, without CRLF; over it: 400 (bad_chunk).
  size_t max_chunk_line_bytes = 4096;
};

// The longest head the parser can accept under `limits`: leading empty lines (up to
// max_request_line_bytes of them), the request line and its CRLF, and the header block. A head
// buffer this large never fills up before the parser has decided.
constexpr size_t max_head_bytes(const Limits& limits) {
  return 2 * limits.max_request_line_bytes + 2 + limits.max_header_bytes;
}

}  // namespace rs::http
