#include "net/http/parser.hpp"

#include <algorithm>
#include <cassert>

#include "net/http/chars.hpp"

namespace rs::http {

namespace {

using chars::is_ws;

// Field offsets are stored as uint32_t; no sane limit comes near this.
constexpr size_t kMaxLimitBytes = size_t{1} << 30;

Limits clamp(Limits limits) {
  limits.max_header_fields = std::min(limits.max_header_fields, kMaxHeaderFields);
  limits.max_request_line_bytes = std::min(limits.max_request_line_bytes, kMaxLimitBytes);
  limits.max_header_bytes = std::min(limits.max_header_bytes, kMaxLimitBytes);
  return limits;
}

constexpr std::string_view kVersionPrefix = "HTTP/";

}  // namespace

RequestParser::RequestParser(const Limits& limits, ParserIsa isa)
    : limits_(clamp(limits)), scan_(head_scan(isa)), chunked_(limits_) {}

// Only what every request starts from; the rest is set before it is read (begin_head for the
// field rules, the head's end for the body).
void RequestParser::reset() {
  phase_ = Phase::kHead;
  state_ = State::kStart;
  error_ = ParseError::kNone;
  pos_ = 0;
  head_.header_count = 0;  // the rest of head_ is rewritten before it is valid again
  head_bytes_ = 0;
  body_consumed_ = 0;
}

void RequestParser::begin_head() {
  field_count_ = 0;
  host_field_ = -1;
  content_length_.reset();
  codings_ = {};
  connection_ = {};
  expect_continue_ = false;
}

ParseStatus RequestParser::fail(ParseError error) {
  phase_ = Phase::kError;
  error_ = error;
  return ParseStatus::kError;
}

ParseStatus RequestParser::parse_head(std::string_view block) {
  if (phase_ == Phase::kError) {
    return ParseStatus::kError;
  }
  if (phase_ != Phase::kHead) {
    return ParseStatus::kComplete;
  }
  assert(block.size() >= pos_ && "the block must only grow between calls");
  if (pos_ == 0 && state_ == State::kStart) {
    begin_head();
    if (scan_ != nullptr && parse_whole_head(block)) {
      return ParseStatus::kComplete;
    }
  }
  size_t pos = pos_;
  while (pos < block.size()) {
    const ParseError error = step(block, pos);
    if (error != ParseError::kNone) {
      return fail(error);
    }
    if (state_ == State::kHeadDone) {
      return ParseStatus::kComplete;
    }
  }
  pos_ = pos;
  return ParseStatus::kIncomplete;
}

// Everything but the field views, which both paths have already written. Inlined into both,
// so that the target parts the one-pass path has just built never go through memory.
[[gnu::always_inline]] inline void RequestParser::finish_head(std::string_view method,
                                                              std::string_view target,
                                                              const TargetParts& parts, int major,
                                                              int minor) {
  RequestHead& h = head_;
  h.method = method;
  h.target = target;
  h.form = parts.form;
  h.path = parts.path;
  h.query = parts.query;
  h.version_major = major;  // as arguments: loading the members just stored would stall
  h.version_minor = minor;
  h.header_count = field_count_;
  if (parts.form == TargetForm::kAbsolute) {
    h.host = parts.authority;  // RFC 9112 3.2.2: the target's authority wins over Host
  } else if (host_field_ >= 0) {
    h.host = h.headers[static_cast<size_t>(host_field_)].value;
  } else {
    h.host = {};
  }
  const bool http11 = minor >= 1;
  h.keep_alive = !connection_.close && (http11 || connection_.keep_alive);
  // RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored.
  h.expect_continue = expect_continue_ && http11;
  h.chunked = codings_.present;
  h.content_length = content_length_;
}

// Framing first: a request whose body length is ambiguous must never be answered as if it
// were understood (RFC 9112 6.1, 6.3).
ParseError RequestParser::check_framing() const {
  if (codings_.present) {
    if (version_minor_ == 0) {
      return ParseError::kBadTransferEncoding;  // RFC 9112 6.1
    }
    if (content_length_.has_value()) {
      return ParseError::kTeClConflict;
    }
    const ParseError error = check_transfer_codings(codings_);
    if (error != ParseError::kNone) {
      return error;
    }
  }
  if (version_minor_ >= 1 && host_field_ < 0) {
    return ParseError::kBadHost;  // RFC 9112 3.2
  }
  return ParseError::kNone;
}

// The one-pass path: true when the scan accepted the whole head and so do the field rules.
// Otherwise nothing it did is kept, and the state machine starts from the first byte.
bool RequestParser::parse_whole_head(std::string_view block) {
  ScannedHead scanned;
  if (!scan_(block, limits_, head_.headers.data(), scanned)) {
    return false;
  }
  for (size_t i = 0; i < scanned.field_count; ++i) {
    const Header& field = head_.headers[i];
    if (on_field(field.name, field.value, static_cast<int>(i)) != ParseError::kNone) {
      begin_head();
      return false;
    }
  }
  field_count_ = scanned.field_count;
  version_minor_ = scanned.version_minor;
  if (check_framing() != ParseError::kNone) {
    begin_head();
    return false;
  }
  const std::string_view target = block.substr(scanned.method_len + 1, scanned.target_len);
  TargetParts parts;
  parts.path = target.substr(0, scanned.path_len);
  if (scanned.path_len < target.size()) {
    parts.query = target.substr(scanned.path_len + 1);
  }
  finish_head(block.substr(0, scanned.method_len), target, parts, 1, scanned.version_minor);
  enter_body(scanned.head_bytes);
  return true;
}

// Consumes at least one byte or changes state, so the loop in parse_head always progresses.
ParseError RequestParser::step(std::string_view block, size_t& pos) {
  const char c = block[pos];
  if (in_request_line() && pos >= request_line_limit() && c != '\r') {
    return ParseError::kLineTooLong;
  }
  if (in_fields() && pos >= header_limit()) {
    return ParseError::kHeaderTooLarge;
  }
  switch (state_) {
    case State::kStart:
      return step_start(c, pos++);
    case State::kLeadingLf:
      ++pos;
      state_ = State::kStart;
      return c == '\n' ? ParseError::kNone : ParseError::kBadLineEnding;
    case State::kMethod:
      return scan_method(block, pos);
    case State::kTarget:
      return scan_target(block, pos);
    case State::kVersion:
      ++pos;
      return step_version(c);
    case State::kRequestLf:
      if (c != '\n') {
        return ParseError::kBadLineEnding;
      }
      fields_start_ = ++pos;
      state_ = State::kFieldStart;
      return ParseError::kNone;
    case State::kFieldStart:
      return step_field_start(c, pos++);
    case State::kName:
      return scan_name(block, pos);
    case State::kValueStart:
      return scan_value_start(block, pos);
    case State::kValue:
      return scan_value(block, pos);
    case State::kFieldLf:
      ++pos;
      if (c != '\n') {
        return ParseError::kBadLineEnding;
      }
      state_ = State::kFieldStart;
      return on_field_line(block);
    case State::kEndLf:
      ++pos;
      if (c != '\n') {
        return ParseError::kBadLineEnding;
      }
      return on_head_end(block, pos);
    case State::kHeadDone:
      break;
  }
  return ParseError::kNone;
}

// RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
ParseError RequestParser::step_start(char c, size_t pos) {
  if (c == '\r') {
    if (pos >= limits_.max_request_line_bytes) {
      return ParseError::kBadRequestLine;
    }
    state_ = State::kLeadingLf;
    return ParseError::kNone;
  }
  if (c == '\n') {
    return ParseError::kBadLineEnding;
  }
  if (!chars::is_tchar(c)) {
    return ParseError::kBadRequestLine;
  }
  line_start_ = pos;
  state_ = State::kMethod;
  return ParseError::kNone;
}

// The fast scans stop at the end of the input or at the line limit; past the limit only the
// CR that ends the line may follow, and it must be handled here, or the scan would not advance.
ParseError RequestParser::scan_method(std::string_view block, size_t& pos) {
  const size_t stop = std::min(block.size(), request_line_limit());
  size_t i = pos;
  while (i < stop && chars::is_tchar(block[i])) {
    ++i;
  }
  pos = i;
  if (i == block.size()) {
    return ParseError::kNone;
  }
  if (i >= request_line_limit() && block[i] != '\r') {
    return ParseError::kLineTooLong;
  }
  if (block[i] != ' ') {
    return ParseError::kBadRequestLine;
  }
  method_end_ = i;
  target_begin_ = ++pos;
  state_ = State::kTarget;
  return ParseError::kNone;
}

ParseError RequestParser::scan_target(std::string_view block, size_t& pos) {
  const size_t stop = std::min(block.size(), request_line_limit());
  size_t i = pos;
  while (i < stop && chars::has(block[i], chars::kTarget)) {
    ++i;
  }
  pos = i;
  if (i == block.size()) {
    return ParseError::kNone;
  }
  const char c = block[i];
  if (i >= request_line_limit() && c != '\r') {
    return ParseError::kLineTooLong;
  }
  if (c == '\r' || c == '\n') {
    return ParseError::kBadRequestLine;  // no version: HTTP/0.9
  }
  if (c != ' ') {
    return ParseError::kBadTarget;
  }
  if (i == target_begin_) {
    return ParseError::kBadRequestLine;  // two SPs or an empty target
  }
  target_end_ = i;
  pos = i + 1;
  const std::string_view method = block.substr(line_start_, method_end_ - line_start_);
  const std::string_view target = block.substr(target_begin_, target_end_ - target_begin_);
  const ParseError error = parse_target(method, target).error;
  if (error != ParseError::kNone) {
    return error;
  }
  state_ = State::kVersion;
  version_index_ = 0;
  return ParseError::kNone;
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT, then CR (RFC 9112 2.3).
ParseError RequestParser::step_version(char c) {
  const int index = version_index_++;
  if (index < static_cast<int>(kVersionPrefix.size())) {
    return c == kVersionPrefix[index] ? ParseError::kNone : ParseError::kBadVersion;
  }
  switch (index) {
    case 5:
      if (!chars::is_digit(c)) {
        return ParseError::kBadVersion;
      }
      version_major_ = c - '0';
      return ParseError::kNone;
    case 6:
      return c == '.' ? ParseError::kNone : ParseError::kBadVersion;
    case 7:
      if (!chars::is_digit(c)) {
        return ParseError::kBadVersion;
      }
      version_minor_ = c - '0';
      return ParseError::kNone;
    default:
      if (c == '\n') {
        return ParseError::kBadLineEnding;
      }
      if (c != '\r') {
        return ParseError::kBadVersion;
      }
      if (version_major_ != 1) {
        return ParseError::kVersionNotSupported;
      }
      state_ = State::kRequestLf;
      return ParseError::kNone;
  }
}

ParseError RequestParser::step_field_start(char c, size_t pos) {
  if (c == '\r') {
    state_ = State::kEndLf;
    return ParseError::kNone;
  }
  if (c == '\n') {
    return ParseError::kBadLineEnding;
  }
  // A whitespace-led line is obs-fold after a field (RFC 9112 5.2) or junk right after the
  // request line (RFC 9112 2.2); both may be rejected, and both are how smuggling starts.
  if (is_ws(c)) {
    return ParseError::kObsFold;
  }
  if (!chars::is_tchar(c)) {
    return ParseError::kBadHeader;
  }
  if (field_count_ == limits_.max_header_fields) {
    return ParseError::kTooManyHeaders;
  }
  name_begin_ = pos;
  state_ = State::kName;
  return ParseError::kNone;
}

ParseError RequestParser::scan_name(std::string_view block, size_t& pos) {
  const size_t stop = std::min(block.size(), header_limit());
  size_t i = pos;
  while (i < stop && chars::is_tchar(block[i])) {
    ++i;
  }
  pos = i;
  if (i == stop) {
    return ParseError::kNone;
  }
  // Anything but ':' here, whitespace before the colon included (RFC 9112 5.1), is fatal.
  if (block[i] != ':') {
    return ParseError::kBadHeader;
  }
  name_end_ = i;
  pos = i + 1;
  state_ = State::kValueStart;
  return ParseError::kNone;
}

ParseError RequestParser::scan_value_start(std::string_view block, size_t& pos) {
  const size_t stop = std::min(block.size(), header_limit());
  size_t i = pos;
  while (i < stop && is_ws(block[i])) {
    ++i;
  }
  pos = i;
  if (i == stop) {
    return ParseError::kNone;
  }
  value_begin_ = i;
  state_ = State::kValue;
  return ParseError::kNone;
}

ParseError RequestParser::scan_value(std::string_view block, size_t& pos) {
  const size_t stop = std::min(block.size(), header_limit());
  size_t i = pos;
  while (i < stop && chars::is_value_char(block[i])) {
    ++i;
  }
  pos = i;
  if (i == stop) {
    return ParseError::kNone;
  }
  const char c = block[i];
  if (c == '\n') {
    return ParseError::kBadLineEnding;
  }
  // NUL, other CTLs and DEL: RFC 9110 5.5 lets us reject rather than guess.
  if (c != '\r') {
    return ParseError::kBadHeader;
  }
  // Trailing whitespace is not part of the value (RFC 9112 5); the value starts with a non-SP.
  value_end_ = i;
  while (value_end_ > value_begin_ && is_ws(block[value_end_ - 1])) {
    --value_end_;
  }
  pos = i + 1;
  state_ = State::kFieldLf;
  return ParseError::kNone;
}

ParseError RequestParser::on_field_line(std::string_view block) {
  const std::string_view name = block.substr(name_begin_, name_end_ - name_begin_);
  const std::string_view value = block.substr(value_begin_, value_end_ - value_begin_);
  spans_[field_count_] = {static_cast<uint32_t>(name_begin_), static_cast<uint32_t>(name.size()),
                          static_cast<uint32_t>(value_begin_), static_cast<uint32_t>(value.size())};
  return on_field(name, value, static_cast<int>(field_count_++));
}

namespace {

// Case-insensitive match of a field name (token characters only) against a lower-case name of
// letters and "-": for token bytes, c | 0x20 equals such a byte only when c is it in either case.
bool name_is(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if ((name[i] | 0x20) != lower[i]) {
      return false;
    }
  }
  return true;
}

// Host = uri-host [":" port]: the common shape (reg-name, then digits) in two tight loops, and
// anything else (an IP literal, pct-encoding, an error) through the full check.
bool host_is_valid(std::string_view value) {
  size_t i = 0;
  while (i < value.size() && chars::has(value[i], chars::kRegName)) {
    ++i;
  }
  if (i < value.size() && value[i] == ':') {
    ++i;
    while (i < value.size() && chars::is_digit(value[i])) {
      ++i;
    }
  }
  return i == value.size() || is_valid_host(value, /*require_host=*/false);
}

}  // namespace

// The fields that decide framing and connection handling, told apart by length first.
ParseError RequestParser::on_field(std::string_view name, std::string_view value, int index) {
  switch (name.size()) {
    case 4:
      if (name_is(name, "host")) {
        // RFC 9112 3.2: more than one Host line or an invalid value is a 400.
        if (host_field_ >= 0 || !host_is_valid(value)) {
          return ParseError::kBadHost;
        }
        host_field_ = index;
      }
      break;
    case 6:
      if (name_is(name, "expect")) {
        expect_continue_ = expect_continue_ || has_100_continue(value);
      }
      break;
    case 10:
      if (name_is(name, "connection")) {
        merge_connection(value, connection_);
      }
      break;
    case 14:
      if (name_is(name, "content-length")) {
        const ParseError error = merge_content_length(value, content_length_);
        if (error != ParseError::kNone) {
          return error;
        }
        if (*content_length_ > limits_.max_body_bytes) {
          return ParseError::kBodyTooLarge;
        }
      }
      break;
    case 17:
      if (name_is(name, "transfer-encoding")) {
        merge_transfer_encoding(value, codings_);
      }
      break;
    default:
      break;
  }
  return ParseError::kNone;
}

ParseError RequestParser::on_head_end(std::string_view block, size_t head_bytes) {
  const ParseError error = check_framing();
  if (error != ParseError::kNone) {
    return error;
  }
  build_head(block);
  enter_body(head_bytes);
  return ParseError::kNone;
}

void RequestParser::build_head(std::string_view block) {
  for (size_t i = 0; i < field_count_; ++i) {
    const FieldSpan& span = spans_[i];
    head_.headers[i] = {block.substr(span.name_begin, span.name_len),
                        block.substr(span.value_begin, span.value_len)};
  }
  const std::string_view method = block.substr(line_start_, method_end_ - line_start_);
  const std::string_view target = block.substr(target_begin_, target_end_ - target_begin_);
  finish_head(method, target, parse_target(method, target), version_major_, version_minor_);
}

void RequestParser::enter_body(size_t head_bytes) {
  head_bytes_ = head_bytes;
  state_ = State::kHeadDone;
  if (head_.chunked) {
    chunked_.reset();
    phase_ = Phase::kBody;
  } else {
    body_left_ = content_length_.value_or(0);
    phase_ = body_left_ > 0 ? Phase::kBody : Phase::kDone;
  }
}

BodyResult RequestParser::parse_body(std::string_view input) {
  switch (phase_) {
    case Phase::kError:
      return {0, {}, false, error_};
    case Phase::kDone:
      return {0, {}, true, ParseError::kNone};
    case Phase::kHead:
      assert(false && "parse_body before the head is complete");
      return {};
    case Phase::kBody:
      break;
  }
  // Each result is built where the caller receives it (copy elision all the way from the
  // decoder): no copy through differently sized stores and loads on the way out.
  return head_.chunked ? chunked_body(input) : length_body(input);
}

BodyResult RequestParser::chunked_body(std::string_view input) {
  BodyResult result = chunked_.decode(input);
  if (result.error != ParseError::kNone) {
    fail(result.error);
  }
  body_consumed_ += result.consumed;
  if (result.done) {
    phase_ = Phase::kDone;
  }
  return result;
}

BodyResult RequestParser::length_body(std::string_view input) {
  const auto n = static_cast<size_t>(std::min<uint64_t>(body_left_, input.size()));
  body_left_ -= n;
  body_consumed_ += n;
  if (body_left_ == 0) {
    phase_ = Phase::kDone;
  }
  return {n, input.substr(0, n), body_left_ == 0, ParseError::kNone};
}

}  // namespace rs::http
