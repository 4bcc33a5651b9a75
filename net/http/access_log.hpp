// The HTTP access log, in Combined Log Format:
//
//   127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 13 "http://r/" "curl/8.5"
//
// What a line needs from the request head (request line, Referer, User-Agent) is copied into
// fixed-size fields of the Request at route time, and only when the log is on: the head's views
// die after routing, and a deferred answer is logged long after. Logged strings are escaped
// (\xHH for '"', '\', control bytes and bytes above 0x7e) and cut to fit; nothing allocates.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string_view>

#include "net/http/http_date.hpp"
#include "net/ip_address.hpp"
#include "net/log_sink.hpp"

namespace rs::http {

struct RequestHead;

// Text for the log; bytes past `size` are never read.
template <std::size_t N>
struct LogText {
  // Deliberately leaves `data` unwritten (not `= default`, under which Request{} would zero
  // it): a Request is reset and copied for every request, and zeroing a kilobyte of log text
  // would cost that even with the log off.
  LogText() noexcept {}  // NOLINT(modernize-use-equals-default)
  std::string_view view() const { return {data, size}; }

  char data[N];
  std::uint16_t size = 0;
};

// The client's address, kept in 17 bytes per connection (an idle connection is small) and
// written as text for each line: an inet_ntop per logged request (no allocation, no system
// call) instead of 48 bytes of text in every connection.
struct PeerAddress {
  static constexpr std::size_t kTextBytes = 48;  // INET6_ADDRSTRLEN
  enum Family : std::uint8_t { kNotAsked, kUnknown, kV4, kV6 };

  void assign(const sockaddr_storage& peer);
  void assign(const net::IpAddress& address);
  bool known() const { return family != kNotAsked; }
  // The address as text, written into out; "-" when unknown.
  std::string_view text(char (&out)[kTextBytes]) const;

  Family family = kNotAsked;
  std::uint8_t bytes[16] = {};
};

struct AccessLogFields {
  LogText<512> request_line;  // "GET /a?b HTTP/1.1"; empty: unknown (logged as "-")
  LogText<256> referer;
  LogText<256> user_agent;
  // The client a trusted X-Forwarded-For named (net/http/forwarded_for.hpp); not known: the
  // connection's client.
  PeerAddress client;
};

// Copies the request line, Referer and User-Agent of a parsed head.
void capture_access_fields(const RequestHead& head, AccessLogFields& out);
// For a head that failed to parse or never completed: its first line as received, if any.
void capture_raw_request_line(std::string_view head_bytes, AccessLogFields& out);

// Longest line format_access_line writes.
inline constexpr std::size_t kMaxAccessLineBytes = 1280;

// Writes one line (newline included) into out, which has kMaxAccessLineBytes; returns its
// length. `date` is the Common Log Format time. Zero body bytes are logged as "-".
std::size_t format_access_line(char* out, std::string_view remote, std::string_view date,
                               const AccessLogFields& fields, int status, std::uint64_t body_bytes);

// One loop's access log: formats lines on the stack and hands them to the loop's sink.
class AccessLog {
 public:
  explicit AccessLog(net::LogSink& sink) : sink_(sink) {}
  // `now`: the loop turn's wall-clock second.
  void write(std::time_t now, std::string_view remote, const AccessLogFields& fields, int status,
             std::uint64_t body_bytes);

 private:
  std::string_view date(std::time_t now);  // formatted at most once a second

  net::LogSink& sink_;
  std::time_t second_ = -1;
  char date_[kClfDateLength] = {};
};

}  // namespace rs::http
