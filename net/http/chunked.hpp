// Decoder for the chunked transfer coding (RFC 9112 7.1): chunk sizes, extensions (validated,
// then ignored), data, and the trailer section (validated, then discarded: trailers never
// reach the request, so a trailer can never smuggle a framing field). Resumable at any byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http/limits.hpp"
#include "net/http/parse_error.hpp"

namespace rs::http {

class ChunkedDecoder {
 public:
  struct Step {
    size_t consumed = 0;    // bytes of the input used, framing included
    std::string_view data;  // decoded payload inside the input; at most one piece per call
    bool done = false;      // the body (and any trailer section) has ended
    ParseError error = ParseError::kNone;
  };

  explicit ChunkedDecoder(const Limits& limits) : limits_(limits) {}

  // Consumes framing until it reaches payload (returned as `data`, ending the call), the end
  // of the message, the end of `input`, or an error.
  Step decode(std::string_view input);
  void reset();

 private:
  enum class State : uint8_t {
    kSizeStart,
    kSize,
    kSizeWs,    // BWS after the size or an extension value: only ";" may follow
    kExtStart,  // after ";": BWS, then the extension name
    kExtName,
    kExtNameWs,  // BWS after a name: "=" or ";" may follow
    kExtValueStart,
    kExtToken,
    kExtQuoted,
    kExtQuotedPair,
    kExtAfterQuoted,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kEndLf,
    kDone,
    kError,
  };

  bool take_plain_size_line(std::string_view input, size_t& i);
  ParseError on_size_digit(char c);
  ParseError on_size_line_end();
  ParseError step_framing(char c);
  ParseError step_size_line(char c);
  ParseError step_data_end(char c);
  ParseError step_trailer(char c);

  Limits limits_;
  State state_ = State::kSizeStart;
  uint64_t chunk_size_ = 0;
  uint64_t chunk_left_ = 0;
  uint64_t body_bytes_ = 0;
  size_t line_bytes_ = 0;
  size_t trailer_bytes_ = 0;
  size_t trailer_fields_ = 0;
};

}  // namespace rs::http
