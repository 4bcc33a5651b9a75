#include "net/sync/write_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/log.hpp"

namespace rs::net::sync {

WriteLog::WriteLog(core::TimerWheel& timers, LoopCounters& counters, std::string path,
                   std::size_t max_buffered_bytes)
    : timers_(timers),
      counters_(counters),
      path_(std::move(path)),
      buffer_(counters, max_buffered_bytes),
      retry_timer_(&WriteLog::on_retry, this) {
  if (!path_.empty()) fd_ = open_access_log(path_);
}

WriteLog::~WriteLog() {
  if (fd_ >= 0) ::close(fd_);
  if (next_fd_ >= 0) ::close(next_fd_);
}

void WriteLog::flush() {
  if (fd_ < 0 || buffer_.abandoned() || retry_timer_.armed()) return;
  while (!buffer_.empty()) {
    // One chunk of whole lines per write: a short write resumes mid-chunk, never mid-file.
    const std::span<const std::byte> front = buffer_.front();
    const ssize_t n = ::write(fd_, front.data(), front.size());
    if (n > 0) {
      buffer_.written(static_cast<std::size_t>(n));
      error_reported_ = false;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // ENOSPC, EIO (or a write of nothing): the lines wait (up to the bound) for a retry.
    counters_.access_log_write_errors.add();
    if (!error_reported_) {
      error_reported_ = true;
      core::log_error("access log {}: write failed: {}; retrying every {} ms", path_,
                      std::strerror(n < 0 ? errno : EIO), kRetryMs);
    }
    timers_.arm(retry_timer_, kRetryMs);
    break;
  }
  // The new file takes over between whole lines, so no line is split across the rotation.
  if (next_fd_ >= 0 && buffer_.at_line_start()) {
    ::close(fd_);
    fd_ = std::exchange(next_fd_, -1);
    counters_.access_log_reopens.add();
  }
}

void WriteLog::on_retry(core::Timer& /*timer*/) {
  // Nothing to do here: the end of this loop turn flushes again.
}

void WriteLog::reopen() {
  if (fd_ < 0) return;
  const int fd = ::open(path_.c_str(), access_log_open_flags(), kAccessLogMode);
  if (fd < 0) {
    core::log_error("access log {}: reopen failed: {}; still writing to the old file", path_,
                    std::strerror(errno));
    return;
  }
  if (next_fd_ >= 0) ::close(next_fd_);
  next_fd_ = fd;
}

void WriteLog::abandon() {
  buffer_.abandon();
  timers_.cancel(retry_timer_);
  buffer_.drop_buffered();
}

}  // namespace rs::net::sync
