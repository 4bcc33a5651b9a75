#include "net/uring/ring_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "net/socket.hpp"

namespace rs::net::uring {

namespace {

// O_APPEND: every write lands at the end of the file as one piece, whoever else appends.
constexpr int kOpenFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
constexpr mode_t kOpenMode = 0644;
// Few chunks per slab: the pool grows only as far as the disk falls behind.
constexpr std::size_t kChunksPerSlab = 4;

}  // namespace

RingLog::RingLog(Ring& ring, core::TimerWheel& timers, LoopCounters& counters, std::string path,
                 std::size_t max_buffered_bytes)
    : ring_(ring),
      timers_(timers),
      counters_(counters),
      path_(std::move(path)),
      max_buffered_bytes_(max_buffered_bytes),
      pool_(kChunkBytes, kChunksPerSlab),
      pending_(pool_),
      retry_timer_(&RingLog::on_retry, this) {
  bind<&RingLog::on_write>(write_op_, this);
  bind<&RingLog::on_open>(open_op_, this);
  if (path_.empty()) return;
  fd_ = ::open(path_.c_str(), kOpenFlags, kOpenMode);
  if (fd_ < 0) {
    throw StartupError(fmt::format(
        "access log {}: {}; give --access-log a path in an existing, writable directory", path_,
        std::strerror(errno)));
  }
  pool_.reserve(kChunksPerSlab);  // at start-up, so steady logging never reaches the heap
}

RingLog::~RingLog() {
  if (fd_ >= 0) ::close(fd_);
  if (next_fd_ >= 0) ::close(next_fd_);
}

void RingLog::append(std::string_view line) {
  if (line.empty()) return;
  if (abandoned_ || line.size() > kChunkBytes ||
      pending_.size() + line.size() > max_buffered_bytes_) {
    counters_.access_log_dropped.add();
    return;
  }
  // A line never straddles two chunks: prepare() starts a fresh chunk when the tail lacks
  // room, so each write (one chunk's bytes) is made of whole lines.
  const std::span<std::byte> room = pending_.prepare(line.size());
  std::memcpy(room.data(), line.data(), line.size());
  pending_.commit(line.size());
}

void RingLog::flush() {
  if (fd_ < 0 || write_in_flight_ || abandoned_ || retry_timer_.armed() || pending_.empty()) {
    return;
  }
  maybe_switch();
  // Only the front chunk's bytes: appends during the write go to its unwritten tail or to later
  // chunks, never to the bytes the kernel is reading.
  const std::span<const std::byte> front = pending_.front_segment();
  io_uring_sqe* sqe = ring_.sqe(write_op_);
  // Offset -1: the file position, which O_APPEND puts at the end of the file.
  io_uring_prep_write(sqe, fd_, front.data(), static_cast<unsigned>(front.size()),
                      static_cast<std::uint64_t>(-1));
  write_in_flight_ = true;
}

void RingLog::on_write(std::int32_t res, std::uint32_t /*flags*/) {
  write_in_flight_ = false;
  if (res > 0) {
    // A short write leaves the rest of the chunk at the front; the next turn writes it.
    const std::span<const std::byte> front = pending_.front_segment();
    at_line_start_ = front[static_cast<std::size_t>(res) - 1] == std::byte{'\n'};
    pending_.consume(static_cast<std::size_t>(res));
    error_reported_ = false;
  } else if (res != -EINTR && res != -EAGAIN) {
    // ENOSPC, EIO, EBADF (or a write of nothing): retrying at once would spin; the lines wait
    // (up to the bound) and the write is tried again after a pause.
    counters_.access_log_write_errors.add();
    if (!error_reported_) {
      error_reported_ = true;
      core::log_error("access log {}: write failed: {}; retrying every {} ms", path_,
                      std::strerror(res < 0 ? -res : EIO), kRetryMs);
    }
    if (!abandoned_) timers_.arm(retry_timer_, kRetryMs);
  }
  if (abandoned_) drop_buffered();
  maybe_switch();
}

void RingLog::on_retry(core::Timer& /*timer*/) {
  // Nothing to do here: the end of this loop turn flushes again.
}

void RingLog::reopen() {
  if (fd_ < 0) return;
  if (open_in_flight_) {
    reopen_again_ = true;  // the file may have moved again since that open started
    return;
  }
  start_open();
}

void RingLog::start_open() {
  // The open goes through the ring too: path lookup and creation may wait for the disk.
  io_uring_sqe* sqe = ring_.sqe(open_op_);
  io_uring_prep_openat(sqe, AT_FDCWD, path_.c_str(), kOpenFlags, kOpenMode);
  open_in_flight_ = true;
}

void RingLog::on_open(std::int32_t res, std::uint32_t /*flags*/) {
  open_in_flight_ = false;
  if (res >= 0) {
    if (next_fd_ >= 0) ::close(next_fd_);  // never taken over: a newer open replaces it
    next_fd_ = res;
  } else {
    core::log_error("access log {}: reopen failed: {}; still writing to the old file", path_,
                    std::strerror(-res));
  }
  if (reopen_again_ && !abandoned_) {
    reopen_again_ = false;
    start_open();
  }
  maybe_switch();
}

// The new file takes over only between writes and at a line boundary, so no line is split
// between the old file and the new one.
void RingLog::maybe_switch() {
  if (next_fd_ < 0 || write_in_flight_ || !at_line_start_) return;
  // Closing a regular file does not wait for the disk; no operation names the old fd now.
  ::close(fd_);
  fd_ = std::exchange(next_fd_, -1);
  counters_.access_log_reopens.add();
}

void RingLog::abandon() {
  abandoned_ = true;
  reopen_again_ = false;
  timers_.cancel(retry_timer_);
  if (!write_in_flight_) drop_buffered();  // otherwise once the kernel is done with the bytes
}

void RingLog::drop_buffered() {
  std::uint64_t lines = 0;
  pending_.for_each_segment([&](std::span<const std::byte> bytes) {
    lines += static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), std::byte{'\n'}));
  });
  if (lines > 0) counters_.access_log_dropped.add(lines);
  pending_.clear();
}

bool RingLog::idle() const {
  return !write_in_flight_ && !open_in_flight_ && (fd_ < 0 || abandoned_ || pending_.empty());
}

}  // namespace rs::net::uring
