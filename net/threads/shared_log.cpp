#include "net/threads/shared_log.hpp"

#include "core/clock.hpp"

namespace rs::net::threads {

SharedLog::SharedLog(LoopCounters& counters, const LoopConfig& config)
    : timers_(core::monotonic_ms()),
      log_(timers_, counters, config.access_log_path, config.access_log_max_buffered_bytes),
      enabled_(log_.enabled()) {}

void SharedLog::append(std::string_view line) {
  std::lock_guard lock(mutex_);
  log_.append(line);
}

void SharedLog::flush() {
  if (!enabled_) return;  // no lock on the request path when there is no log
  std::lock_guard lock(mutex_);
  timers_.advance(core::monotonic_ms());
  log_.flush();
}

void SharedLog::reopen() {
  std::lock_guard lock(mutex_);
  log_.reopen();
  log_.flush();
}

void SharedLog::abandon() {
  std::lock_guard lock(mutex_);
  log_.abandon();
}

}  // namespace rs::net::threads
