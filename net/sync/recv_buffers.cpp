#include "net/sync/recv_buffers.hpp"

#include <cassert>

namespace rs::net::sync {

RecvBuffers::RecvBuffers(unsigned count, unsigned size)
    : count_(count),
      size_(size),
      memory_(std::make_unique_for_overwrite<std::byte[]>(static_cast<std::size_t>(count) * size)),
      refs_(count, 0) {
  free_.reserve(count);
  for (unsigned i = count; i > 0; --i)
    free_.push_back(i - 1);
}

std::uint32_t RecvBuffers::acquire() {
  if (free_.empty()) return kNone;
  const std::uint32_t id = free_.back();
  free_.pop_back();
  refs_[id] = 1;
  return id;
}

void RecvBuffers::release_buffer(std::uint32_t id) {
  assert(refs_[id] > 0);
  if (--refs_[id] == 0) free_.push_back(id);
}

}  // namespace rs::net::sync
