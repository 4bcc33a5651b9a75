#include "net/http/chunked.hpp"

#include <algorithm>
#include <limits>

#include "net/http/chars.hpp"

namespace rs::http {

namespace {

using chars::is_tchar;
using chars::is_ws;

// qdtext (RFC 9110 5.6.4): field value bytes other than DQUOTE and backslash.
bool is_qdtext(char c) {
  return chars::is_value_char(c) && c != '"' && c != '\\';
}

}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::kSizeStart;
  chunk_size_ = 0;
  chunk_left_ = 0;
  body_bytes_ = 0;
  line_bytes_ = 0;
  trailer_bytes_ = 0;
  trailer_fields_ = 0;
}

ParseError ChunkedDecoder::on_size_digit(char c) {
  constexpr uint64_t kMaxBeforeShift = std::numeric_limits<uint64_t>::max() >> 4;
  if (chunk_size_ > kMaxBeforeShift) {
    return ParseError::kBadChunk;
  }
  chunk_size_ = (chunk_size_ << 4) | static_cast<uint64_t>(chars::hex_value(c));
  // Reject as soon as the declared total passes the limit, before any of it is buffered.
  if (chunk_size_ > limits_.max_body_bytes - body_bytes_) {
    return ParseError::kBodyTooLarge;
  }
  return ParseError::kNone;
}

ParseError ChunkedDecoder::on_size_line_end() {
  if (chunk_size_ == 0) {
    state_ = State::kTrailerStart;
  } else {
    body_bytes_ += chunk_size_;
    chunk_left_ = chunk_size_;
    state_ = State::kData;
  }
  return ParseError::kNone;
}

// chunk-size [ chunk-ext ] CRLF, with
// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
ParseError ChunkedDecoder::step_size_line(char c) {
  // The line's CRLF is not part of its length.
  if (state_ != State::kSizeLf && c != '\r' && ++line_bytes_ > limits_.max_chunk_line_bytes) {
    return ParseError::kBadChunk;
  }
  const auto go = [this](State next) {
    state_ = next;
    return ParseError::kNone;
  };
  switch (state_) {
    case State::kSizeStart:
      if (!chars::is_hex(c)) {
        return ParseError::kBadChunk;
      }
      state_ = State::kSize;
      return on_size_digit(c);
    case State::kSize:
      if (chars::is_hex(c)) {
        return on_size_digit(c);
      }
      if (c == ';') {
        return go(State::kExtStart);
      }
      if (is_ws(c)) {
        return go(State::kSizeWs);
      }
      if (c == '\r') {
        return go(State::kSizeLf);
      }
      return ParseError::kBadChunk;
    case State::kSizeWs:
      if (is_ws(c)) {
        return ParseError::kNone;
      }
      if (c == ';') {
        return go(State::kExtStart);
      }
      return ParseError::kBadChunk;
    case State::kExtStart:
      if (is_ws(c)) {
        return ParseError::kNone;
      }
      if (is_tchar(c)) {
        return go(State::kExtName);
      }
      return ParseError::kBadChunk;
    case State::kExtName:
    case State::kExtNameWs:
      if (is_tchar(c) && state_ == State::kExtName) {
        return ParseError::kNone;
      }
      if (is_ws(c)) {
        return go(State::kExtNameWs);
      }
      if (c == ';') {
        return go(State::kExtStart);
      }
      if (c == '=') {
        return go(State::kExtValueStart);
      }
      if (c == '\r' && state_ == State::kExtName) {
        return go(State::kSizeLf);
      }
      return ParseError::kBadChunk;
    case State::kExtValueStart:
      if (is_ws(c)) {
        return ParseError::kNone;
      }
      if (c == '"') {
        return go(State::kExtQuoted);
      }
      if (is_tchar(c)) {
        return go(State::kExtToken);
      }
      return ParseError::kBadChunk;
    case State::kExtToken:
    case State::kExtAfterQuoted:
      if (is_tchar(c) && state_ == State::kExtToken) {
        return ParseError::kNone;
      }
      if (c == ';') {
        return go(State::kExtStart);
      }
      if (is_ws(c)) {
        return go(State::kSizeWs);
      }
      if (c == '\r') {
        return go(State::kSizeLf);
      }
      return ParseError::kBadChunk;
    case State::kExtQuoted:
      if (c == '"') {
        return go(State::kExtAfterQuoted);
      }
      if (c == '\\') {
        return go(State::kExtQuotedPair);
      }
      if (is_qdtext(c)) {
        return ParseError::kNone;
      }
      return ParseError::kBadChunk;
    case State::kExtQuotedPair:
      if (chars::is_value_char(c)) {
        return go(State::kExtQuoted);
      }
      return ParseError::kBadChunk;
    case State::kSizeLf:
      if (c != '\n') {
        return ParseError::kBadChunk;
      }
      return on_size_line_end();
    default:
      return ParseError::kBadChunk;
  }
}

// trailer-section = *( field-line CRLF ) CRLF, with the same field syntax as the head.
ParseError ChunkedDecoder::step_trailer(char c) {
  if (++trailer_bytes_ > limits_.max_header_bytes) {
    return ParseError::kHeaderTooLarge;
  }
  switch (state_) {
    case State::kTrailerStart:
      if (c == '\r') {
        state_ = State::kEndLf;
        return ParseError::kNone;
      }
      if (!is_tchar(c)) {
        return ParseError::kBadTrailer;  // includes obs-fold and bare LF
      }
      if (++trailer_fields_ > limits_.max_header_fields) {
        return ParseError::kTooManyHeaders;
      }
      state_ = State::kTrailerName;
      return ParseError::kNone;
    case State::kTrailerName:
      if (is_tchar(c)) {
        return ParseError::kNone;
      }
      if (c != ':') {
        return ParseError::kBadTrailer;
      }
      state_ = State::kTrailerValue;
      return ParseError::kNone;
    case State::kTrailerValue:
      if (chars::is_value_char(c)) {
        return ParseError::kNone;
      }
      if (c != '\r') {
        return ParseError::kBadTrailer;
      }
      state_ = State::kTrailerLf;
      return ParseError::kNone;
    case State::kTrailerLf:
      if (c != '\n') {
        return ParseError::kBadTrailer;
      }
      state_ = State::kTrailerStart;
      return ParseError::kNone;
    case State::kEndLf:
      if (c != '\n') {
        return ParseError::kBadChunk;
      }
      state_ = State::kDone;
      return ParseError::kNone;
    default:
      return ParseError::kBadChunk;
  }
}

// The CRLF that must follow each chunk's data.
ParseError ChunkedDecoder::step_data_end(char c) {
  if (state_ == State::kDataCr) {
    if (c != '\r') {
      return ParseError::kBadChunk;
    }
    state_ = State::kDataLf;
    return ParseError::kNone;
  }
  if (c != '\n') {
    return ParseError::kBadChunk;
  }
  state_ = State::kSizeStart;
  chunk_size_ = 0;
  line_bytes_ = 0;
  return ParseError::kNone;
}

ParseError ChunkedDecoder::step_framing(char c) {
  switch (state_) {
    case State::kDataCr:
    case State::kDataLf:
      return step_data_end(c);
    case State::kTrailerStart:
    case State::kTrailerName:
    case State::kTrailerValue:
    case State::kTrailerLf:
    case State::kEndLf:
      return step_trailer(c);
    default:
      return step_size_line(c);
  }
}

// The common framing between two chunks, whole in `input`: the CRLF after the data and a size
// line of hex digits and CRLF, without extensions. Taken in one go, or not at all (false), and
// then the byte-wise states take it with every check.
[[gnu::always_inline]] inline bool ChunkedDecoder::take_plain_size_line(std::string_view input,
                                                                        size_t& i) {
  size_t p = i;
  if (state_ == State::kDataCr) {
    if (input.size() - p < 2 || input[p] != '\r' || input[p + 1] != '\n') {
      return false;
    }
    p += 2;
  } else if (state_ != State::kSizeStart || line_bytes_ != 0) {
    return false;
  }
  constexpr size_t kMaxDigits = 15;  // cannot overflow; longer lines go the byte-wise way
  uint64_t size = 0;
  size_t digits = 0;
  while (p + digits < input.size() && digits < kMaxDigits) {
    const int value = chars::hex_value(input[p + digits]);
    if (value < 0) {
      break;
    }
    size = (size << 4) | static_cast<uint64_t>(value);
    ++digits;
  }
  const size_t cr = p + digits;
  if (digits == 0 || digits > limits_.max_chunk_line_bytes || input.size() - cr < 2 ||
      input[cr] != '\r' || input[cr + 1] != '\n' || size > limits_.max_body_bytes - body_bytes_) {
    return false;
  }
  i = cr + 2;
  line_bytes_ = 0;
  chunk_size_ = size;
  on_size_line_end();
  return true;
}

ChunkedDecoder::Step ChunkedDecoder::decode(std::string_view input) {
  Step step;
  if (state_ == State::kDone) {
    step.done = true;
    return step;
  }
  size_t i = 0;
  take_plain_size_line(input, i);
  while (i < input.size() && state_ != State::kError) {
    if (state_ == State::kData) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, input.size() - i));
      step.data = input.substr(i, n);
      chunk_left_ -= n;
      if (chunk_left_ == 0) {
        state_ = State::kDataCr;
      }
      step.consumed = i + n;
      return step;
    }
    const ParseError error = step_framing(input[i++]);
    if (error != ParseError::kNone) {
      state_ = State::kError;
      step.error = error;
    } else if (state_ == State::kDone) {
      step.done = true;
      break;
    }
  }
  step.consumed = i;
  return step;
}

}  // namespace rs::http
