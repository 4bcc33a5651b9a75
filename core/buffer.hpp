#pragma once

// Byte buffers built from fixed-size chunks: a ChunkPool hands out chunks (header and payload in
// one allocation), a BufferChain strings them into a FIFO of bytes. Output queues, unconsumed
// input and HTTP bodies all use chains, so after warm-up buffering never reaches the heap.
// Not thread-safe: one event loop owns a pool and its chains.

#include <sys/uio.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/asan.hpp"

namespace rs::core {

// A chunk whose slab no registrar took (see SlabRegistrar).
inline constexpr std::uint32_t kNoBufferIndex = UINT32_MAX;

// The payload follows the header in the same allocation. A chunk's readable bytes are
// [begin, end) and its writable bytes are [end, capacity).
struct Chunk {
  Chunk* next = nullptr;
  std::uint32_t begin = 0;  // first unread byte
  std::uint32_t end = 0;    // one past last written byte
  std::uint32_t capacity;   // payload bytes
  // The index under which the pool's registrar took the chunk's slab (the ring's fixed buffer
  // holding it), or kNoBufferIndex. Set by the pool only; it fits in the header's padding.
  std::uint32_t buffer_index = kNoBufferIndex;

  std::byte* data() { return reinterpret_cast<std::byte*>(this + 1); }
  const std::byte* data() const { return reinterpret_cast<const std::byte*>(this + 1); }
  std::size_t readable() const { return end - begin; }
  std::size_t writable() const { return capacity - end; }
  std::span<const std::byte> readable_bytes() const { return {data() + begin, readable()}; }
  std::span<std::byte> writable_bytes() { return {data() + end, writable()}; }
};

// Told of every slab of a pool, so that something outside core can make the slab's memory known
// to the kernel (the ring backend registers each as a fixed buffer:
// net/uring/registered_buffers.hpp). Its answer becomes the buffer index of every chunk of the
// slab. A slab it takes is pinned: its pages are never given back (ChunkPool::release_idle),
// since the kernel would go on using the pages it pinned while the process faulted in new ones.
class SlabRegistrar {
 public:
  // The pool's slab number `slab` (its bytes): the buffer index its chunks carry from now on,
  // or kNoBufferIndex.
  virtual std::uint32_t add_slab(std::size_t slab, std::span<std::byte> bytes) = 0;

 protected:
  ~SlabRegistrar() = default;
};

class ChunkPool {
 public:
  // chunk_bytes is the payload capacity of each chunk.
  explicit ChunkPool(std::size_t chunk_bytes = 16384, std::size_t chunks_per_slab = 64);
  ~ChunkPool();
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  Chunk* get() {
    Chunk* c = free_;
    if (c != nullptr) {
      free_ = c->next;
      if (--free_count_ < free_low_) free_low_ = free_count_;
    } else if (cold_ != nullptr) {
      c = cold_;  // its payload pages come back zeroed as they are written
      cold_ = c->next;
      --cold_count_;
    } else {
      c = take_fresh();
    }
    asan_unpoison(c->data(), c->capacity);
    c->next = nullptr;
    c->begin = 0;
    c->end = 0;
    ++outstanding_;
    return c;
  }

  void put(Chunk* c) {
    assert(outstanding_ > 0);
    asan_poison(c->data(), c->capacity);
    c->next = free_;
    free_ = c;
    ++free_count_;
    --outstanding_;
  }

  void reserve(std::size_t chunks);

  // Announces every slab to registrar: those made so far at once (chunks already made take the
  // answer too), each later one as it is made. Null: none from now on, and every chunk goes back
  // to kNoBufferIndex (the registrar is going away). Cold path.
  void set_registrar(SlabRegistrar* registrar);
  std::size_t slab_bytes() const { return stride_bytes_ * chunks_per_slab_; }

  // Gives memory back after a load has passed: of the chunks that stayed free all the time since
  // the last call (what the load did not need), up to `max` have their payload pages returned to
  // the kernel (madvise MADV_DONTNEED). They stay in the pool, taken after the warm free chunks
  // and refilled with zero pages as they are written. Returns how many were released. Bounded
  // work: one system call per chunk.
  // Chunks smaller than two pages hold no whole page of payload: they give nothing back, and
  // release_idle() leaves them as they are.
  std::size_t release_idle(std::size_t max);
  bool releases_pages() const;
  // Free chunks whose memory is still held: a later release_idle() may find some to give back
  // (none when every slab is pinned by a registrar).
  bool holds_free() const { return free_count_ > 0 && pinned_slabs_ < slabs_.size(); }
  std::size_t free_held() const { return free_count_; }
  std::size_t released() const { return cold_count_; }

  std::size_t chunk_bytes() const { return chunk_bytes_; }
  std::size_t outstanding() const { return outstanding_; }
  std::size_t capacity() const { return slabs_.size() * chunks_per_slab_; }
  std::uint64_t grows() const { return grows_; }

 private:
  void grow();
  // The next never-used chunk of the newest slab (growing one when none is left).
  Chunk* take_fresh();
  Chunk* make_chunk(std::byte* at, std::uint32_t buffer_index);
  // Asks the registrar about slab i; its chunks made so far take the answer.
  void announce(std::size_t i);

  std::size_t chunk_bytes_;
  std::size_t chunks_per_slab_;
  std::size_t stride_bytes_;  // header + payload, rounded to a cache line
  Chunk* free_ = nullptr;     // free, memory held: taken first (the latest freed on top)
  std::size_t free_count_ = 0;
  std::size_t free_low_ = 0;  // the fewest free_ held since the last release_idle()
  Chunk* cold_ = nullptr;     // free, payload pages given back to the kernel
  std::size_t cold_count_ = 0;
  // The newest slab's chunks never handed out, [fresh_, fresh_end_): written only when first
  // used, so a slab costs memory only for the chunks a load has needed.
  std::byte* fresh_ = nullptr;
  std::byte* fresh_end_ = nullptr;
  struct Slab {
    std::byte* bytes;
    std::uint32_t buffer_index;  // that of each of its chunks
  };
  std::vector<Slab> slabs_;
  std::size_t pinned_slabs_ = 0;  // slabs with a buffer index
  SlabRegistrar* registrar_ = nullptr;
  std::size_t outstanding_ = 0;
  std::uint64_t grows_ = 0;
};

// Where a chain's used-up chunks go instead of straight back to their pool, while their memory
// is still read elsewhere (the ring backend's zero-copy sends: net/uring/retired_chunks.hpp).
class ChunkSink {
 public:
  virtual void take(Chunk* chunk) = 0;

 protected:
  ~ChunkSink() = default;
};

// FIFO of bytes in a singly linked list of chunks from one pool (which must outlive the chain).
// A span from prepare() stays valid only until the next call that changes the chain other than
// commit(): prepare/commit is a synchronous pair, not a place to park an in-flight read.
// Once the chain holds no readable bytes after consume() or clear(), it holds no chunks either,
// so an idle connection keeps no buffer memory.
class BufferChain {
 public:
  explicit BufferChain(ChunkPool& pool) : pool_(&pool) {}
  ~BufferChain() { clear(); }
  BufferChain(BufferChain&& other) noexcept;
  BufferChain& operator=(BufferChain&& other) noexcept;
  BufferChain(const BufferChain&) = delete;
  BufferChain& operator=(const BufferChain&) = delete;

  void append(std::span<const std::byte> bytes);
  void append(std::string_view text) { append(std::as_bytes(std::span(text.data(), text.size()))); }

  // Writable space at the tail: at least min_bytes when min_bytes <= chunk_bytes(), otherwise a
  // whole fresh chunk. Never empty.
  std::span<std::byte> prepare(std::size_t min_bytes);
  void commit(std::size_t n);  // n bytes of the last prepare() span were written

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // n <= size(); fully read chunks go back to the pool, or to `used` when given.
  void consume(std::size_t n, ChunkSink* used = nullptr);

  // Fills up to max_iov iovecs over the readable bytes, front first; returns how many.
  std::size_t gather(struct iovec* iov, std::size_t max_iov) const;
  // The buffer index the chunks of the first `pieces` pieces gather() gives all share
  // (kNoBufferIndex when they differ or have none): what a zero-copy send may name.
  std::uint32_t shared_buffer_index(std::size_t pieces) const;

  // Moves all of other's chunks to our tail without copying; both chains share one pool.
  void splice_back(BufferChain& other);
  // Takes ownership of a chunk from our pool (filled elsewhere, e.g. by a file read) and links
  // it at the tail as it is: its readable bytes join the chain without a copy.
  void append_chunk(Chunk* chunk);
  void clear();

  // Copies readable bytes starting offset bytes from the front; returns bytes copied.
  std::size_t copy_out(std::size_t offset, std::span<std::byte> out) const;

  // Walks the chain (for tests and diagnostics: a chain keeps no count, every connection has
  // two chains and an idle one pays for each byte).
  std::size_t chunk_count() const {
    std::size_t n = 0;
    for (const Chunk* c = head_; c != nullptr; c = c->next)
      ++n;
    return n;
  }

  // The first readable run of bytes (empty when the chain is).
  std::span<const std::byte> front_segment() const {
    for (const Chunk* c = head_; c != nullptr; c = c->next) {
      if (c->readable() != 0) {
        return c->readable_bytes();
      }
    }
    return {};
  }

  template <class F>
  void for_each_segment(F&& f) const {
    for (const Chunk* c = head_; c != nullptr; c = c->next) {
      if (c->readable() != 0) {
        f(c->readable_bytes());
      }
    }
  }

  ChunkPool& pool() const { return *pool_; }

 private:
  Chunk* push_chunk();
  void pop_front_chunk(ChunkSink* used = nullptr);

  ChunkPool* pool_;
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace rs::core
