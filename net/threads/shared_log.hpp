// The access log of the threads backend. Each worker buffers its own lines (WorkerLog), so the
// request path takes no lock; a buffer of whole lines goes to the one file (SharedLog) when the
// worker is about to wait for input (the lines of a pass together, as an event loop writes a
// turn's), when it is full, a second after its first line while the worker blocks in a send or
// sleeps, and when the worker's connection closes. The shared part takes them under a lock, a
// buffer at a time, and writes them with the same bound, retries and rotation as every other
// loop's log (sync::WriteLog); O_APPEND keeps lines whole in the file.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/timer_wheel.hpp"
#include "net/log_sink.hpp"
#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/sync/write_log.hpp"

namespace rs::net::threads {

class SharedLog {
 public:
  SharedLog(LoopCounters& counters, const LoopConfig& config);
  bool enabled() const { return enabled_; }
  // Whole lines, each with its newline: kept (up to the bound; beyond it dropped and counted)
  // and written now, in one piece with any that wait.
  void write_lines(std::string_view lines);
  // Writes what waits (after a failed write: once the retry pause is over).
  void flush();
  // Lines wait for a retry after a failed write: flush() again, within LogFile::kRetryMs.
  bool backlogged() const { return backlogged_.load(std::memory_order_acquire); }
  // Switches files now, between whole lines, whether or not a worker is busy.
  void reopen();
  void abandon();

 private:
  void flush_locked();

  std::mutex mutex_;
  core::TimerWheel timers_;  // the write-retry timer of log_
  sync::WriteLog log_;
  const bool enabled_;
  std::atomic<bool> backlogged_{false};
};

// One worker's lines on their way to the SharedLog. Only the worker's thread uses it.
class WorkerLog final : public LogSink {
 public:
  // The buffer: room for several of the longest access lines, dozens of typical ones.
  static constexpr std::size_t kBytes = 4096;
  // The longest a line waits in the buffer of a worker whose connection stays open (blocked in
  // a send or asleep: one about to wait for input hands its lines over first).
  static constexpr std::uint64_t kFlushMs = 1000;

  // timers: the worker's wheel, which bounds how long a buffered line waits.
  WorkerLog(SharedLog& shared, core::TimerWheel& timers);
  WorkerLog(const WorkerLog&) = delete;
  WorkerLog& operator=(const WorkerLog&) = delete;

  bool enabled() const { return shared_.enabled(); }
  void append(std::string_view line) override;
  // Hands what is buffered to the shared log.
  void flush();

 private:
  static void on_flush_timer(core::Timer& timer);

  SharedLog& shared_;
  core::TimerWheel& timers_;
  core::Timer flush_timer_;
  // Made with the worker, on the acceptor's thread, and only when the log is on.
  std::unique_ptr<char[]> bytes_;
  std::size_t size_ = 0;
};

}  // namespace rs::net::threads
