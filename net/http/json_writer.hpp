// A minimal JSON writer into a caller's fixed buffer: objects, string and number members, with
// string escaping. Enough for the answers this server builds per request, without allocating.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rs::http {

class JsonWriter {
 public:
  JsonWriter(char* buffer, std::size_t capacity) : begin_(buffer), end_(buffer + capacity) {}

  JsonWriter& begin_object() {
    separator();
    put('{');
    first_ = true;
    return *this;
  }
  JsonWriter& end_object() {
    put('}');
    first_ = false;
    return *this;
  }
  JsonWriter& key(std::string_view name) {
    separator();
    string(name);
    put(':');
    first_ = true;  // the value that follows takes no comma
    return *this;
  }
  JsonWriter& value(std::string_view text) {
    separator();
    string(text);
    return *this;
  }
  JsonWriter& value(std::uint64_t number) {
    separator();
    const auto [end, ec] = std::to_chars(cursor_, end_, number);
    if (ec == std::errc()) {
      cursor_ = end;
    } else {
      overflow_ = true;
    }
    return *this;
  }

  bool ok() const { return !overflow_; }
  std::string_view view() const { return {begin_, static_cast<std::size_t>(cursor_ - begin_)}; }

 private:
  void separator() {
    if (!first_) put(',');
    first_ = false;
  }
  void put(char c) {
    if (cursor_ == end_) {
      overflow_ = true;
      return;
    }
    *cursor_++ = c;
  }
  void string(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    put('"');
    for (char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        put('\\');
        put(c);
      } else if (u < 0x20) {
        put('\\');
        put('u');
        put('0');
        put('0');
        put(kHex[u >> 4]);
        put(kHex[u & 15]);
      } else {
        put(c);
      }
    }
    put('"');
  }

  char* begin_;
  char* end_;
  char* cursor_ = begin_;
  bool first_ = true;
  bool overflow_ = false;
};

}  // namespace rs::http
