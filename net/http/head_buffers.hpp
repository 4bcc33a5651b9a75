// Contiguous room for request heads that arrive in pieces (most heads arrive whole and are
// parsed straight from the receive buffer). A head buffer starts small and moves to the next
// size, twice as large, only when the head outgrows it, up to the largest head the limits
// allow. So thousands of slow clients that have each sent a few hundred bytes hold a small
// buffer each rather than the largest head. Every size has its own pool: once the pools have
// grown to the load, getting, growing and returning a buffer allocate nothing.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/buffer.hpp"

namespace rs::http {

class HeadBuffers {
 public:
  static constexpr std::size_t kFirstBytes = 2048;
  // Each pool grows by about this much at a time (by one buffer, where one is larger).
  static constexpr std::size_t kSlabBytes = 128 << 10;

  // slab_bytes 0: every pool grows by one buffer at a time (one connection's heads).
  explicit HeadBuffers(std::size_t max_bytes, std::size_t slab_bytes = kSlabBytes)
      : max_bytes_(std::max<std::size_t>(max_bytes, 1)) {
    for (std::size_t bytes = kFirstBytes; bytes < max_bytes_; bytes *= 2)
      add_pool(bytes, slab_bytes);
    add_pool(max_bytes_, slab_bytes);
  }
  HeadBuffers(const HeadBuffers&) = delete;
  HeadBuffers& operator=(const HeadBuffers&) = delete;

  // Slabs made, over every size.
  std::uint64_t grows() const {
    std::uint64_t n = 0;
    for (const auto& pool : pools_)
      n += pool->grows();
    return n;
  }
  // The largest head buffer: room for the longest head the parser can accept.
  std::size_t max_bytes() const { return max_bytes_; }

  // An empty buffer of the smallest size that holds `bytes` (at most max_bytes()).
  core::Chunk* get(std::size_t bytes) { return pool_for(bytes).get(); }

  void put(core::Chunk* buffer) { pool_of(buffer).put(buffer); }

  // A buffer with room for `bytes` in all, holding what `buffer` held: `buffer` itself when it
  // is large enough or already the largest, else a larger one (and `buffer` goes back).
  core::Chunk* grow(core::Chunk* buffer, std::size_t bytes) {
    core::ChunkPool& pool = pool_for(bytes);
    if (pool.chunk_bytes() <= buffer->capacity) return buffer;
    core::Chunk* larger = pool.get();
    std::memcpy(larger->data(), buffer->data(), buffer->end);
    larger->end = buffer->end;
    put(buffer);
    return larger;
  }

  // Makes room for one buffer of the smallest size now, so that the first head that arrives in
  // pieces does not reach the heap.
  void reserve_first() { pools_.front()->reserve(1); }

  // Of the free buffers that stayed free since the last call, up to `max` (over every size)
  // give their whole pages back to the kernel (core::ChunkPool::release_idle). Returns how many.
  std::size_t release_idle(std::size_t max) {
    std::size_t n = 0;
    for (const auto& pool : pools_)
      n += pool->release_idle(max - n);
    return n;
  }
  // Free buffers whose memory is still held and could go back (the buffers of 2 and 4 KiB
  // share their pages with their neighbours: they are kept).
  bool holds_free() const {
    return std::any_of(pools_.begin(), pools_.end(), [](const auto& pool) {
      return pool->releases_pages() && pool->holds_free();
    });
  }

  // Buffers handed out now, of every size (for tests and pool accounting).
  std::size_t outstanding() const {
    std::size_t n = 0;
    for (const auto& pool : pools_)
      n += pool->outstanding();
    return n;
  }

 private:
  void add_pool(std::size_t bytes, std::size_t slab_bytes) {
    pools_.push_back(
        std::make_unique<core::ChunkPool>(bytes, std::max<std::size_t>(slab_bytes / bytes, 1)));
  }
  core::ChunkPool& pool_for(std::size_t bytes) {
    for (const auto& pool : pools_) {
      if (pool->chunk_bytes() >= bytes) return *pool;
    }
    return *pools_.back();
  }
  core::ChunkPool& pool_of(const core::Chunk* buffer) {
    for (const auto& pool : pools_) {
      if (pool->chunk_bytes() == buffer->capacity) return *pool;
    }
    assert(false && "a head buffer from another pool");
    return *pools_.back();
  }

  std::size_t max_bytes_;
  std::vector<std::unique_ptr<core::ChunkPool>> pools_;  // smallest first, the last max_bytes_
};

}  // namespace rs::http
