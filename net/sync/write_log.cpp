#include "net/sync/write_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace rs::net::sync {

void WriteLog::flush() {
  switch_file_if_ready(false);  // a rotation after a failed write switches before the retry
  if (fd_ < 0 || buffer_.abandoned() || retry_pending()) return;
  while (!buffer_.empty()) {
    // One chunk of whole lines per write: a short write resumes mid-chunk, never mid-file.
    const std::span<const std::byte> front = buffer_.front();
    const ssize_t n = ::write(fd_, front.data(), front.size());
    if (n > 0) {
      wrote(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // ENOSPC, EIO (or a write of nothing): the lines wait (up to the bound) for a retry.
    write_failed(n < 0 ? errno : EIO);
    break;
  }
  switch_file_if_ready(false);
}

void WriteLog::reopen() {
  if (fd_ < 0) return;
  const int fd = ::open(path_.c_str(), access_log_open_flags(), kAccessLogMode);
  if (fd < 0) {
    reopen_failed(errno);
  } else {
    reopened(fd);
  }
}

void WriteLog::abandon() {
  abandon_buffer();
  buffer_.drop_buffered();
}

}  // namespace rs::net::sync
