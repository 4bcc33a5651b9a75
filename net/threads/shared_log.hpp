// The access log of every worker of the threads backend: whole lines into one buffer under a
// lock, written by whichever worker ends a pass. O_APPEND keeps lines whole in the file; the
// lock keeps the buffer whole.
#pragma once

#include <mutex>
#include <string_view>

#include "core/timer_wheel.hpp"
#include "net/log_sink.hpp"
#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/sync/write_log.hpp"

namespace rs::net::threads {

class SharedLog final : public LogSink {
 public:
  SharedLog(LoopCounters& counters, const LoopConfig& config);
  bool enabled() const { return enabled_; }
  void append(std::string_view line) override;
  void flush();
  // Switches files now, between whole lines, whether or not a worker is busy.
  void reopen();
  void abandon();

 private:
  std::mutex mutex_;
  core::TimerWheel timers_;  // the write-retry timer of log_
  sync::WriteLog log_;
  const bool enabled_;
};

}  // namespace rs::net::threads
