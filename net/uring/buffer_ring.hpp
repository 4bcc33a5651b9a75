// Receive buffers provided to the kernel through a registered buffer ring: the kernel picks a
// buffer for each receive completion and names it in the CQE. A buffer comes back to the ring
// when protocol code is done with it (after the handler returns, or when a HeldBuffer is
// released); returns are published once per loop turn with one tail store.
//
// Two kernel modes change what one completion covers, and for_each_piece hides both:
// - recv bundles (Linux 6.10): one completion fills several buffers, the named one and those
//   after it in ring order (not id order: buffers come back in any order), so the ring keeps
//   the id at every ring position;
// - incremental consumption (IOU_PBUF_RING_INC, Linux 6.12): a buffer is filled a piece at a
//   time by several receives, possibly of different connections, and stays the kernel's until
//   it is full (the completion then lacks IORING_CQE_F_BUF_MORE). Large buffers then cost no
//   memory per small message.
// Each buffer carries one reference for the kernel while it is in the ring and one per piece
// that protocol code holds; it goes back to the ring when the last is dropped.
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
  // count must be a power of two (at most 32768); size is the bytes of one buffer. With
  // incremental the ring is registered for incremental consumption where the kernel offers it
  // (incremental() says whether it did).
  BufferRing(io_uring& ring, std::uint16_t group_id, unsigned count, unsigned size,
             bool incremental);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  std::uint16_t group_id() const { return group_id_; }
  unsigned buffer_size() const { return size_; }
  unsigned count() const { return count_; }
  bool incremental() const { return incremental_; }

  // Splits the length bytes of a receive completion that named buffer first into the pieces
  // of each buffer it filled, in order, and calls deliver(bytes, buffer_id) for each. The
  // piece is referenced during the call; deliver takes a HeldBuffer to keep it longer.
  template <class Deliver>
  void for_each_piece(std::uint16_t first, std::size_t length, std::uint32_t cqe_flags,
                      Deliver&& deliver) {
    std::uint16_t id = first;
    for (;;) {
      const std::span<const std::byte> piece = take(id, length, cqe_flags);
      length -= piece.size();
      deliver(piece, id);
      drop_ref(id);
      if (length == 0) return;
      id = next_in_ring(id);
    }
  }

  void retain_buffer(std::uint32_t id) override;
  void release_buffer(std::uint32_t id) override;

  // Makes the buffers returned since the last call visible to the kernel.
  void publish();

  // Buffers the kernel can still fill (given back and published, not yet used up).
  unsigned available() const { return available_; }
  // Buffers protocol code holds beyond a handler (an incremental one may be the kernel's too).
  unsigned held() const { return held_; }
  // Buffers the kernel has finished with since the ring was set up (filled, or with
  // incremental consumption filled to the end): bytes in over this is what one buffer carried.
  std::uint64_t used() const { return used_; }

 private:
  // The next piece of a completion from buffer id (at most length bytes), referenced once.
  std::span<const std::byte> take(std::uint16_t id, std::size_t length, std::uint32_t cqe_flags);
  std::uint16_t next_in_ring(std::uint16_t id) const;
  void drop_ref(std::uint16_t id);
  void add_to_ring(std::uint16_t id, unsigned offset);

  io_uring& ring_;
  std::uint16_t group_id_;
  unsigned count_;
  unsigned size_;
  int mask_;
  bool incremental_ = false;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::byte* memory_ = nullptr;
  std::size_t memory_bytes_ = 0;
  std::vector<std::uint32_t> refs_;      // per id: the kernel's one (while in the ring) + holds
  std::vector<std::uint32_t> holds_;     // per id: HeldBuffers (the handler's own not counted)
  std::vector<std::uint32_t> consumed_;  // per id: bytes the kernel has filled (incremental)
  std::vector<std::uint16_t> position_;  // per id: its ring position (masked)
  std::vector<std::uint16_t> at_;        // per ring position: the id placed there
  unsigned unpublished_ = 0;
  unsigned available_ = 0;
  unsigned held_ = 0;  // ids with holds_ > 0
  std::uint64_t used_ = 0;
};

}  // namespace rs::net::uring
