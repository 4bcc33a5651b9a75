// Meaning of the header fields that decide framing and connection handling (Content-Length,
// Transfer-Encoding, Connection, Expect). Kept apart from the byte-level scanner so each rule
// can be read next to the RFC text that demands it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "net/http/parse_error.hpp"

namespace rs::http {

// Walks a comma-separated list (RFC 9110 5.6.1), respecting quoted strings, yielding each element
// with surrounding whitespace removed. Empty elements are yielded too; callers decide.
class ListCursor {
 public:
  explicit ListCursor(std::string_view value) : rest_(value) {}
  // False when the list is exhausted; `malformed` reports an unterminated quoted string.
  bool next(std::string_view& element);
  bool malformed() const { return malformed_; }

 private:
  std::string_view rest_;
  bool done_ = false;
  bool malformed_ = false;
};

// Merges one Content-Length field line into `length`. RFC 9110 8.6 lets a recipient accept a
// list of identical values ("5, 5") or the same value on repeated lines; we do, because
// intermediaries really do produce them and the framing stays unambiguous. Anything else
// (empty, sign, hex, inner space, overflow, differing values) is kBadContentLength.
ParseError merge_content_length(std::string_view value, std::optional<uint64_t>& length);

// Transfer-Encoding field lines, accumulated as one list (RFC 9110 5.3: repeated lines are
// equivalent to one comma-joined line).
struct TransferCodings {
  bool present = false;
  bool malformed = false;
  int chunked_count = 0;
  bool last_is_chunked = false;
  bool other_coding = false;  // a coding we do not implement (gzip, deflate, ...)
};

void merge_transfer_encoding(std::string_view value, TransferCodings& codings);

// Verdict on the complete set: chunked must be the final coding and appear once (RFC 9112 6.1,
// 6.3, 7); any other coding is one we do not implement (RFC 9112 6.1: 501).
ParseError check_transfer_codings(const TransferCodings& codings);

struct ConnectionOptions {
  bool close = false;
  bool keep_alive = false;
};

// Connection is a comma list of case-insensitive tokens (RFC 9110 7.6.1).
void merge_connection(std::string_view value, ConnectionOptions& options);

// True when the Expect list holds "100-continue" (RFC 9110 10.1.1, case-insensitive).
bool has_100_continue(std::string_view value);

}  // namespace rs::http
