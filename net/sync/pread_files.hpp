// A file service of plain system calls, for the epoll loop and the threads backend's workers:
// openat2 (RESOLVE_BENEATH), statx and pread(2) made on the calling thread, as an event-loop
// server without asynchronous file I/O does (nginx without aio). A read of a file in the page
// cache costs a copy; a cold file stalls the whole loop for the disk, which is the readiness
// model's known weakness and what the ring's file service avoids.
// Results are posted and handed to the reader later in the same loop turn, so callers are
// never called back from inside open() or read(), as the FileService contract promises.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "core/slab_pool.hpp"
#include "net/file_service.hpp"

namespace rs::net::sync {

class PreadFile final : public FileHandle {
 private:
  friend class PreadFiles;
  enum class Posted : std::uint8_t { kNothing, kOpened, kRead };

  FileReader* reader_ = nullptr;
  int fd_ = -1;
  Posted posted_ = Posted::kNothing;
  int open_error_ = 0;
  FileInfo info_;
  int read_result_ = 0;
  core::Chunk* chunk_ = nullptr;  // read into, not yet handed over
  core::ListNode posted_node_;
};

class PreadFiles final : public FileService {
 public:
  explicit PreadFiles(core::ChunkPool& chunks) : chunks_(chunks) {}
  ~PreadFiles();
  PreadFiles(const PreadFiles&) = delete;
  PreadFiles& operator=(const PreadFiles&) = delete;

  FileHandle* open(int dir_fd, std::string_view relative_path, FileReader& reader) override;
  void read(FileHandle* file, std::uint64_t offset, std::size_t max_bytes) override;
  void close(FileHandle* file) override;

  // Hands posted results to their readers (who may open, read or close more: those results
  // wait for the next call). Returns whether anything was delivered.
  bool deliver_posted();
  bool has_posted() const { return !posted_.empty(); }
  bool idle() const { return files_.outstanding() == 0; }
  std::size_t open_files() const { return files_.outstanding(); }

 private:
  void post(PreadFile& file, PreadFile::Posted what);

  core::ChunkPool& chunks_;
  core::SlabPool<PreadFile> files_{16};
  core::IntrusiveList<PreadFile, &PreadFile::posted_node_> posted_;
};

}  // namespace rs::net::sync
