// The part of an access log every backend shares: whole lines copied into chunks of the log's
// own pool, a bound on what waits for the disk (lines beyond it are dropped and counted), and
// the bookkeeping that lets a writer switch files only between lines. A backend writes
// front() however it writes files (an SQE, a write(2)) and reports what the kernel took.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/buffer.hpp"
#include "net/loop_counters.hpp"

namespace rs::net {

class LogBuffer {
 public:
  // The largest line kept; longer ones are dropped (an HTTP access line is far shorter).
  static constexpr std::size_t kChunkBytes = 64 << 10;

  LogBuffer(LoopCounters& counters, std::size_t max_buffered_bytes);
  LogBuffer(const LogBuffer&) = delete;
  LogBuffer& operator=(const LogBuffer&) = delete;

  // Copies one whole line, or drops and counts it when it does not fit the bound.
  void append(std::string_view line);
  // Bytes of whole lines (a line never straddles two chunks), to be written as one piece.
  // Appends never touch bytes already returned here, so a write may read them later.
  std::span<const std::byte> front() const { return pending_.front_segment(); }
  // n bytes of front() reached the file.
  void written(std::size_t n);
  bool empty() const { return pending_.empty(); }
  // What has been written ends with a whole line: the file may be switched now.
  bool at_line_start() const { return at_line_start_; }
  // From now on new lines are dropped (and counted) instead of kept.
  void abandon() { abandoned_ = true; }
  bool abandoned() const { return abandoned_; }
  // Slabs its chunk pool made beyond the one reserved at start-up (a disk slower than the log
  // for a while): part of the loop's pool_grows.
  std::uint64_t grows() const { return pool_.grows() - reserved_grows_; }
  // Drops (and counts) every line still waiting; only when no write is reading front().
  void drop_buffered();
  // Drops (and counts) the rest of the line the file holds the start of, so the buffer is at a
  // line start again; only when no write is reading front().
  void drop_partial_line();

 private:
  LoopCounters& counters_;
  std::size_t max_buffered_bytes_;
  core::ChunkPool pool_;
  core::BufferChain pending_;
  std::uint64_t reserved_grows_ = 0;  // the start-up slab
  bool at_line_start_ = true;
  bool abandoned_ = false;
};

// Opens an access log for appending (O_APPEND: every write lands at the end of the file as one
// piece, whoever else appends). At start-up: throws StartupError naming the path and what to do.
int open_access_log(const std::string& path);
// The same flags for a reopen made elsewhere (an SQE); returns -errno on failure.
int access_log_open_flags();
inline constexpr unsigned kAccessLogMode = 0644;

}  // namespace rs::net
