#include "net/uring/buffer_ring.hpp"

#include <sys/mman.h>

#include <cassert>
#include <system_error>

namespace rs::net::uring {

namespace {

void* map_anonymous(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap buffers");
  return p;
}

}  // namespace

BufferRing::BufferRing(io_uring& ring, std::uint16_t group_id, unsigned count, unsigned size)
    : ring_(ring),
      group_id_(group_id),
      count_(count),
      size_(size),
      mask_(io_uring_buf_ring_mask(count)),
      refs_(count, 0) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
    throw std::invalid_argument("buffer ring size must be a power of two up to 32768");
  }
  // liburing 2.3 has no io_uring_setup_buf_ring: map the ring entries page-aligned, register
  // them, then fill the ring.
  ring_bytes_ = sizeof(io_uring_buf) * count;
  br_ = static_cast<io_uring_buf_ring*>(map_anonymous(ring_bytes_));
  memory_bytes_ = static_cast<std::size_t>(count) * size;
  memory_ = static_cast<std::byte*>(map_anonymous(memory_bytes_));

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  const int rc = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (rc != 0) {
    ::munmap(br_, ring_bytes_);
    ::munmap(memory_, memory_bytes_);
    throw std::system_error(-rc, std::generic_category(),
                            "io_uring_register_buf_ring (kernel 5.19+ needed)");
  }
  io_uring_buf_ring_init(br_);
  for (unsigned id = 0; id < count; ++id) {
    io_uring_buf_ring_add(br_, memory_ + static_cast<std::size_t>(id) * size, size,
                          static_cast<unsigned short>(id), mask_, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  available_ = count;
}

BufferRing::~BufferRing() {
  io_uring_unregister_buf_ring(&ring_, group_id_);
  ::munmap(br_, ring_bytes_);
  ::munmap(memory_, memory_bytes_);
}

std::span<const std::byte> BufferRing::take(std::uint16_t id, std::size_t length) {
  assert(id < count_ && refs_[id] == 0);
  refs_[id] = 1;
  --available_;
  return {memory_ + static_cast<std::size_t>(id) * size_, length};
}

void BufferRing::retain_buffer(std::uint32_t id) {
  ++refs_[id];
}

void BufferRing::release_buffer(std::uint32_t id) {
  assert(refs_[id] > 0);
  if (--refs_[id] != 0) return;
  io_uring_buf_ring_add(br_, memory_ + static_cast<std::size_t>(id) * size_, size_,
                        static_cast<unsigned short>(id), mask_, static_cast<int>(unpublished_));
  ++unpublished_;
}

void BufferRing::publish() {
  if (unpublished_ == 0) return;
  io_uring_buf_ring_advance(br_, static_cast<int>(unpublished_));
  available_ += unpublished_;
  unpublished_ = 0;
}

}  // namespace rs::net::uring
