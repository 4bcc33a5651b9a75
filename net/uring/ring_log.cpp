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

RingLog::RingLog(Ring& ring, core::TimerWheel& timers, LoopCounters& counters, std::string path,
                 std::size_t max_buffered_bytes)
    : LogFile(timers, counters, std::move(path), max_buffered_bytes), ring_(ring) {
  bind<&RingLog::on_write>(write_op_, this);
  bind<&RingLog::on_open>(open_op_, this);
}

void RingLog::flush() {
  switch_file_if_ready(write_in_flight_);  // a rotation after a failed write switches now
  if (fd_ < 0 || write_in_flight_ || buffer_.abandoned() || retry_pending() || buffer_.empty()) {
    return;
  }
  // Only the front chunk's bytes: appends during the write go to its unwritten tail or to later
  // chunks, never to the bytes the kernel is reading.
  const std::span<const std::byte> front = buffer_.front();
  io_uring_sqe* sqe = ring_.sqe(write_op_);
  // Offset -1: the file position, which O_APPEND puts at the end of the file.
  io_uring_prep_write(sqe, fd_, front.data(), static_cast<unsigned>(front.size()),
                      static_cast<std::uint64_t>(-1));
  write_in_flight_ = true;
}

void RingLog::on_write(std::int32_t res, std::uint32_t /*flags*/) {
  write_in_flight_ = false;
  if (res > 0) {
    // A short write leaves the rest at the front; the next turn writes it.
    wrote(static_cast<std::size_t>(res));
  } else if (res != -EINTR && res != -EAGAIN) {
    // ENOSPC, EIO, EBADF (or a write of nothing): retrying at once would spin; the lines wait
    // (up to the bound) and the write is tried again after a pause.
    write_failed(res < 0 ? -res : EIO);
  }
  if (buffer_.abandoned()) buffer_.drop_buffered();
  switch_file_if_ready(write_in_flight_);
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
  io_uring_prep_openat(sqe, AT_FDCWD, path_.c_str(), access_log_open_flags(), kAccessLogMode);
  open_in_flight_ = true;
}

void RingLog::on_open(std::int32_t res, std::uint32_t /*flags*/) {
  open_in_flight_ = false;
  if (res >= 0) {
    reopened(res);
  } else {
    reopen_failed(-res);
  }
  if (reopen_again_ && !buffer_.abandoned()) {
    reopen_again_ = false;
    start_open();
  }
  switch_file_if_ready(write_in_flight_);
}

void RingLog::abandon() {
  abandon_buffer();
  reopen_again_ = false;
  if (!write_in_flight_) buffer_.drop_buffered();  // else once the kernel is done with the bytes
}

bool RingLog::idle() const {
  return !write_in_flight_ && !open_in_flight_ &&
         (fd_ < 0 || buffer_.abandoned() || buffer_.empty());
}

}  // namespace rs::net::uring
