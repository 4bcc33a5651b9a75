// Writing responses: the status line and header block go straight into the connection's
// output chain (one prepare/commit, no intermediate buffer), followed by the body.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/buffer.hpp"
#include "net/http/http_date.hpp"

namespace rs::http {

std::string_view reason_phrase(int status);

// The Connection field of a response. An HTTP/1.1 connection persists unless a side says close;
// an HTTP/1.0 client assumes the server closes unless the answer says keep-alive (RFC 9112 9.3,
// Appendix C.2.2), so a kept HTTP/1.0 connection must be announced.
enum class Persistence : std::uint8_t {
  kKeepAlive,       // HTTP/1.1: no field
  kClose,           // "Connection: close": this answer is the connection's last
  kKeepAliveHttp10  // "Connection: keep-alive"
};

// The fields every answer's head carries after its status line; the Date value follows.
inline constexpr std::string_view kServerAndDate = "Server: ringserve\r\nDate: ";

// What every answer's head starts with, formatted once per wall-clock second and then copied
// whole: the status line of a 200, Server and Date (RFC 9110 6.6.1). Each answer still gets its
// own Content-Length and the rest of its fields after it.
class ResponseStamp {
 public:
  ResponseStamp();
  // Reformats when the second has changed; a no-op otherwise.
  void set_time(std::time_t now) {
    if (now != second_) format(now);
  }
  std::string_view date() const { return {ok_head_ + kDateAt, kImfFixdateLength}; }
  // "HTTP/1.1 200 OK\r\nServer: ringserve\r\nDate: <date>\r\n"
  std::string_view ok_head() const { return {ok_head_, sizeof(ok_head_)}; }

 private:
  static constexpr std::string_view kOkLine = "HTTP/1.1 200 OK\r\n";
  static constexpr std::size_t kDateAt = kOkLine.size() + kServerAndDate.size();
  void format(std::time_t now);

  std::time_t second_ = -1;
  char ok_head_[kDateAt + kImfFixdateLength + 2] = {};
};

// A response head under construction in the output chain's tail space. Header values are
// produced by the server itself and short; the head must fit kMaxHeadBytes.
class ResponseHead {
 public:
  static constexpr std::size_t kMaxHeadBytes = 2048;

  // Starts "HTTP/1.1 <status> <reason>", then Server and Date.
  ResponseHead(core::BufferChain& out, int status, const ResponseStamp& stamp);
  ResponseHead(const ResponseHead&) = delete;
  ResponseHead& operator=(const ResponseHead&) = delete;

  ResponseHead& add(std::string_view name, std::string_view value);
  ResponseHead& add(std::string_view name, std::uint64_t value);
  // Adds the Connection field persistence asks for; ends the head.
  void finish(Persistence persistence);

 private:
  void put(std::string_view text);
  void put(std::uint64_t value);

  core::BufferChain& out_;
  char* begin_;
  char* cursor_;
};

// Status, standard headers, Content-Type and Content-Length, then the body unless head_only.
void write_response(core::BufferChain& out, int status, const ResponseStamp& stamp,
                    std::string_view content_type, std::string_view body, bool head_only,
                    Persistence persistence);

}  // namespace rs::http
