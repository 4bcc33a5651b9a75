#include "net/http/access_log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include "net/http/request_head.hpp"

namespace rs::http {

namespace {

// remote, " - - [", date, "] \"", request line, "\" ", status, ' ', bytes, " \"", referer,
// "\" \"", user agent, "\"\n": each part at its longest.
static_assert(PeerAddress::kTextBytes + 6 + kClfDateLength + 3 +
                  sizeof(AccessLogFields::request_line.data) + 2 + 11 + 1 + 20 + 2 +
                  sizeof(AccessLogFields::referer.data) + 3 +
                  sizeof(AccessLogFields::user_agent.data) + 2 <=
              kMaxAccessLineBytes);

constexpr char kHex[] = "0123456789abcdef";

bool needs_escape(unsigned char c) {
  return c < 0x20 || c > 0x7e || c == '"' || c == '\\';
}

// Appends text at out[at..cap), escaping as \xHH; stops before a byte (or an escape) that
// would not fit whole. Returns the new end.
std::size_t put_escaped(char* out, std::size_t at, std::size_t cap, std::string_view text) {
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (!needs_escape(c)) {
      if (at == cap) break;
      out[at++] = ch;
    } else {
      if (cap - at < 4) break;
      out[at++] = '\\';
      out[at++] = 'x';
      out[at++] = kHex[c >> 4];
      out[at++] = kHex[c & 0xf];
    }
  }
  return at;
}

template <std::size_t N>
void append(LogText<N>& text, std::string_view s) {
  text.size = static_cast<std::uint16_t>(put_escaped(text.data, text.size, N, s));
}

// Appends a logged string inside the line: "-" when it is empty.
std::size_t put_field(char* out, std::size_t at, std::string_view text) {
  if (text.empty()) text = "-";
  std::memcpy(out + at, text.data(), text.size());
  return at + text.size();
}

std::size_t put(char* out, std::size_t at, std::string_view text) {
  std::memcpy(out + at, text.data(), text.size());
  return at + text.size();
}

}  // namespace

void capture_access_fields(const RequestHead& head, AccessLogFields& out) {
  out.request_line.size = 0;
  append(out.request_line, head.method);
  append(out.request_line, " ");
  append(out.request_line, head.target);
  char version[32] = "HTTP/";
  char* end = std::to_chars(version + 5, version + 16, head.version_major).ptr;
  *end++ = '.';
  end = std::to_chars(end, version + sizeof(version), head.version_minor).ptr;
  append(out.request_line, " ");
  append(out.request_line, {version, static_cast<std::size_t>(end - version)});
  out.referer.size = 0;
  out.user_agent.size = 0;
  if (const auto referer = head.header_value("Referer")) append(out.referer, *referer);
  if (const auto agent = head.header_value("User-Agent")) append(out.user_agent, *agent);
}

void capture_raw_request_line(std::string_view head_bytes, AccessLogFields& out) {
  const std::size_t begin = head_bytes.find_first_not_of("\r\n");
  std::string_view line;
  if (begin != std::string_view::npos) {
    line = head_bytes.substr(begin);
    line = line.substr(0, line.find_first_of("\r\n"));
  }
  out.request_line.size = 0;
  out.referer.size = 0;
  out.user_agent.size = 0;
  append(out.request_line, line);
}

// A v4 client of a dual-stack listener (v4-mapped) is logged as the v4 address it is.
void PeerAddress::assign(const sockaddr_storage& peer) {
  assign(net::IpAddress::from(peer));
}

void PeerAddress::assign(const net::IpAddress& address) {
  static_assert(sizeof(bytes) == sizeof(address.bytes));
  std::memcpy(bytes, address.bytes, sizeof(bytes));
  family = address.family == net::IpAddress::kV4   ? kV4
           : address.family == net::IpAddress::kV6 ? kV6
                                                   : kUnknown;
}

std::string_view PeerAddress::text(char (&out)[kTextBytes]) const {
  const char* text = nullptr;
  if (family == kV4) text = ::inet_ntop(AF_INET, bytes, out, sizeof(out));
  if (family == kV6) text = ::inet_ntop(AF_INET6, bytes, out, sizeof(out));
  if (text == nullptr) return "-";
  return {out, std::strlen(out)};
}

std::size_t format_access_line(char* out, std::string_view remote, std::string_view date,
                               const AccessLogFields& fields, int status,
                               std::uint64_t body_bytes) {
  std::size_t at = 0;
  at = put_field(out, at, remote.substr(0, PeerAddress::kTextBytes));
  at = put(out, at, " - - [");
  at = put(out, at, date.substr(0, kClfDateLength));
  at = put(out, at, "] \"");
  at = put_field(out, at, fields.request_line.view());
  at = put(out, at, "\" ");
  at = static_cast<std::size_t>(std::to_chars(out + at, out + at + 11, status).ptr - out);
  out[at++] = ' ';
  if (body_bytes == 0) {
    out[at++] = '-';
  } else {
    at = static_cast<std::size_t>(std::to_chars(out + at, out + at + 20, body_bytes).ptr - out);
  }
  at = put(out, at, " \"");
  at = put_field(out, at, fields.referer.view());
  at = put(out, at, "\" \"");
  at = put_field(out, at, fields.user_agent.view());
  at = put(out, at, "\"\n");
  return at;
}

void AccessLog::write(std::time_t now, std::string_view remote, const AccessLogFields& fields,
                      int status, std::uint64_t body_bytes) {
  char line[kMaxAccessLineBytes];
  const std::size_t n = format_access_line(line, remote, date(now), fields, status, body_bytes);
  sink_.append({line, n});
}

std::string_view AccessLog::date(std::time_t now) {
  if (now != second_) {
    second_ = now;
    format_clf_date(now, date_);
  }
  return {date_, sizeof(date_)};
}

}  // namespace rs::http
