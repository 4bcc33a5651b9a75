// What the access-log writers of every backend share (uring::RingLog writes through the ring,
// sync::WriteLog with write(2)): the path, the lines waiting in a LogBuffer, the descriptor and
// the one a rotation opened, and the pause after a failed write. How a write or an open is made
// is the writer's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/timer_wheel.hpp"
#include "net/log_sink.hpp"
#include "net/loop/log_buffer.hpp"
#include "net/loop_counters.hpp"

namespace rs::net {

class LogFile : public LogSink {
 public:
  // After a failed write (ENOSPC, EIO) the next try waits this long instead of spinning.
  static constexpr std::uint64_t kRetryMs = 1000;

  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Slabs the buffer's pool grew by after start-up.
  std::uint64_t pool_grows() const { return buffer_.grows(); }
  void append(std::string_view line) override { buffer_.append(line); }

 protected:
  // Opens `path` for appending (synchronously: this is start-up), or stays disabled when the
  // path is empty. Throws StartupError naming the path when it cannot be opened.
  LogFile(core::TimerWheel& timers, LoopCounters& counters, std::string path,
          std::size_t max_buffered_bytes);
  ~LogFile();

  // n bytes of the buffer's front reached the file.
  void wrote(std::size_t n);
  // A write failed (error: an errno value): counted, reported once per run of failures, and
  // retried after kRetryMs unless the log was abandoned.
  void write_failed(int error);
  bool retry_pending() const { return retry_timer_.armed(); }
  // A rotation's open succeeded (fd) or failed (error); the newest open replaces an older one
  // not yet taken over.
  void reopened(int fd);
  void reopen_failed(int error);
  // A rotation's file takes over when one is open and no write is in flight: between whole
  // lines, or at once after a failed write (a full disk), dropping the rest of the line the
  // old file holds the start of, which no write could finish.
  void switch_file_if_ready(bool write_in_flight);
  // The grace period is over: no more retries; the buffer drops what it holds.
  void abandon_buffer();

  LogBuffer buffer_;
  const std::string path_;
  int fd_ = -1;
  int next_fd_ = -1;  // opened by a rotation, taken over between whole lines

 private:
  static void on_retry(core::Timer& timer);

  core::TimerWheel& timers_;
  LoopCounters& counters_;
  core::Timer retry_timer_;
  bool error_reported_ = false;  // one message per run of failed writes
};

}  // namespace rs::net
