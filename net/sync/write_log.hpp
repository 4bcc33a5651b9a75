// An access-log writer of plain write(2) calls (net::LogFile), for the epoll loop and the
// threads backend's shared log: lines wait in a LogBuffer and are written at the end of a turn,
// all of a turn's lines in as few writes as there are chunks. A write to a regular file may wait
// for the disk; a readiness loop has no way around that (epoll does not apply to regular files),
// which is one of the costs the ring backend's asynchronous writes avoid.
#pragma once

#include <cstddef>
#include <string>

#include "core/timer_wheel.hpp"
#include "net/loop/log_file.hpp"
#include "net/loop_counters.hpp"

namespace rs::net::sync {

class WriteLog final : public LogFile {
 public:
  WriteLog(core::TimerWheel& timers, LoopCounters& counters, std::string path,
           std::size_t max_buffered_bytes)
      : LogFile(timers, counters, std::move(path), max_buffered_bytes) {}

  // End of a loop turn: write what is buffered.
  void flush();
  // Log rotation: open the path again and write to the new file from the next whole line.
  void reopen();
  // The grace period is over: drop what is still buffered.
  void abandon();
  bool idle() const { return fd_ < 0 || buffer_.abandoned() || buffer_.empty(); }
};

}  // namespace rs::net::sync
