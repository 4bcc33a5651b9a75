#pragma once

// Line logging with fmt. Each line is formatted into a stack buffer and leaves in one write(2),
// so lines from different threads never interleave (up to PIPE_BUF bytes on pipes) and short
// lines allocate nothing. The level check is inline, so a disabled log_debug costs a load and a
// compare and formats nothing.
//
//   2026-11-26T12:00:00.123Z info  listening on 0.0.0.0:8080

#include <fmt/format.h>

#include <atomic>
#include <cstdint>

namespace rs::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void set_log_level(LogLevel level);
LogLevel log_level();

// Where lines go: stderr (2) unless changed. The caller keeps the descriptor open.
void set_log_fd(int fd);
int log_fd();

namespace detail {

extern std::atomic<LogLevel> g_log_level;

void log_vwrite(LogLevel level, fmt::string_view format, fmt::format_args args);

// Appends one whole line (UTC timestamp, level, message, newline) for the given wall-clock time.
void format_log_line(fmt::memory_buffer& out, LogLevel level, std::uint64_t realtime_ms,
                     fmt::string_view format, fmt::format_args args);

}  // namespace detail

inline bool log_enabled(LogLevel level) {
  return level >= detail::g_log_level.load(std::memory_order_relaxed);
}

template <class... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(LogLevel::kDebug)) {
    return;
  }
  detail::log_vwrite(LogLevel::kDebug, format, fmt::make_format_args(args...));
}

template <class... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(LogLevel::kInfo)) {
    return;
  }
  detail::log_vwrite(LogLevel::kInfo, format, fmt::make_format_args(args...));
}

template <class... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(LogLevel::kWarn)) {
    return;
  }
  detail::log_vwrite(LogLevel::kWarn, format, fmt::make_format_args(args...));
}

template <class... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(LogLevel::kError)) {
    return;
  }
  detail::log_vwrite(LogLevel::kError, format, fmt::make_format_args(args...));
}

}  // namespace rs::core
