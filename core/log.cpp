#include "core/log.hpp"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "core/clock.hpp"

namespace rs::core {

namespace detail {
std::atomic<LogLevel> g_log_level{LogLevel::kInfo};
}  // namespace detail

namespace {

std::atomic<int> g_log_fd{STDERR_FILENO};

// Padded to one width so messages line up.
fmt::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info ";
    case LogLevel::kWarn:
      return "warn ";
    case LogLevel::kError:
      return "error";
  }
  return "?????";
}

// gmtime_r and formatting the date cost more than the rest of a line; a thread logs many lines
// per second, so each thread keeps the text of the last second it saw.
struct SecondText {
  std::uint64_t second = ~std::uint64_t{0};
  char text[32] = {};
  std::size_t size = 0;
};

fmt::string_view second_text(std::uint64_t second) {
  thread_local SecondText cache;
  if (cache.second != second) {
    const auto t = static_cast<time_t>(second);
    tm parts{};
    ::gmtime_r(&t, &parts);
    cache.size = ::strftime(cache.text, sizeof cache.text, "%Y-%m-%dT%H:%M:%S", &parts);
    cache.second = second;
  }
  return {cache.text, cache.size};
}

// One write(2) per line; a partial write (signal, huge line) continues with the rest.
void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;  // nowhere to report a failing log
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void set_log_level(LogLevel level) {
  detail::g_log_level.store(level, std::memory_order_relaxed);
}
LogLevel log_level() {
  return detail::g_log_level.load(std::memory_order_relaxed);
}

void set_log_fd(int fd) {
  g_log_fd.store(fd, std::memory_order_relaxed);
}
int log_fd() {
  return g_log_fd.load(std::memory_order_relaxed);
}

namespace detail {

void format_log_line(fmt::memory_buffer& out, LogLevel level, std::uint64_t realtime_ms,
                     fmt::string_view format, fmt::format_args args) {
  auto it = fmt::appender(out);
  it = fmt::format_to(it, "{}.{:03}Z {} ", second_text(realtime_ms / 1000), realtime_ms % 1000,
                      level_name(level));
  it = fmt::vformat_to(it, format, args);
  *it++ = '\n';
}

void log_vwrite(LogLevel level, fmt::string_view format, fmt::format_args args) {
  fmt::memory_buffer line;
  format_log_line(line, level, realtime_ms(), format, args);
  write_all(log_fd(), line.data(), line.size());
}

}  // namespace detail

}  // namespace rs::core
