// The loop's file service on the ring: IORING_OP_OPENAT2 (RESOLVE_BENEATH), IORING_OP_STATX on
// the new descriptor, IORING_OP_READ into a pooled chunk (IORING_OP_READ_FIXED where the chunk
// is registered: net/uring/registered_buffers.hpp), IORING_OP_CLOSE. Each open file is a
// pooled RingFile whose operations are embedded in it; it is freed only after the last
// completion that names it has arrived, so a close() while the kernel still works on the file
// is safe.
#pragma once

#include <linux/openat2.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/buffer.hpp"
#include "core/slab_pool.hpp"
#include "net/file_service.hpp"
#include "net/loop_counters.hpp"
#include "net/uring/operation.hpp"
#include "net/uring/ring.hpp"

namespace rs::net::uring {

class RingFiles;

class RingFile final : public FileHandle {
 public:
  explicit RingFile(RingFiles& files);

 private:
  friend class RingFiles;
  enum class State : std::uint8_t { kOpening, kStatting, kOpen, kReading, kFailed, kClosing };

  void on_open(std::int32_t res, std::uint32_t flags);
  void on_statx(std::int32_t res, std::uint32_t flags);
  void on_read(std::int32_t res, std::uint32_t flags);
  void on_closed(std::int32_t res, std::uint32_t flags);
  void on_error_posted(std::int32_t res, std::uint32_t flags);
  void fail(int error);
  void submit_read();
  void finish_close();

  RingFiles& files_;
  FileReader* reader_ = nullptr;  // null once close() was called
  int fd_ = -1;
  State state_ = State::kOpening;
  bool in_flight_ = false;  // at most one operation at a time
  bool close_wanted_ = false;
  bool blocking_set_ = false;     // O_NONBLOCK was cleared after a read said EAGAIN
  int posted_error_ = 0;          // reported from a NOP completion (open refused up front)
  core::Chunk* chunk_ = nullptr;  // being read into
  std::uint64_t read_offset_ = 0;
  std::uint32_t read_bytes_ = 0;
  Operation open_op_;
  Operation statx_op_;
  Operation read_op_;
  Operation close_op_;
  Operation error_op_;
  open_how how_{};
  struct statx statx_ {};
  char path_[FileService::kMaxPathBytes + 1];
};

class RingFiles final : public FileService {
 public:
  RingFiles(Ring& ring, core::ChunkPool& chunks, LoopCounters& counters)
      : ring_(ring), chunks_(chunks), counters_(counters) {}
  ~RingFiles() = default;
  RingFiles(const RingFiles&) = delete;
  RingFiles& operator=(const RingFiles&) = delete;

  FileHandle* open(int dir_fd, std::string_view relative_path, FileReader& reader) override;
  void read(FileHandle* file, std::uint64_t offset, std::size_t max_bytes) override;
  void close(FileHandle* file) override;

  // No file open and nothing of ours in the kernel: the loop may finish.
  bool idle() const { return files_.outstanding() == 0; }
  std::size_t open_files() const { return files_.outstanding(); }

 private:
  friend class RingFile;

  Ring& ring_;
  core::ChunkPool& chunks_;
  LoopCounters& counters_;
  core::SlabPool<RingFile> files_{16};
};

}  // namespace rs::net::uring
