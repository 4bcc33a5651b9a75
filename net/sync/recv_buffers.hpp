// Receive buffers for recv(2) (the epoll loop, the threads backend's workers): a fixed set of
// equal buffers, lent to protocol code the way the ring's provided buffers are
// (net::BufferOwner), so a handler that holds one keeps its bytes valid without a copy. The most
// recently returned buffer is reused first, so the steady state touches one warm buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "net/input.hpp"

namespace rs::net::sync {

class RecvBuffers final : public BufferOwner {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  RecvBuffers(unsigned count, unsigned size);
  RecvBuffers(const RecvBuffers&) = delete;
  RecvBuffers& operator=(const RecvBuffers&) = delete;

  // A free buffer with one reference for the caller, or kNone when every buffer is held.
  std::uint32_t acquire();
  std::span<std::byte> bytes(std::uint32_t id) { return {memory_.get() + offset(id), size_}; }
  unsigned buffer_size() const { return size_; }

  void retain_buffer(std::uint32_t id) override { ++refs_[id]; }
  void release_buffer(std::uint32_t id) override;

  unsigned available() const { return static_cast<unsigned>(free_.size()); }
  unsigned held() const { return count_ - available(); }

 private:
  std::size_t offset(std::uint32_t id) const { return static_cast<std::size_t>(id) * size_; }

  unsigned count_;
  unsigned size_;
  std::unique_ptr<std::byte[]> memory_;
  std::vector<std::uint16_t> refs_;
  std::vector<std::uint32_t> free_;  // a stack
};

}  // namespace rs::net::sync
