#include "net/loop/log_file.hpp"

#include <unistd.h>

#include <cstring>
#include <utility>

#include "core/log.hpp"

namespace rs::net {

LogFile::LogFile(core::TimerWheel& timers, LoopCounters& counters, std::string path,
                 std::size_t max_buffered_bytes)
    : buffer_(counters, max_buffered_bytes),
      path_(std::move(path)),
      timers_(timers),
      counters_(counters),
      retry_timer_(&LogFile::on_retry, this) {
  if (!path_.empty()) fd_ = open_access_log(path_);
}

LogFile::~LogFile() {
  if (fd_ >= 0) ::close(fd_);
  if (next_fd_ >= 0) ::close(next_fd_);
}

void LogFile::wrote(std::size_t n) {
  buffer_.written(n);
  error_reported_ = false;
}

void LogFile::write_failed(int error) {
  counters_.access_log_write_errors.add();
  if (!error_reported_) {
    error_reported_ = true;
    core::log_error("access log {}: write failed: {}; retrying every {} ms", path_,
                    std::strerror(error), kRetryMs);
  }
  if (!buffer_.abandoned()) timers_.arm(retry_timer_, kRetryMs);
}

void LogFile::on_retry(core::Timer& /*timer*/) {
  // Nothing to do here: the end of the loop turn flushes again.
}

void LogFile::reopened(int fd) {
  if (next_fd_ >= 0) ::close(next_fd_);  // never taken over: the newer open replaces it
  next_fd_ = fd;
}

void LogFile::reopen_failed(int error) {
  core::log_error("access log {}: reopen failed: {}; still writing to the old file", path_,
                  std::strerror(error));
}

void LogFile::switch_file_if_ready(bool write_in_flight) {
  if (next_fd_ < 0 || write_in_flight) return;
  if (!buffer_.at_line_start()) {
    if (!retry_pending()) return;  // the next write finishes the line
    buffer_.drop_partial_line();
  }
  // Closing a regular file does not wait for the disk; no operation names the old fd now.
  ::close(fd_);
  fd_ = std::exchange(next_fd_, -1);
  counters_.access_log_reopens.add();
  // The new file is tried at once, not after the pause the old one's failure started.
  timers_.cancel(retry_timer_);
  error_reported_ = false;
}

void LogFile::abandon_buffer() {
  buffer_.abandon();
  timers_.cancel(retry_timer_);
}

}  // namespace rs::net
