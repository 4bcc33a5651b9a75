#include "net/uring/buffer_ring.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cassert>
#include <system_error>

#include "net/uring/kernel_abi.hpp"

namespace rs::net::uring {

namespace {

void* map_anonymous(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap buffers");
  return p;
}

}  // namespace

BufferRing::BufferRing(io_uring& ring, std::uint16_t group_id, unsigned count, unsigned size,
                       bool incremental)
    : ring_(ring),
      group_id_(group_id),
      count_(count),
      size_(size),
      mask_(io_uring_buf_ring_mask(count)),
      refs_(count, 0),
      holds_(count, 0),
      consumed_(count, 0),
      position_(count, 0),
      at_(count, 0) {
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
  int rc = -EINVAL;
  if (incremental) {
    reg.pad = abi::kBufRingIncremental;  // the flags field in newer headers
    rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    incremental_ = rc == 0;
  }
  if (rc != 0) {
    // Kernels before 6.12 refuse the flag: plain buffers, as incremental() reports.
    reg.pad = 0;
    rc = io_uring_register_buf_ring(&ring_, &reg, 0);
  }
  if (rc != 0) {
    ::munmap(br_, ring_bytes_);
    ::munmap(memory_, memory_bytes_);
    throw std::system_error(-rc, std::generic_category(),
                            "io_uring_register_buf_ring (kernel 5.19+ needed)");
  }
  io_uring_buf_ring_init(br_);
  for (unsigned id = 0; id < count; ++id) {
    add_to_ring(static_cast<std::uint16_t>(id), id);
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  available_ = count;
}

BufferRing::~BufferRing() {
  io_uring_unregister_buf_ring(&ring_, group_id_);
  ::munmap(br_, ring_bytes_);
  ::munmap(memory_, memory_bytes_);
}

// Puts id at ring position tail + offset, whole and empty, with the kernel's reference.
void BufferRing::add_to_ring(std::uint16_t id, unsigned offset) {
  const auto position = static_cast<std::uint16_t>((br_->tail + offset) & mask_);
  io_uring_buf_ring_add(br_, memory_ + static_cast<std::size_t>(id) * size_, size_, id, mask_,
                        static_cast<int>(offset));
  position_[id] = position;
  at_[position] = id;
  consumed_[id] = 0;
  refs_[id] = 1;
}

std::span<const std::byte> BufferRing::take(std::uint16_t id, std::size_t length,
                                            std::uint32_t cqe_flags) {
  assert(id < count_ && refs_[id] > 0);
  const std::uint32_t offset = consumed_[id];
  const std::size_t n = std::min<std::size_t>(size_ - offset, length);
  assert(n > 0);
  ++refs_[id];  // the piece's reference, dropped by for_each_piece after delivery
  // The kernel keeps an incremental buffer it has not filled (it says so on the completion's
  // last piece); every other buffer a completion names is the kernel's no longer.
  const bool last = n == length;
  const bool kernel_keeps = incremental_ && last && (cqe_flags & abi::kCqeBufMore) != 0;
  if (incremental_) consumed_[id] = offset + static_cast<std::uint32_t>(n);
  assert(!kernel_keeps || consumed_[id] < size_);
  if (!kernel_keeps) {
    --refs_[id];
    --available_;
    ++used_;
  }
  return {memory_ + static_cast<std::size_t>(id) * size_ + offset, n};
}

std::uint16_t BufferRing::next_in_ring(std::uint16_t id) const {
  return at_[(position_[id] + 1U) & static_cast<unsigned>(mask_)];
}

void BufferRing::retain_buffer(std::uint32_t id) {
  ++refs_[id];
  if (holds_[id]++ == 0) ++held_;
}

void BufferRing::release_buffer(std::uint32_t id) {
  assert(holds_[id] > 0);
  if (--holds_[id] == 0) --held_;
  drop_ref(static_cast<std::uint16_t>(id));
}

void BufferRing::drop_ref(std::uint16_t id) {
  assert(refs_[id] > 0);
  if (--refs_[id] != 0) return;
  add_to_ring(id, unpublished_);
  ++unpublished_;
}

void BufferRing::publish() {
  if (unpublished_ == 0) return;
  io_uring_buf_ring_advance(br_, static_cast<int>(unpublished_));
  available_ += unpublished_;
  unpublished_ = 0;
}

}  // namespace rs::net::uring
