#include "net/http/field_rules.hpp"

#include <limits>

#include "net/http/chars.hpp"

namespace rs::http {

namespace {

using chars::iequals;
using chars::is_ws;
using chars::trim_ows;

// Parses 1*DIGIT into a uint64_t; false on anything else, including overflow.
bool parse_decimal(std::string_view digits, uint64_t& out) {
  if (digits.empty()) {
    return false;
  }
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (const char c : digits) {
    if (!chars::is_digit(c)) {
      return false;
    }
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (kMax - digit) / 10) {
      return false;
    }
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// Skips a quoted-string starting at s[i] == '"'; returns the index after the closing quote,
// or npos when it is not terminated.
size_t skip_quoted(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      if (++i == s.size()) {
        return std::string_view::npos;
      }
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// transfer-parameter list after the coding name: *( OWS ";" OWS token BWS "=" BWS value ).
bool valid_coding_params(std::string_view s) {
  size_t i = 0;
  while (true) {
    while (i < s.size() && is_ws(s[i])) {
      ++i;
    }
    if (i == s.size()) {
      return true;
    }
    if (s[i++] != ';') {
      return false;
    }
    while (i < s.size() && is_ws(s[i])) {
      ++i;
    }
    const size_t name_begin = i;
    while (i < s.size() && chars::is_tchar(s[i])) {
      ++i;
    }
    if (i == name_begin) {
      return false;
    }
    while (i < s.size() && is_ws(s[i])) {
      ++i;
    }
    if (i == s.size() || s[i++] != '=') {
      return false;
    }
    while (i < s.size() && is_ws(s[i])) {
      ++i;
    }
    if (i < s.size() && s[i] == '"') {
      i = skip_quoted(s, i);
      if (i == std::string_view::npos) {
        return false;
      }
    } else {
      const size_t value_begin = i;
      while (i < s.size() && chars::is_tchar(s[i])) {
        ++i;
      }
      if (i == value_begin) {
        return false;
      }
    }
  }
}

}  // namespace

bool ListCursor::next(std::string_view& element) {
  if (done_) {
    return false;
  }
  size_t i = 0;
  while (i < rest_.size() && rest_[i] != ',') {
    if (rest_[i] == '"') {
      i = skip_quoted(rest_, i);
      if (i == std::string_view::npos) {
        malformed_ = true;
        i = rest_.size();
      }
    } else {
      ++i;
    }
  }
  element = trim_ows(rest_.substr(0, i));
  if (i == rest_.size()) {
    done_ = true;
  } else {
    rest_.remove_prefix(i + 1);
  }
  return true;
}

ParseError merge_content_length(std::string_view value, std::optional<uint64_t>& length) {
  uint64_t single = 0;
  if (parse_decimal(value, single)) {  // one number, as nearly every client sends it
    if (length.has_value() && *length != single) {
      return ParseError::kBadContentLength;
    }
    length = single;
    return ParseError::kNone;
  }
  ListCursor list(value);
  std::string_view element;
  while (list.next(element)) {
    uint64_t parsed = 0;
    if (!parse_decimal(element, parsed)) {
      return ParseError::kBadContentLength;
    }
    if (length.has_value() && *length != parsed) {
      return ParseError::kBadContentLength;
    }
    length = parsed;
  }
  return ParseError::kNone;
}

void merge_transfer_encoding(std::string_view value, TransferCodings& codings) {
  codings.present = true;
  if (iequals(value, "chunked")) {  // the common value, as the list below would read it
    ++codings.chunked_count;
    codings.last_is_chunked = true;
    return;
  }
  ListCursor list(value);
  std::string_view element;
  bool any = false;
  while (list.next(element)) {
    if (element.empty()) {
      continue;  // RFC 9110 5.6.1: recipients ignore empty list elements
    }
    any = true;
    size_t name_end = 0;
    while (name_end < element.size() && chars::is_tchar(element[name_end])) {
      ++name_end;
    }
    const std::string_view name = element.substr(0, name_end);
    const std::string_view params = element.substr(name_end);
    if (name.empty() || !valid_coding_params(params)) {
      codings.malformed = true;
      continue;
    }
    if (iequals(name, "chunked")) {
      // chunked takes no parameters (RFC 9112 7).
      if (!trim_ows(params).empty()) {
        codings.malformed = true;
      }
      ++codings.chunked_count;
      codings.last_is_chunked = true;
    } else {
      codings.other_coding = true;
      codings.last_is_chunked = false;
    }
  }
  if (!any || list.malformed()) {
    codings.malformed = true;
  }
}

ParseError check_transfer_codings(const TransferCodings& codings) {
  if (!codings.present) {
    return ParseError::kNone;
  }
  if (codings.malformed || codings.chunked_count != 1 || !codings.last_is_chunked) {
    return ParseError::kBadTransferEncoding;
  }
  if (codings.other_coding) {
    return ParseError::kUnsupportedTe;
  }
  return ParseError::kNone;
}

void merge_connection(std::string_view value, ConnectionOptions& options) {
  // One option, as nearly every client sends it: the list below would find just that.
  if (iequals(value, "keep-alive")) {
    options.keep_alive = true;
    return;
  }
  if (iequals(value, "close")) {
    options.close = true;
    return;
  }
  ListCursor list(value);
  std::string_view element;
  while (list.next(element)) {
    if (iequals(element, "close")) {
      options.close = true;
    }
    if (iequals(element, "keep-alive")) {
      options.keep_alive = true;
    }
  }
}

bool has_100_continue(std::string_view value) {
  ListCursor list(value);
  std::string_view element;
  while (list.next(element)) {
    if (iequals(element, "100-continue")) {
      return true;
    }
  }
  return false;
}

}  // namespace rs::http
