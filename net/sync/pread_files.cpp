#include "net/sync/pread_files.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include "net/file_open.hpp"

namespace rs::net::sync {

PreadFiles::~PreadFiles() {
  while (PreadFile* file = posted_.pop_front()) {
    if (file->chunk_ != nullptr) chunks_.put(std::exchange(file->chunk_, nullptr));
  }
}

FileHandle* PreadFiles::open(int dir_fd, std::string_view relative_path, FileReader& reader) {
  PreadFile* file = files_.make();
  file->reader_ = &reader;
  file->open_error_ = refused_path_error(relative_path);
  if (file->open_error_ == 0) {
    char path[kMaxPathBytes + 1];
    std::memcpy(path, relative_path.data(), relative_path.size());
    path[relative_path.size()] = '\0';
    open_how how = beneath_open_how();
    // glibc 2.36 has no openat2 wrapper.
    const long fd = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
    struct statx st {};
    if (fd >= 0) file->fd_ = static_cast<int>(fd);
    // openat2 or statx failed: errno says why (the descriptor, if any, closes with the file).
    if (fd < 0 || ::statx(file->fd_, "", AT_EMPTY_PATH, kFileStatxMask, &st) != 0) {
      file->open_error_ = errno;
    } else {
      file->info_ = file_info_from(file->fd_, st);
    }
  }
  post(*file, PreadFile::Posted::kOpened);
  return file;
}

void PreadFiles::read(FileHandle* handle, std::uint64_t offset, std::size_t max_bytes) {
  auto* file = static_cast<PreadFile*>(handle);
  assert(file->fd_ >= 0 && file->posted_ == PreadFile::Posted::kNothing);
  core::Chunk* chunk = chunks_.get();
  const std::size_t want = std::clamp<std::size_t>(max_bytes, 1, chunk->capacity);
  ssize_t n;
  do {
    n = ::pread(file->fd_, chunk->data(), want, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    chunk->end = static_cast<std::uint32_t>(n);
    file->chunk_ = chunk;
    file->read_result_ = static_cast<int>(n);
  } else {
    file->read_result_ = n == 0 ? 0 : -errno;
    chunks_.put(chunk);
  }
  post(*file, PreadFile::Posted::kRead);
}

void PreadFiles::close(FileHandle* handle) {
  auto* file = static_cast<PreadFile*>(handle);
  if (file->posted_node_.linked()) posted_.remove(*file);
  if (file->chunk_ != nullptr) chunks_.put(std::exchange(file->chunk_, nullptr));
  if (file->fd_ >= 0) ::close(file->fd_);
  files_.destroy(file);
}

void PreadFiles::post(PreadFile& file, PreadFile::Posted what) {
  file.posted_ = what;
  posted_.push_back(file);
}

bool PreadFiles::deliver_posted() {
  if (posted_.empty()) return false;
  // As many as were posted when the call began: what the readers start now waits for the
  // next call. A callback may close (and so unpost) any file, so each is popped afresh.
  for (std::size_t n = posted_.size(); n > 0 && !posted_.empty(); --n) {
    PreadFile* file = posted_.pop_front();
    const PreadFile::Posted what = std::exchange(file->posted_, PreadFile::Posted::kNothing);
    if (what == PreadFile::Posted::kOpened) {
      file->reader_->on_file_opened(file->open_error_,
                                    file->open_error_ == 0 ? file->info_ : FileInfo{});
    } else {
      file->reader_->on_file_read(file->read_result_, std::exchange(file->chunk_, nullptr));
    }
  }
  return true;
}

}  // namespace rs::net::sync
