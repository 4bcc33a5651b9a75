#include "perf/http_response_parser.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace rs::perf {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// `text` equals the lower-case `word`, ignoring case.
bool equals_lower(std::string_view text, std::string_view word) {
  return text.size() == word.size() && std::equal(text.begin(), text.end(), word.begin(),
                                                  [](char a, char b) { return lower(a) == b; });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Whether the comma-separated list `value` has `token` (lower case) among its elements, or,
// with last_only, as its last element (a transfer coding list says chunked last).
bool list_has(std::string_view value, std::string_view token, bool last_only) {
  bool found = false;
  while (!value.empty()) {
    const std::size_t comma = std::min(value.find(','), value.size());
    found = equals_lower(trim_ows(value.substr(0, comma)), token);
    if (found && !last_only) return true;
    value.remove_prefix(std::min(value.size(), comma + 1));
  }
  return found;
}

// Ten digits past a terabyte: no response a load generator meets is longer, and it cannot
// overflow.
constexpr std::size_t kMaxLengthDigits = 15;
constexpr std::uint64_t kMaxChunkSize = std::uint64_t{1} << 48;

}  // namespace

void HttpResponseParser::start_response() {
  state_ = State::kStatusLine;
  started_ = false;
  chunked_ = false;
  has_length_ = false;
  has_coding_ = false;
  close_ = false;
  http10_ = false;
  keep_alive_ = false;
  status_ = 0;
  length_ = 0;
  remaining_ = 0;
  line_size_ = 0;
}

bool HttpResponseParser::take_line(const char*& p, const char* end) {
  const auto* lf =
      static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
  const char* stop = lf != nullptr ? lf : end;
  const auto n = static_cast<std::size_t>(stop - p);
  if (line_size_ < kLineBytes)
    std::memcpy(line_ + line_size_, p, std::min(n, kLineBytes - line_size_));
  line_size_ += n;
  p = lf != nullptr ? lf + 1 : end;
  return lf != nullptr;
}

std::string_view HttpResponseParser::line() const {
  std::size_t n = std::min(line_size_, kLineBytes);
  if (n == line_size_ && n > 0 && line_[n - 1] == '\r') --n;
  return {line_, n};
}

HttpResponseParser::Result HttpResponseParser::feed(const char* data, std::size_t size,
                                                    std::size_t& used) {
  if (state_ == State::kComplete) start_response();
  const char* p = data;
  const char* const end = data + size;
  Result r = Result::kMore;
  if (p < end) started_ = true;
  while (p < end && r == Result::kMore) {
    switch (state_) {
      case State::kStatusLine:
        if (take_line(p, end)) r = on_status_line();
        break;
      case State::kFieldLine:
        if (take_line(p, end)) r = on_field_line();
        break;
      case State::kChunkSize:
        if (take_line(p, end)) r = on_chunk_size_line();
        break;
      case State::kChunkDataEnd:
        if (take_line(p, end)) {
          if (!line().empty()) r = bad("a chunk is longer than its size says");
          line_size_ = 0;
          state_ = State::kChunkSize;
        }
        break;
      case State::kTrailer:
        if (take_line(p, end)) {
          if (line().empty()) r = complete();
          line_size_ = 0;
        }
        break;
      case State::kBody:
      case State::kChunkData: {
        // Bodies are skipped whole: a load generator counts responses, it does not read them.
        const auto n = std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p));
        p += n;
        remaining_ -= n;
        if (remaining_ > 0) break;
        if (state_ == State::kBody) {
          r = complete();
        } else {
          state_ = State::kChunkDataEnd;
        }
        break;
      }
      case State::kUntilClose:
        p = end;
        break;
      case State::kComplete:
        break;
    }
  }
  used = static_cast<std::size_t>(p - data);
  return r;
}

HttpResponseParser::Result HttpResponseParser::feed_eof() {
  if (state_ == State::kUntilClose) return complete();
  if (state_ == State::kComplete || !started_) return Result::kMore;
  return bad("the connection closed inside a response");
}

HttpResponseParser::Result HttpResponseParser::on_status_line() {
  const std::string_view s = line();
  line_size_ = 0;
  // HTTP/1.x SSS, then a reason phrase after a space or nothing.
  if (s.size() < 12 || s.substr(0, 7) != "HTTP/1." || !is_digit(s[7]) || s[8] != ' ' ||
      !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]) || (s.size() > 12 && s[12] != ' ')) {
    return bad("a malformed status line");
  }
  http10_ = s[7] == '0';
  status_ = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  if (status_ < 100) return bad("a status code below 100");
  state_ = State::kFieldLine;
  return Result::kMore;
}

HttpResponseParser::Result HttpResponseParser::on_field_line() {
  const std::string_view s = line();
  const bool whole = line_size_ <= kLineBytes;
  line_size_ = 0;
  if (s.empty()) return on_head_end();
  const std::size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return bad("a field line without a name");
  const std::string_view name = s.substr(0, colon);
  if (name.find_first_of(" \t") != std::string_view::npos) {
    return bad("white space in a field name or a folded line");
  }
  const std::string_view value = trim_ows(s.substr(colon + 1));
  if (equals_lower(name, "content-length")) {
    if (!whole || value.empty() || value.size() > kMaxLengthDigits ||
        !std::all_of(value.begin(), value.end(), is_digit)) {
      return bad("a malformed Content-Length");
    }
    std::uint64_t length = 0;
    for (const char c : value)
      length = length * 10 + static_cast<std::uint64_t>(c - '0');
    if (has_length_ && length != length_) return bad("two different Content-Lengths");
    has_length_ = true;
    length_ = length;
  } else if (equals_lower(name, "transfer-encoding")) {
    if (!whole) return bad("a Transfer-Encoding too long to read");
    has_coding_ = true;
    chunked_ = list_has(value, "chunked", true);
  } else if (equals_lower(name, "connection")) {
    close_ = close_ || list_has(value, "close", false);
    keep_alive_ = keep_alive_ || list_has(value, "keep-alive", false);
  }
  return Result::kMore;
}

// Where the body ends (RFC 9112, 6.3), for the answer to a GET.
HttpResponseParser::Result HttpResponseParser::on_head_end() {
  if (status_ == 101) return bad("101 Switching Protocols, but no upgrade was asked for");
  if (http10_ && !keep_alive_) close_ = true;
  if (status_ < 200) {
    // An interim response (100 Continue, 103 Early Hints): the final one follows.
    start_response();
    started_ = true;
    return Result::kMore;
  }
  if (status_ == 204 || status_ == 304) return complete();
  if (has_coding_) {
    // A coding other than chunked last leaves the length unknown: the close ends the body.
    state_ = chunked_ ? State::kChunkSize : State::kUntilClose;
    return Result::kMore;
  }
  if (has_length_) {
    if (length_ == 0) return complete();
    remaining_ = length_;
    state_ = State::kBody;
    return Result::kMore;
  }
  state_ = State::kUntilClose;
  return Result::kMore;
}

// chunk-size in hex, then extensions (skipped) after ';'.
HttpResponseParser::Result HttpResponseParser::on_chunk_size_line() {
  const std::string_view s = line();
  line_size_ = 0;
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < s.size() && hex_value(s[i]) >= 0; ++i) {
    size = size * 16 + static_cast<std::uint64_t>(hex_value(s[i]));
    if (size > kMaxChunkSize) return bad("a chunk size too large");
  }
  const std::string_view rest = trim_ows(s.substr(i));
  if (i == 0 || (!rest.empty() && rest.front() != ';')) return bad("a malformed chunk size");
  if (size == 0) {
    state_ = State::kTrailer;
  } else {
    remaining_ = size;
    state_ = State::kChunkData;
  }
  return Result::kMore;
}

HttpResponseParser::Result HttpResponseParser::bad(const char* why) {
  error_ = why;
  return Result::kBad;
}

HttpResponseParser::Result HttpResponseParser::complete() {
  state_ = State::kComplete;
  return Result::kDone;
}

}  // namespace rs::perf
