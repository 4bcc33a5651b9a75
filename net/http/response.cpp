#include "net/http/response.hpp"

#include <cassert>
#include <charconv>
#include <cstring>

namespace rs::http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

ResponseStamp::ResponseStamp() {
  std::memcpy(ok_head_, kOkLine.data(), kOkLine.size());
  std::memcpy(ok_head_ + kOkLine.size(), kServerAndDate.data(), kServerAndDate.size());
  std::memcpy(ok_head_ + sizeof(ok_head_) - 2, "\r\n", 2);
}

void ResponseStamp::format(std::time_t now) {
  second_ = now;
  format_imf_fixdate(now, ok_head_ + kDateAt);
}

ResponseHead::ResponseHead(core::BufferChain& out, int status, const ResponseStamp& stamp)
    : out_(out) {
  const auto space = out.prepare(kMaxHeadBytes);
  begin_ = reinterpret_cast<char*>(space.data());
  cursor_ = begin_;
  if (status == 200) {
    put(stamp.ok_head());  // nearly every answer: one copy
    return;
  }
  put("HTTP/1.1 ");
  put(static_cast<std::uint64_t>(status));
  put(" ");
  put(reason_phrase(status));
  put("\r\n");
  put(kServerAndDate);
  put(stamp.date());
  put("\r\n");
}

ResponseHead& ResponseHead::add(std::string_view name, std::string_view value) {
  put(name);
  put(": ");
  put(value);
  put("\r\n");
  return *this;
}

ResponseHead& ResponseHead::add(std::string_view name, std::uint64_t value) {
  put(name);
  put(": ");
  put(value);
  put("\r\n");
  return *this;
}

void ResponseHead::finish(Persistence persistence) {
  if (persistence == Persistence::kClose) put("Connection: close\r\n");
  if (persistence == Persistence::kKeepAliveHttp10) put("Connection: keep-alive\r\n");
  put("\r\n");
  out_.commit(static_cast<std::size_t>(cursor_ - begin_));
}

void ResponseHead::put(std::string_view text) {
  assert(static_cast<std::size_t>(cursor_ - begin_) + text.size() <= kMaxHeadBytes);
  std::memcpy(cursor_, text.data(), text.size());
  cursor_ += text.size();
}

void ResponseHead::put(std::uint64_t value) {
  const auto [end, ec] = std::to_chars(cursor_, begin_ + kMaxHeadBytes, value);
  assert(ec == std::errc());
  cursor_ = end;
}

void write_response(core::BufferChain& out, int status, const ResponseStamp& stamp,
                    std::string_view content_type, std::string_view body, bool head_only,
                    Persistence persistence) {
  ResponseHead head(out, status, stamp);
  if (!content_type.empty()) head.add("Content-Type", content_type);
  head.add("Content-Length", body.size());
  head.finish(persistence);
  if (!head_only && !body.empty()) out.append(body);
}

}  // namespace rs::http
