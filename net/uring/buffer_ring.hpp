// Receive buffers provided to the kernel through a registered buffer ring: the kernel picks a
// buffer for each receive completion and names it in the CQE. A buffer comes back to the ring
// when protocol code is done with it (after the handler returns, or when a HeldBuffer is
// released); returns are published once per loop turn with one tail store.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/input.hpp"

namespace rs::net::uring {

class BufferRing final : public BufferOwner {
 public:
  // count must be a power of two (at most 32768); size is the bytes of one buffer.
  BufferRing(io_uring& ring, std::uint16_t group_id, unsigned count, unsigned size);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  std::uint16_t group_id() const { return group_id_; }
  unsigned buffer_size() const { return size_; }
  unsigned count() const { return count_; }

  // The bytes of buffer id that a completion filled; the caller owns one reference to it.
  std::span<const std::byte> take(std::uint16_t id, std::size_t length);

  void retain_buffer(std::uint32_t id) override;
  void release_buffer(std::uint32_t id) override;

  // Makes the buffers returned since the last call visible to the kernel.
  void publish();

  // Buffers the kernel can still fill (given back and published, not yet taken).
  unsigned available() const { return available_; }
  unsigned held() const { return count_ - available_ - unpublished_; }

 private:
  io_uring& ring_;
  std::uint16_t group_id_;
  unsigned count_;
  unsigned size_;
  int mask_;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::byte* memory_ = nullptr;
  std::size_t memory_bytes_ = 0;
  std::vector<std::uint16_t> refs_;
  unsigned unpublished_ = 0;
  unsigned available_ = 0;
};

}  // namespace rs::net::uring
