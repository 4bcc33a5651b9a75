#include "net/loop/log_buffer.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "net/socket.hpp"

namespace rs::net {

namespace {
// Few chunks per slab: the pool grows only as far as the disk falls behind.
constexpr std::size_t kChunksPerSlab = 4;
}  // namespace

int access_log_open_flags() {
  return O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
}

int open_access_log(const std::string& path) {
  const int fd = ::open(path.c_str(), access_log_open_flags(), kAccessLogMode);
  if (fd < 0) {
    throw StartupError(fmt::format(
        "access log {}: {}; give --access-log a path in an existing, writable directory", path,
        std::strerror(errno)));
  }
  return fd;
}

LogBuffer::LogBuffer(LoopCounters& counters, std::size_t max_buffered_bytes)
    : counters_(counters),
      max_buffered_bytes_(max_buffered_bytes),
      pool_(kChunkBytes, kChunksPerSlab),
      pending_(pool_) {
  pool_.reserve(kChunksPerSlab);  // at start-up, so steady logging never reaches the heap
  reserved_grows_ = pool_.grows();
}

void LogBuffer::append(std::string_view line) {
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

void LogBuffer::written(std::size_t n) {
  if (n == 0) return;
  // A short write leaves the rest of the chunk at the front for the next write.
  at_line_start_ = front()[n - 1] == std::byte{'\n'};
  pending_.consume(n);
}

void LogBuffer::drop_partial_line() {
  if (at_line_start_) return;
  // A line never straddles two chunks: its end is in the front segment.
  const std::span<const std::byte> front = pending_.front_segment();
  const auto end = std::find(front.begin(), front.end(), std::byte{'\n'});
  pending_.consume(static_cast<std::size_t>(end - front.begin()) + (end != front.end() ? 1 : 0));
  at_line_start_ = true;
  counters_.access_log_dropped.add();
}

void LogBuffer::drop_buffered() {
  std::uint64_t lines = 0;
  pending_.for_each_segment([&](std::span<const std::byte> bytes) {
    lines += static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), std::byte{'\n'}));
  });
  if (lines > 0) counters_.access_log_dropped.add(lines);
  pending_.clear();
}

}  // namespace rs::net
