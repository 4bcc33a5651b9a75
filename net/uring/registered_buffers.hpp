// The loop's output chunk pool (core::ChunkPool) registered with its ring as fixed buffers, slab
// by slab, in a sparse buffer table: a chunk's buffer index is its slab's number. File reads
// into a registered chunk go as READ_FIXED and zero-copy sends from one name its buffer
// (IORING_RECVSEND_FIXED_BUF), so the kernel neither maps nor pins the pages for each
// operation: registering pinned them once, for the life of the ring.
//
// A slab the kernel refuses to pin (ENOMEM: RLIMIT_MEMLOCK for a process without CAP_IPC_LOCK)
// turns registration off for the loop: that slab and every later one stay plain buffers, said
// once in the log and counted (registered_buffer_fallbacks). Slabs registered before stay so.
//
// A slot is filled once and never updated or emptied while the ring lives (the pool never frees
// a slab), so no operation in flight can see its buffer change. Kernels without upstream
// f6041803a831 ("io_uring/net: ensure vectored buffer node import is tied to notification",
// marked for stable) tie a vectored zero-copy send's buffer to its request rather than its
// notification; that matters only to a slot emptied while sends are out, never the case here.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/buffer.hpp"
#include "net/loop_counters.hpp"

namespace rs::net::uring {

class RegisteredBuffers final : public core::SlabRegistrar {
 public:
  // Slots of the table: slabs of 64 chunks of 16 KiB make 1 GiB of output per loop. Slabs
  // beyond it stay plain.
  static constexpr unsigned kTableSlots = 1024;
  static_assert(kTableSlots <= UINT16_MAX + 1U, "sqe->buf_index is 16 bits");

  // With `on`, the table is made and the pool's first slab made and registered now, so that the
  // start-up line says whether registration is in force.
  RegisteredBuffers(io_uring& ring, core::ChunkPool& chunks, LoopCounters& counters, bool on);
  // Before the ring goes: the chunks stop naming buffers.
  ~RegisteredBuffers();
  RegisteredBuffers(const RegisteredBuffers&) = delete;
  RegisteredBuffers& operator=(const RegisteredBuffers&) = delete;

  std::uint32_t add_slab(std::size_t slab, std::span<std::byte> bytes) override;

  // Sends gathered from several chunks of one slab may go as one SENDMSG_ZC naming the slab's
  // buffer (Linux 6.15); on until the kernel refuses one.
  bool vectored_sends() const { return vectored_sends_; }
  void refuse_vectored_sends();

  std::size_t registered() const { return registered_; }
  std::size_t registered_bytes() const { return registered_ * chunks_.slab_bytes(); }
  // For the start-up line: "on (...)", "off", or "off (refused: ...)".
  std::string describe() const;

 private:
  enum class State : std::uint8_t { kOff, kOn, kRefused };

  void refuse(int error, std::size_t bytes);

  io_uring& ring_;
  core::ChunkPool& chunks_;
  LoopCounters& counters_;
  State state_ = State::kOff;
  bool table_ = false;  // the sparse table is registered (unregistered when this goes)
  int refusal_ = 0;     // the errno of the refusal
  std::size_t registered_ = 0;
  bool vectored_sends_ = true;
};

}  // namespace rs::net::uring
