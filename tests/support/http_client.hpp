// Reading HTTP/1.1 responses off a blocking loopback socket in tests: the head, then a
// Content-Length body (none for HEAD, 1xx, 204 and 304), every wait bounded by a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace rs::test {

struct HttpResponse {
  bool ok = false;  // a whole response arrived before the deadline
  int status = 0;
  std::string head;  // status line and fields, each ending in CRLF
  std::string body;
  // The value of the first field with this name (as the server spells it), or empty.
  std::string header(std::string_view name) const;
};

class HttpReader {
 public:
  explicit HttpReader(int fd) : fd_(fd) {}
  HttpResponse next(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  // The next responses answer HEAD requests: they carry no body whatever Content-Length says.
  void expect_head_response(bool on) { head_request_ = on; }
  // Called after every read from the socket while a response is being read (to watch the
  // server meanwhile); reads are at most read_bytes each.
  void on_read(std::function<void()> watch, std::size_t read_bytes) {
    watch_ = std::move(watch);
    read_bytes_ = read_bytes;
  }
  // True when the server closed with nothing more to read.
  bool closed(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);

  int fd_;
  std::string buffer_;
  bool head_request_ = false;
  std::function<void()> watch_;
  std::size_t read_bytes_ = 65536;
};

}  // namespace rs::test
