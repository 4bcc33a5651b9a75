#include "net/uring/ring_files.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include "net/file_open.hpp"

namespace rs::net::uring {

RingFile::RingFile(RingFiles& files) : files_(files) {
  bind<&RingFile::on_open>(open_op_, this);
  bind<&RingFile::on_statx>(statx_op_, this);
  bind<&RingFile::on_read>(read_op_, this);
  bind<&RingFile::on_closed>(close_op_, this);
  bind<&RingFile::on_error_posted>(error_op_, this);
}

FileHandle* RingFiles::open(int dir_fd, std::string_view relative_path, FileReader& reader) {
  RingFile* file = files_.make(*this);
  file->reader_ = &reader;
  if (const int refused = refused_path_error(relative_path); refused != 0) {
    // Refused before the kernel sees it, but still answered from a completion: callers can
    // rely on never being called back from inside open().
    file->posted_error_ = refused;
    io_uring_prep_nop(ring_.sqe(file->error_op_));
    file->in_flight_ = true;
    return file;
  }
  // The kernel reads the path and open_how when it takes the SQE, which is later: both live
  // in the file until its completion.
  std::memcpy(file->path_, relative_path.data(), relative_path.size());
  file->path_[relative_path.size()] = '\0';
  file->how_ = beneath_open_how();
  io_uring_prep_openat2(ring_.sqe(file->open_op_), dir_fd, file->path_, &file->how_);
  file->in_flight_ = true;
  return file;
}

void RingFiles::read(FileHandle* handle, std::uint64_t offset, std::size_t max_bytes) {
  auto* file = static_cast<RingFile*>(handle);
  assert(file->state_ == RingFile::State::kOpen && !file->in_flight_ && !file->close_wanted_);
  file->chunk_ = chunks_.get();
  file->read_offset_ = offset;
  file->read_bytes_ =
      static_cast<std::uint32_t>(std::clamp<std::size_t>(max_bytes, 1, file->chunk_->capacity));
  file->submit_read();
}

void RingFiles::close(FileHandle* handle) {
  auto* file = static_cast<RingFile*>(handle);
  assert(!file->close_wanted_);
  file->reader_ = nullptr;
  file->close_wanted_ = true;
  // Whatever is in flight finishes first; its completion sees close_wanted_ and goes on here.
  if (!file->in_flight_) file->finish_close();
}

void RingFile::on_error_posted(std::int32_t /*res*/, std::uint32_t /*flags*/) {
  in_flight_ = false;
  if (close_wanted_) {
    finish_close();
    return;
  }
  fail(posted_error_);
}

void RingFile::on_open(std::int32_t res, std::uint32_t /*flags*/) {
  in_flight_ = false;
  if (res >= 0) fd_ = res;
  if (close_wanted_) {
    finish_close();  // a descriptor opened after close() was asked for is closed at once
    return;
  }
  if (res < 0) {
    fail(-res);
    return;
  }
  // statx on the descriptor (empty path, AT_EMPTY_PATH) describes exactly the file opened,
  // with no second walk of the path that could race a rename.
  state_ = State::kStatting;
  io_uring_prep_statx(files_.ring_.sqe(statx_op_), fd_, "", AT_EMPTY_PATH, kFileStatxMask, &statx_);
  in_flight_ = true;
}

void RingFile::on_statx(std::int32_t res, std::uint32_t /*flags*/) {
  in_flight_ = false;
  if (close_wanted_) {
    finish_close();
    return;
  }
  if (res < 0) {
    fail(-res);
    return;
  }
  state_ = State::kOpen;
  reader_->on_file_opened(
      0, file_info_from(fd_, statx_));  // may call read() or close(): nothing of ours after it
}

void RingFile::fail(int error) {
  state_ = State::kFailed;
  reader_->on_file_opened(error, FileInfo{});  // may close (and free) this file
}

void RingFile::submit_read() {
  io_uring_sqe* sqe = files_.ring_.sqe(read_op_);
  if (chunk_->buffer_index != core::kNoBufferIndex) {
    // Into the registered buffer that holds the chunk: the kernel takes the pages it pinned at
    // registration instead of looking up and mapping the user memory of each read.
    io_uring_prep_read_fixed(sqe, fd_, chunk_->data(), read_bytes_, read_offset_,
                             static_cast<int>(chunk_->buffer_index));
    files_.counters_.fixed_reads.add();
  } else {
    io_uring_prep_read(sqe, fd_, chunk_->data(), read_bytes_, read_offset_);
  }
  state_ = State::kReading;
  in_flight_ = true;
}

void RingFile::on_read(std::int32_t res, std::uint32_t /*flags*/) {
  in_flight_ = false;
  state_ = State::kOpen;
  if (close_wanted_) {
    files_.chunks_.put(std::exchange(chunk_, nullptr));
    finish_close();
    return;
  }
  if (res == -EAGAIN && !blocking_set_) {
    // O_NONBLOCK (set for the open) reached a filesystem without non-blocking reads: make the
    // descriptor blocking, which io_uring turns into an io-wq read, and try again. F_SETFL
    // never blocks.
    blocking_set_ = true;
    const int fl = ::fcntl(fd_, F_GETFL);
    if (fl >= 0 && ::fcntl(fd_, F_SETFL, fl & ~O_NONBLOCK) == 0) {
      submit_read();
      return;
    }
  }
  core::Chunk* chunk = std::exchange(chunk_, nullptr);
  if (res > 0) {
    chunk->end = static_cast<std::uint32_t>(res);
  } else {
    files_.chunks_.put(chunk);
    chunk = nullptr;
  }
  reader_->on_file_read(res, chunk);  // may read again or close: nothing of ours after it
}

void RingFile::finish_close() {
  state_ = State::kClosing;
  if (fd_ < 0) {
    files_.files_.destroy(this);
    return;
  }
  io_uring_prep_close(files_.ring_.sqe(close_op_), std::exchange(fd_, -1));
  in_flight_ = true;
}

void RingFile::on_closed(std::int32_t /*res*/, std::uint32_t /*flags*/) {
  // Closing a regular file cannot meaningfully fail; the descriptor is gone either way.
  files_.files_.destroy(this);
}

}  // namespace rs::net::uring
