// File reads as a loop service: protocol code opens a file below a directory, reads it piece by
// piece into pooled chunks and closes it, and hears back through a FileReader on the loop
// thread. The ring backend does all of it with SQEs (openat2, statx, read, close); another
// backend may use a thread pool. Either way the caller never blocks and never sees the kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/buffer.hpp"

namespace rs::net {

struct FileInfo {
  int fd = -1;
  std::uint64_t size = 0;
  std::int64_t mtime_s = 0;
  std::uint64_t inode = 0;
  bool regular = false;
  bool directory = false;
};

// Told what became of an open and of each read. Never called from inside open(), read() or
// close() (always from a completion later), and never after close() was called.
class FileReader {
 public:
  // error: 0 or an errno value. On success `info` describes what was opened (a directory
  // opens too; the caller decides what it may serve).
  virtual void on_file_opened(int error, const FileInfo& info) = 0;
  // result: bytes read (chunk holds them; the chunk now belongs to the reader, from the loop's
  // ChunkPool), 0 at end of file, or -errno. chunk is null unless result > 0.
  virtual void on_file_read(int result, core::Chunk* chunk) = 0;

 protected:
  ~FileReader() = default;
};

// What a backend hands out for one open file; opaque to callers.
class FileHandle {
 protected:
  FileHandle() = default;
  ~FileHandle() = default;
};

class FileService {
 public:
  // Longest relative path open() accepts; longer ones fail with ENAMETOOLONG.
  static constexpr std::size_t kMaxPathBytes = 1088;

  // Opens relative_path read-only below dir_fd; it may not leave dir_fd by "..", an absolute
  // path or a symlink (EXDEV), nor follow magic links. The path is copied. The handle is
  // valid until close(), which the caller must call whatever on_file_opened said.
  virtual FileHandle* open(int dir_fd, std::string_view relative_path, FileReader& reader) = 0;
  // One read of at most max_bytes (and at most one chunk) at offset; one read at a time, only
  // after a successful on_file_opened.
  virtual void read(FileHandle* file, std::uint64_t offset, std::size_t max_bytes) = 0;
  // No callback follows. The descriptor is closed and the handle (and any chunk still being
  // read into) is freed once the kernel is done with them, also if the open is still on its way.
  virtual void close(FileHandle* file) = 0;

 protected:
  ~FileService() = default;
};

}  // namespace rs::net
