// The HTTP access log: a line per response, in one of two formats (docs/access-log.md):
//
// combined: Combined Log Format and the request's duration in microseconds,
//   127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 13 "http://r/" "curl/8.5" 57
// json: one JSON object per line,
//   {"time":"2000-10-10T13:55:36+00:00","remote_addr":"127.0.0.1","method":"GET","target":"/a",
//    "protocol":"HTTP/1.1","status":200,"bytes":13,"referer":"http://r/",
//    "user_agent":"curl/8.5","request_time_us":57}
//
// What a line needs from the request head (request line, Referer, User-Agent) is copied as
// received into fixed-size fields of the Request at route time, and only when the log is on:
// the head's views die after routing, and a deferred answer is logged long after. Strings are
// escaped as the line is written, the format's way (combined: \xHH for '"', '\', control bytes
// and bytes above 0x7e; json: RFC 8259, invalid UTF-8 bytes as \u00XX), each cut to a bound so
// that a line never exceeds kMaxAccessLineBytes; nothing allocates.
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

// As received, cut to fit (escaped when a line is written).
struct AccessLogFields {
  LogText<512> request_line;  // "GET /a?b HTTP/1.1"; empty: unknown (logged as "-")
  LogText<256> referer;
  LogText<256> user_agent;
  // The client a trusted X-Forwarded-For named (net/http/forwarded_for.hpp); not known: the
  // connection's client.
  PeerAddress client;
};

enum class AccessLogFormat : std::uint8_t { kCombined, kJson };

// Copies the request line, Referer and User-Agent of a parsed head.
void capture_access_fields(const RequestHead& head, AccessLogFields& out);
// For a head that failed to parse or never completed: its first line as received, if any.
void capture_raw_request_line(std::string_view head_bytes, AccessLogFields& out);

// What one line says (besides the time).
struct AccessEntry {
  std::string_view remote;  // the client's address, "-" when unknown
  const AccessLogFields& fields;
  int status;
  std::uint64_t body_bytes;
  std::uint64_t duration_us;  // from the request's first byte to its response (docs/metrics.md)
};

// Longest line either format writes.
inline constexpr std::size_t kMaxAccessLineBytes = 1536;

// Write one line (newline included) into out, which has kMaxAccessLineBytes; return its length.
// combined: `date` is the Common Log Format time; zero body bytes are logged as "-".
std::size_t format_combined_line(char* out, std::string_view date, const AccessEntry& entry);
// json: `date` is the ISO 8601 time.
std::size_t format_json_line(char* out, std::string_view date, const AccessEntry& entry);

// One loop's access log: formats lines on the stack and hands them to the loop's sink.
class AccessLog {
 public:
  AccessLog(net::LogSink& sink, AccessLogFormat format) : sink_(sink), format_(format) {}
  // `now`: the loop turn's wall-clock second.
  void write(std::time_t now, const AccessEntry& entry);

 private:
  std::string_view date(std::time_t now);  // formatted at most once a second

  net::LogSink& sink_;
  AccessLogFormat format_;
  std::time_t second_ = -1;
  char date_[kClfDateLength > kIsoDateLength ? kClfDateLength : kIsoDateLength] = {};
};

}  // namespace rs::http
