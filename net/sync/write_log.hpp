// An access-log writer of plain write(2) calls (net::LogSink), for the epoll loop and the threads
// backend's shared log: lines wait in a net::LogBuffer and are written at the end of a turn, all of
// a turn's lines in as few writes as there are chunks. A write to a regular file may wait for the
// disk; a readiness loop has no way around that (epoll does not apply to regular files), which is
// one of the costs the ring backend's asynchronous writes avoid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/timer_wheel.hpp"
#include "net/log_sink.hpp"
#include "net/loop/log_buffer.hpp"
#include "net/loop_counters.hpp"

namespace rs::net::sync {

class WriteLog final : public LogSink {
 public:
  // After a failed write (ENOSPC, EIO) the next try waits this long instead of spinning.
  static constexpr std::uint64_t kRetryMs = 1000;

  // Opens `path` for appending, or stays disabled when it is empty. Throws StartupError.
  WriteLog(core::TimerWheel& timers, LoopCounters& counters, std::string path,
           std::size_t max_buffered_bytes);
  ~WriteLog();
  WriteLog(const WriteLog&) = delete;
  WriteLog& operator=(const WriteLog&) = delete;

  bool enabled() const { return fd_ >= 0; }
  void append(std::string_view line) override { buffer_.append(line); }

  // End of a loop turn: write what is buffered.
  void flush();
  // Log rotation: open the path again and write to the new file from the next whole line.
  void reopen();
  // The grace period is over: drop what is still buffered.
  void abandon();
  bool idle() const { return fd_ < 0 || buffer_.abandoned() || buffer_.empty(); }

 private:
  static void on_retry(core::Timer& timer);

  core::TimerWheel& timers_;
  LoopCounters& counters_;
  std::string path_;
  LogBuffer buffer_;
  core::Timer retry_timer_;
  int fd_ = -1;
  int next_fd_ = -1;
  bool error_reported_ = false;  // one message per run of failed writes
};

}  // namespace rs::net::sync
