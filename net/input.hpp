// Bytes that arrived on a connection, as protocol code sees them.
//
// An Input is the connection's stash (bytes that earlier handlers left unconsumed, copied into
// pooled chunks) followed by the fresh receive buffer that just completed. Protocol code reads
// the segments, consumes what it has handled from the front, and may hold the fresh buffer so
// that views into it stay valid after the handler returns (an answer still pending). Whatever
// it leaves unconsumed is moved to the stash by the backend before the fresh buffer is reused.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>

#include "core/buffer.hpp"

namespace rs::net {

// Whoever lends receive buffers to protocol code (the ring's provided-buffer ring, the epoll
// loop's receive chunks). A buffer goes back to its owner when its last reference is released.
class BufferOwner {
 public:
  virtual void retain_buffer(std::uint32_t id) = 0;
  virtual void release_buffer(std::uint32_t id) = 0;

 protected:
  ~BufferOwner() = default;
};

// A reference that keeps one receive buffer out of circulation. Move-only; releasing it (or
// destroying it) hands the buffer back. Holding buffers takes them away from every connection
// of the loop, so hold only while an answer that needs the bytes is pending.
class HeldBuffer {
 public:
  HeldBuffer() = default;
  HeldBuffer(BufferOwner* owner, std::uint32_t id, std::span<const std::byte> bytes)
      : owner_(owner), id_(id), bytes_(bytes) {
    if (owner_ != nullptr) owner_->retain_buffer(id_);
  }
  HeldBuffer(HeldBuffer&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_), bytes_(other.bytes_) {}
  HeldBuffer& operator=(HeldBuffer&& other) noexcept {
    if (this != &other) {
      release();
      owner_ = std::exchange(other.owner_, nullptr);
      id_ = other.id_;
      bytes_ = other.bytes_;
    }
    return *this;
  }
  HeldBuffer(const HeldBuffer&) = delete;
  HeldBuffer& operator=(const HeldBuffer&) = delete;
  ~HeldBuffer() { release(); }

  void release() {
    if (owner_ != nullptr) std::exchange(owner_, nullptr)->release_buffer(id_);
  }
  bool held() const { return owner_ != nullptr; }
  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  BufferOwner* owner_ = nullptr;
  std::uint32_t id_ = 0;
  std::span<const std::byte> bytes_;
};

class Input {
 public:
  Input(core::BufferChain& stash, std::span<const std::byte> fresh, BufferOwner* owner,
        std::uint32_t buffer_id)
      : stash_(stash), fresh_(fresh), owner_(owner), buffer_id_(buffer_id) {}
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  std::size_t size() const { return stash_.size() + fresh_.size() - fresh_consumed_; }
  bool empty() const { return size() == 0; }

  // The first contiguous run of unconsumed bytes (empty when nothing is left).
  std::span<const std::byte> front() const {
    if (!stash_.empty()) return stash_.front_segment();
    return fresh_.subspan(fresh_consumed_);
  }

  // f(std::span<const std::byte>) for every unconsumed segment, front to back.
  template <class F>
  void for_each_segment(F&& f) const {
    stash_.for_each_segment(f);
    if (fresh_consumed_ < fresh_.size()) f(fresh_.subspan(fresh_consumed_));
  }

  // Copies up to out.size() unconsumed bytes (without consuming them); returns the count.
  std::size_t copy_out(std::span<std::byte> out) const {
    std::size_t copied = stash_.copy_out(0, out);
    const auto rest = fresh_.subspan(fresh_consumed_);
    const std::size_t n = std::min(out.size() - copied, rest.size());
    if (n > 0) std::memcpy(out.data() + copied, rest.data(), n);
    return copied + n;
  }

  // Marks the first n unconsumed bytes as handled.
  void consume(std::size_t n) {
    const std::size_t from_stash = std::min(n, stash_.size());
    stash_.consume(from_stash);
    fresh_consumed_ += n - from_stash;
  }

  // Keeps the fresh receive buffer valid after the handler returns, consumed or not.
  HeldBuffer hold_fresh() const { return HeldBuffer(owner_, buffer_id_, fresh_); }

  // What the handler left of the fresh buffer; the backend moves it to the stash.
  std::span<const std::byte> fresh_unconsumed() const { return fresh_.subspan(fresh_consumed_); }

 private:
  core::BufferChain& stash_;
  std::span<const std::byte> fresh_;
  std::size_t fresh_consumed_ = 0;
  BufferOwner* owner_;
  std::uint32_t buffer_id_;
};

}  // namespace rs::net
