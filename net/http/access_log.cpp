#include "net/http/access_log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "net/http/request_head.hpp"

namespace rs::http {

namespace {

// Bounds of the escaped fields: a field's escaped text is cut to fit its bound, never inside an
// escape or a UTF-8 sequence.
constexpr std::size_t kRequestLineBound = sizeof(AccessLogFields::request_line.data);
constexpr std::size_t kRefererBound = sizeof(AccessLogFields::referer.data);
constexpr std::size_t kAgentBound = sizeof(AccessLogFields::user_agent.data);
constexpr std::size_t kMethodBound = 64;
constexpr std::size_t kProtocolBound = 32;
constexpr std::size_t kNumberBytes = 20;  // the longest std::uint64_t

// combined: remote, " - - [", date, "] \"", request line, "\" ", status, ' ', bytes, " \"",
// referer, "\" \"", user agent, "\" ", duration, '\n': each part at its longest.
static_assert(PeerAddress::kTextBytes + 6 + kClfDateLength + 3 + kRequestLineBound + 2 + 11 + 1 +
                  kNumberBytes + 2 + kRefererBound + 3 + kAgentBound + 2 + kNumberBytes + 1 <=
              kMaxAccessLineBytes);

constexpr std::string_view kJsonTime = "{\"time\":\"";
constexpr std::string_view kJsonRemote = "\",\"remote_addr\":\"";
constexpr std::string_view kJsonMethod = "\",\"method\":\"";
constexpr std::string_view kJsonTarget = "\",\"target\":\"";
constexpr std::string_view kJsonProtocol = "\",\"protocol\":\"";
constexpr std::string_view kJsonStatus = "\",\"status\":";
constexpr std::string_view kJsonBytes = ",\"bytes\":";
constexpr std::string_view kJsonReferer = ",\"referer\":\"";
constexpr std::string_view kJsonAgent = "\",\"user_agent\":\"";
constexpr std::string_view kJsonDuration = "\",\"request_time_us\":";
constexpr std::string_view kJsonEnd = "}\n";
static_assert(kJsonTime.size() + kIsoDateLength + kJsonRemote.size() + PeerAddress::kTextBytes +
                  kJsonMethod.size() + kMethodBound + kJsonTarget.size() + kRequestLineBound +
                  kJsonProtocol.size() + kProtocolBound + kJsonStatus.size() + 11 +
                  kJsonBytes.size() + kNumberBytes + kJsonReferer.size() + kRefererBound +
                  kJsonAgent.size() + kAgentBound + kJsonDuration.size() + kNumberBytes +
                  kJsonEnd.size() <=
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

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF) that starts text[i], a byte above 0x7f; 0 when there is none.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const auto continuation = [&](std::size_t k) { return (byte(k) & 0xc0) == 0x80; };
  const unsigned char c = byte(0);
  std::size_t n = 0;
  unsigned char low = 0x80;  // the second byte's range
  unsigned char high = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) low = 0xa0;
    if (c == 0xed) high = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) low = 0x90;
    if (c == 0xf4) high = 0x8f;
  }
  if (n == 0 || text.size() - i < n || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (!continuation(k)) return 0;
  }
  return n;
}

// Appends text at out[at..cap) as the inside of a JSON string (RFC 8259 7): '"' and '\' and
// control bytes escaped, well-formed UTF-8 as it is, any other byte as \u00XX. Stops before
// an escape or a character that would not fit whole. Returns the new end.
std::size_t put_json_escaped(char* out, std::size_t at, std::size_t cap, std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    char pair = 0;  // the letter of a two-character escape
    switch (c) {
      case '"':
        pair = '"';
        break;
      case '\\':
        pair = '\\';
        break;
      case '\b':
        pair = 'b';
        break;
      case '\f':
        pair = 'f';
        break;
      case '\n':
        pair = 'n';
        break;
      case '\r':
        pair = 'r';
        break;
      case '\t':
        pair = 't';
        break;
      default:
        break;
    }
    if (pair != 0) {
      if (cap - at < 2) break;
      out[at++] = '\\';
      out[at++] = pair;
      ++i;
      continue;
    }
    const std::size_t n = c < 0x20 || c == 0x7f ? 0 : c < 0x80 ? 1 : utf8_length(text, i);
    if (n == 0) {
      if (cap - at < 6) break;
      for (const char e : std::string_view("\\u00"))
        out[at++] = e;
      out[at++] = kHex[c >> 4];
      out[at++] = kHex[c & 0xf];
      ++i;
      continue;
    }
    if (cap - at < n) break;
    std::memcpy(out + at, text.data() + i, n);
    at += n;
    i += n;
  }
  return at;
}

// Copies as much of s as fits after what text holds.
template <std::size_t N>
void append(LogText<N>& text, std::string_view s) {
  const std::size_t n = std::min(s.size(), N - text.size);
  if (n == 0) return;  // s may be empty with no data at all (memcpy takes no null pointer)
  std::memcpy(text.data + text.size, s.data(), n);
  text.size = static_cast<std::uint16_t>(text.size + n);
}

// A string of the combined format: escaped, cut to `bound` bytes, "-" when it is empty.
std::size_t put_field(char* out, std::size_t at, std::string_view text, std::size_t bound) {
  if (text.empty()) text = "-";
  return put_escaped(out, at, at + bound, text);
}

std::size_t put(char* out, std::size_t at, std::string_view text) {
  std::memcpy(out + at, text.data(), text.size());
  return at + text.size();
}

std::size_t put_number(char* out, std::size_t at, std::uint64_t n) {
  return static_cast<std::size_t>(std::to_chars(out + at, out + at + kNumberBytes, n).ptr - out);
}

// The request line's parts, split at its first and last spaces: a line that did not parse may
// have fewer (all of it is then the method, or method and target).
struct RequestLineParts {
  std::string_view method, target, protocol;
};
RequestLineParts split_request_line(std::string_view line) {
  RequestLineParts parts;
  const std::size_t first = line.find(' ');
  parts.method = line.substr(0, first);
  if (first == std::string_view::npos) return parts;
  std::string_view rest = line.substr(first + 1);
  const std::size_t last = rest.rfind(' ');
  if (last == std::string_view::npos) {
    parts.target = rest;
    return parts;
  }
  parts.target = rest.substr(0, last);
  parts.protocol = rest.substr(last + 1);
  return parts;
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

std::size_t format_combined_line(char* out, std::string_view date, const AccessEntry& e) {
  std::size_t at = 0;
  at = put_field(out, at, e.remote, PeerAddress::kTextBytes);
  at = put(out, at, " - - [");
  at = put(out, at, date.substr(0, kClfDateLength));
  at = put(out, at, "] \"");
  at = put_field(out, at, e.fields.request_line.view(), kRequestLineBound);
  at = put(out, at, "\" ");
  at = static_cast<std::size_t>(std::to_chars(out + at, out + at + 11, e.status).ptr - out);
  out[at++] = ' ';
  if (e.body_bytes == 0) {
    out[at++] = '-';
  } else {
    at = put_number(out, at, e.body_bytes);
  }
  at = put(out, at, " \"");
  at = put_field(out, at, e.fields.referer.view(), kRefererBound);
  at = put(out, at, "\" \"");
  at = put_field(out, at, e.fields.user_agent.view(), kAgentBound);
  at = put(out, at, "\" ");
  at = put_number(out, at, e.duration_us);
  out[at++] = '\n';
  return at;
}

std::size_t format_json_line(char* out, std::string_view date, const AccessEntry& e) {
  const RequestLineParts parts = split_request_line(e.fields.request_line.view());
  const auto string = [out](std::size_t at, std::string_view text, std::size_t bound) {
    return put_json_escaped(out, at, at + bound, text);
  };
  std::size_t at = 0;
  at = put(out, at, kJsonTime);
  at = put(out, at, date.substr(0, kIsoDateLength));
  at = put(out, at, kJsonRemote);
  at = string(at, e.remote, PeerAddress::kTextBytes);
  at = put(out, at, kJsonMethod);
  at = string(at, parts.method, kMethodBound);
  at = put(out, at, kJsonTarget);
  at = string(at, parts.target, kRequestLineBound);
  at = put(out, at, kJsonProtocol);
  at = string(at, parts.protocol, kProtocolBound);
  at = put(out, at, kJsonStatus);
  at = static_cast<std::size_t>(std::to_chars(out + at, out + at + 11, e.status).ptr - out);
  at = put(out, at, kJsonBytes);
  at = put_number(out, at, e.body_bytes);
  at = put(out, at, kJsonReferer);
  at = string(at, e.fields.referer.view(), kRefererBound);
  at = put(out, at, kJsonAgent);
  at = string(at, e.fields.user_agent.view(), kAgentBound);
  at = put(out, at, kJsonDuration);
  at = put_number(out, at, e.duration_us);
  at = put(out, at, kJsonEnd);
  return at;
}

void AccessLog::write(std::time_t now, const AccessEntry& entry) {
  char line[kMaxAccessLineBytes];
  const std::size_t n = format_ == AccessLogFormat::kJson
                            ? format_json_line(line, date(now), entry)
                            : format_combined_line(line, date(now), entry);
  sink_.append({line, n});
}

std::string_view AccessLog::date(std::time_t now) {
  const bool json = format_ == AccessLogFormat::kJson;
  if (now != second_) {
    second_ = now;
    if (json) {
      format_iso_date(now, date_);
    } else {
      format_clf_date(now, date_);
    }
  }
  return {date_, json ? kIsoDateLength : kClfDateLength};
}

}  // namespace rs::http
