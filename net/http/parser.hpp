// HTTP/1.1 request parser: incremental, zero-copy, allocation-free.
//
// API (the server layer is written against this; change it only together with its callers):
//
//   struct Limits { max_request_line_bytes = 8192 (414), max_header_bytes = 16384 (431),
//                   max_header_fields = 100 (431), max_body_bytes = 1 MiB (413),
//                   max_chunk_line_bytes = 4096 (400) };                      // limits.hpp
//   size_t max_head_bytes(const Limits&);  // largest acceptable head: size of a head buffer
//   enum class ParseError { kNone, kBadRequestLine, ... };                      // parse_error.hpp
//   const char* to_string(ParseError);  // stable metric label, e.g. "te_cl_conflict"
//   int status_for(ParseError);         // 400, 413, 414, 431, 501, 505
//   struct Header { std::string_view name, value; };                           // request_head.hpp
//   struct RequestHead { method, target, form, path, query, version_major, version_minor,
//                        headers[kMaxHeaderFields], header_count, host, keep_alive,
//                        expect_continue, chunked, content_length;
//                        fields(), find_header(name), header_value(name) };
//   enum class ParseStatus { kIncomplete, kComplete, kError };
//   struct BodyResult { size_t consumed; std::string_view data; bool done; ParseError error; };
//
//   class RequestParser {
//    public:
//     explicit RequestParser(const Limits& limits = {}, ParserIsa isa = default_parser_isa());
//     ParseStatus parse_head(std::string_view block);
//     const RequestHead& head() const;   // valid after kComplete, while `block` is unchanged
//     size_t head_bytes() const;         // leading empty lines + request line + fields + CRLF
//     BodyResult parse_body(std::string_view input);
//     bool body_done() const;            // true right after kComplete for a bodiless request
//     uint64_t message_bytes() const;    // head_bytes() + body bytes consumed so far
//     ParseError error() const;          // after kError / BodyResult::error
//     void reset();                      // next request on the same connection
//   };
//
// Head phase, two paths with one result. A fresh head that has wholly arrived (nearly always)
// is read in one pass by the SIMD head scan (head_scan.hpp), which accepts only common, valid
// heads; anything else, and every head that arrives in pieces, goes through the byte-wise state
// machine below, which holds the whole policy and decides every error.
//
// `block` is every byte received for this request so far, contiguous, starting at
// its first byte. Call again with a longer block (never a shorter one; it may have moved: the
// parser keeps offsets, not pointers) and scanning resumes where it stopped; nothing is
// rescanned. On kComplete the views in head() point into the last block passed; bytes after
// head_bytes() are not looked at. Errors are found at the first byte that makes the input
// invalid, so a partial head can already fail (e.g. a 414 before the line ends).
//
// Body phase: feed bytes in any pieces (they need not be contiguous with the head). Each call
// consumes framing and at most one run of payload, which it returns as `data` (a view into
// `input`), so the caller loops while bytes remain and !done. Content-Length bodies stop
// consuming exactly at the body's end; chunked bodies stop exactly after the trailer section.
// Whatever follows (a pipelined request) is left for the next parse_head after reset().
//
// Policy decisions (RFC 9112 / RFC 9110), each deliberately strict:
// - Bare LF and bare CR anywhere in the head: 400 (RFC 9112 2.2 allows accepting bare LF;
//   rejecting removes a class of parser-disagreement attacks). Leading empty lines (CRLF) are
//   skipped (RFC 9112 2.2), up to max_request_line_bytes bytes of them, then 400.
// - Exactly one SP between request-line parts (RFC 9112 3); request-target must be RFC 3986
//   syntax: no fragment, no raw non-ASCII, no userinfo; absolute-form only for http/https.
// - CONNECT is answered 501: this server is not a tunnel, and the bytes after a CONNECT head
//   have no framing an origin server could follow.
// - Content-Length: 1*DIGIT; repeated lines or a list ("5, 5") are accepted only when every
//   value is the same number (RFC 9110 8.6), anything else 400. Over max_body_bytes: 413 as soon
//   as the field line ends.
// - Transfer-Encoding: 400 together with Content-Length, in HTTP/1.0, when chunked is not the
//   final coding or appears twice; 501 when chunked is preceded by any other coding.
// - Host: 400 when missing in HTTP/1.1+, repeated, or not uri-host [":" port] (RFC 9112 3.2).
// - obs-fold, a whitespace-led line after the request line, whitespace before the colon,
//   non-token names, and CTL (including NUL and DEL, excluding HTAB) in values: 400.
// - Chunk extensions are validated and ignored; trailer fields are validated and discarded.
// - HTTP/1.x with x > 1 is treated as HTTP/1.1 (RFC 9110 2.5); major version other than 1: 505.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "net/http/chunked.hpp"
#include "net/http/field_rules.hpp"
#include "net/http/head_scan.hpp"
#include "net/http/limits.hpp"
#include "net/http/parse_error.hpp"
#include "net/http/request_head.hpp"
#include "net/http/target.hpp"

namespace rs::http {

enum class ParseStatus : uint8_t { kIncomplete, kComplete, kError };

// One step of the body phase: the chunked decoder's step, so that it is passed on as it is.
using BodyResult = ChunkedDecoder::Step;

class RequestParser {
 public:
  // `isa` picks the one-pass head scan (kIncremental: none); tests compare them all.
  explicit RequestParser(const Limits& limits = {}, ParserIsa isa = default_parser_isa());

  ParseStatus parse_head(std::string_view block);
  const RequestHead& head() const { return head_; }
  size_t head_bytes() const { return head_bytes_; }

  BodyResult parse_body(std::string_view input);
  bool body_done() const { return phase_ == Phase::kDone; }
  uint64_t message_bytes() const { return head_bytes_ + body_consumed_; }

  ParseError error() const { return error_; }
  void reset();

 private:
  enum class Phase : uint8_t { kHead, kBody, kDone, kError };
  enum class State : uint8_t {
    kStart,  // before the request line: skipping empty lines
    kLeadingLf,
    kMethod,
    kTarget,
    kVersion,
    kRequestLf,
    kFieldStart,  // first byte of a field line, or CR of the final empty line
    kName,
    kValueStart,  // OWS before the value
    kValue,
    kFieldLf,
    kEndLf,
    kHeadDone,
  };
  // Offsets into the block, so that a block that moved between calls is still fine.
  struct FieldSpan {
    uint32_t name_begin;
    uint32_t name_len;
    uint32_t value_begin;
    uint32_t value_len;
  };

  void begin_head();
  bool parse_whole_head(std::string_view block);
  ParseError step(std::string_view block, size_t& pos);
  ParseError step_start(char c, size_t pos);
  ParseError scan_method(std::string_view block, size_t& pos);
  ParseError scan_target(std::string_view block, size_t& pos);
  ParseError step_version(char c);
  ParseError step_field_start(char c, size_t pos);
  ParseError scan_name(std::string_view block, size_t& pos);
  ParseError scan_value_start(std::string_view block, size_t& pos);
  ParseError scan_value(std::string_view block, size_t& pos);
  ParseError on_field_line(std::string_view block);
  ParseError on_field(std::string_view name, std::string_view value, int index);
  ParseError on_head_end(std::string_view block, size_t head_bytes);
  ParseError check_framing() const;
  void build_head(std::string_view block);
  void finish_head(std::string_view method, std::string_view target, const TargetParts& parts,
                   int major, int minor);
  void enter_body(size_t head_bytes);
  BodyResult chunked_body(std::string_view input);
  BodyResult length_body(std::string_view input);
  ParseStatus fail(ParseError error);

  size_t request_line_limit() const { return line_start_ + limits_.max_request_line_bytes; }
  size_t header_limit() const { return fields_start_ + limits_.max_header_bytes; }
  bool in_request_line() const { return state_ >= State::kMethod && state_ <= State::kVersion; }
  bool in_fields() const { return state_ >= State::kFieldStart && state_ <= State::kEndLf; }

  Limits limits_;
  HeadScan scan_;
  Phase phase_ = Phase::kHead;
  State state_ = State::kStart;
  ParseError error_ = ParseError::kNone;
  size_t pos_ = 0;
  size_t line_start_ = 0;
  size_t method_end_ = 0;
  size_t target_begin_ = 0;
  size_t target_end_ = 0;
  size_t fields_start_ = 0;
  size_t name_begin_ = 0;
  size_t name_end_ = 0;
  size_t value_begin_ = 0;
  size_t value_end_ = 0;
  int version_index_ = 0;
  int version_major_ = 0;
  int version_minor_ = 0;
  std::array<FieldSpan, kMaxHeaderFields> spans_{};
  size_t field_count_ = 0;
  int host_field_ = -1;
  std::optional<uint64_t> content_length_;
  TransferCodings codings_;
  ConnectionOptions connection_;
  bool expect_continue_ = false;

  RequestHead head_;
  size_t head_bytes_ = 0;
  uint64_t body_left_ = 0;
  uint64_t body_consumed_ = 0;
  ChunkedDecoder chunked_;
};

}  // namespace rs::http
