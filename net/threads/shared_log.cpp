#include "net/threads/shared_log.hpp"

#include <cstring>

#include "core/clock.hpp"

namespace rs::net::threads {

SharedLog::SharedLog(LoopCounters& counters, const LoopConfig& config)
    : timers_(core::monotonic_ms()),
      log_(timers_, counters, config.access_log_path, config.access_log_max_buffered_bytes),
      enabled_(log_.enabled()) {}

void SharedLog::write_lines(std::string_view lines) {
  std::lock_guard lock(mutex_);
  // Line by line, so that the bound drops (and counts) whole lines, as on the event loops.
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    const std::size_t n = end == std::string_view::npos ? lines.size() : end + 1;
    log_.append(lines.substr(0, n));
    lines.remove_prefix(n);
  }
  flush_locked();
}

void SharedLog::flush() {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  flush_locked();
}

void SharedLog::flush_locked() {
  timers_.advance(core::monotonic_ms());
  log_.flush();
  backlogged_.store(!log_.idle(), std::memory_order_release);
}

void SharedLog::reopen() {
  std::lock_guard lock(mutex_);
  log_.reopen();
  flush_locked();
}

void SharedLog::abandon() {
  std::lock_guard lock(mutex_);
  log_.abandon();
  backlogged_.store(false, std::memory_order_release);
}

WorkerLog::WorkerLog(SharedLog& shared, core::TimerWheel& timers)
    : shared_(shared), timers_(timers), flush_timer_(&WorkerLog::on_flush_timer, this) {
  if (shared_.enabled()) bytes_ = std::make_unique_for_overwrite<char[]>(kBytes);
}

void WorkerLog::append(std::string_view line) {
  if (line.size() > kBytes - size_) flush();
  if (line.size() > kBytes) {
    shared_.write_lines(line);  // longer than the buffer (never an access line): on its own
    return;
  }
  std::memcpy(bytes_.get() + size_, line.data(), line.size());
  if (size_ == 0) timers_.arm(flush_timer_, kFlushMs);
  size_ += line.size();
}

void WorkerLog::flush() {
  if (size_ == 0) return;
  timers_.cancel(flush_timer_);
  shared_.write_lines({bytes_.get(), size_});
  size_ = 0;
}

void WorkerLog::on_flush_timer(core::Timer& timer) {
  static_cast<WorkerLog*>(timer.context())->flush();
}

}  // namespace rs::net::threads
