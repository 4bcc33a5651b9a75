// HTTP/1.1 responses read incrementally, for a load generator: the status code, where the body
// ends (Content-Length, chunked, or the close of the connection; none for 1xx, 204 and 304)
// and whether the server will close (Connection: close). Bytes may arrive split anywhere; the
// parser keeps one line of at most kLineBytes and a few numbers, allocates nothing, and skips
// bodies without looking at them. Bodies never go further than the framing: a load generator
// counts responses, it does not read them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rs::perf {

class HttpResponseParser {
 public:
  // A field line longer than this is kept only in part: enough for any name and for the values
  // read here (a longer Content-Length, Transfer-Encoding or Connection line is malformed).
  static constexpr std::size_t kLineBytes = 256;

  enum class Result : std::uint8_t {
    kMore,  // every byte given was consumed and the response is not complete yet
    kDone,  // a whole response ended at data[used - 1]; the rest belongs to the next one
    kBad,   // malformed (error() says how); the connection cannot be read any further
  };

  // Reads from data[0, size) up to the end of the current response; `used` is how many bytes
  // it consumed. After kDone the next call starts a new response.
  Result feed(const char* data, std::size_t size, std::size_t& used);
  // The peer closed: kDone when that ends the body (no length was given), kMore when no byte
  // of a response had arrived, kBad when a response was cut short.
  Result feed_eof();

  // Of the response just completed (or being read, once its head is in).
  int status() const { return status_; }
  bool connection_close() const { return close_; }
  const char* error() const { return error_; }

 private:
  enum class State : std::uint8_t {
    kStatusLine,
    kFieldLine,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailer,
    kUntilClose,
    kComplete,
  };

  void start_response();
  // Appends bytes up to the first LF to line_; true when the line is complete (LF consumed).
  bool take_line(const char*& p, const char* end);
  // The line taken (as much as was kept), without its LF and a CR before it.
  std::string_view line() const;
  Result on_status_line();
  Result on_field_line();
  Result on_head_end();
  Result on_chunk_size_line();
  Result bad(const char* why);
  Result complete();

  State state_ = State::kStatusLine;
  bool started_ = false;  // a byte of the current response has arrived
  bool chunked_ = false;
  bool has_length_ = false;
  bool has_coding_ = false;  // a Transfer-Encoding field came
  bool close_ = false;
  bool http10_ = false;      // an HTTP/1.0 response: it closes unless it says keep-alive
  bool keep_alive_ = false;  // Connection: keep-alive
  int status_ = 0;
  std::uint64_t length_ = 0;     // Content-Length, while the head is read
  std::uint64_t remaining_ = 0;  // body or chunk bytes still to skip
  std::size_t line_size_ = 0;    // bytes of the line seen so far (only kLineBytes are kept)
  const char* error_ = "";
  char line_[kLineBytes] = {};
};

}  // namespace rs::perf
