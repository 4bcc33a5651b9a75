#include "core/buffer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

namespace rs::core {

namespace {

// Chunks start on cache lines so a header never shares a line with a neighbour's payload.
constexpr std::size_t kChunkAlign = 64;

std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

ChunkPool::ChunkPool(std::size_t chunk_bytes, std::size_t chunks_per_slab)
    : chunk_bytes_(std::max<std::size_t>(chunk_bytes, 1)),
      chunks_per_slab_(std::max<std::size_t>(chunks_per_slab, 1)),
      stride_bytes_(round_up(sizeof(Chunk) + chunk_bytes_, kChunkAlign)) {
  assert(chunk_bytes_ <= std::numeric_limits<std::uint32_t>::max());
}

ChunkPool::~ChunkPool() {
  assert(outstanding_ == 0 && "ChunkPool destroyed with chunks still handed out");
  for (const Slab& slab : slabs_) {
    asan_unpoison(slab.bytes, slab_bytes());
    ::operator delete (slab.bytes, std::align_val_t{kChunkAlign});
  }
}

bool ChunkPool::releases_pages() const {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return chunk_bytes_ >= 2 * page;
}

std::size_t ChunkPool::release_idle(std::size_t max) {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (!releases_pages()) {
    free_low_ = free_count_;
    return 0;
  }
  // Chunks of a registered slab stay: the kernel holds their pages pinned and would keep using
  // those while a write here faulted in fresh ones. They are passed over without counting
  // against `max`, so that plain chunks behind them still go back.
  Chunk* kept = nullptr;
  Chunk* kept_tail = nullptr;
  std::size_t released = 0;
  for (std::size_t i = 0; i < free_low_ && released < max; ++i) {
    Chunk* c = free_;
    free_ = c->next;
    if (c->buffer_index != kNoBufferIndex) {
      c->next = kept;
      kept = c;
      if (kept_tail == nullptr) kept_tail = c;
      continue;
    }
    // The whole pages of the payload; the header's page is kept (it holds the list link).
    const auto at = reinterpret_cast<std::uintptr_t>(c->data());
    const std::size_t skip = round_up(at, page) - at;
    const std::size_t tail = (at + c->capacity) % page;
    if (skip + tail < c->capacity) {
      ::madvise(c->data() + skip, c->capacity - skip - tail, MADV_DONTNEED);
    }
    c->next = cold_;
    cold_ = c;
    ++released;
  }
  if (kept != nullptr) {
    kept_tail->next = free_;
    free_ = kept;
  }
  free_count_ -= released;
  cold_count_ += released;
  free_low_ = free_count_;  // the next period starts
  return released;
}

void ChunkPool::reserve(std::size_t chunks) {
  while (capacity() < chunks) {
    grow();
  }
}

void ChunkPool::set_registrar(SlabRegistrar* registrar) {
  registrar_ = registrar;
  for (std::size_t i = 0; i < slabs_.size(); ++i)
    announce(i);
}

void ChunkPool::announce(std::size_t i) {
  const std::uint32_t index = registrar_ != nullptr
                                  ? registrar_->add_slab(i, {slabs_[i].bytes, slab_bytes()})
                                  : kNoBufferIndex;
  if (slabs_[i].buffer_index != kNoBufferIndex) --pinned_slabs_;
  if (index != kNoBufferIndex) ++pinned_slabs_;
  slabs_[i].buffer_index = index;
  // Every chunk of an older slab has been made; of the newest, those before fresh_.
  std::byte* const end = i + 1 == slabs_.size() ? fresh_ : slabs_[i].bytes + slab_bytes();
  for (std::byte* at = slabs_[i].bytes; at != end; at += stride_bytes_)
    reinterpret_cast<Chunk*>(at)->buffer_index = index;
}

// Cold path: one heap allocation per slab, not touched here (unless the registrar pins it):
// get() takes its chunks in address order. Chunks left of an earlier fresh slab (reserve() grows
// several) go to the free list.
void ChunkPool::grow() {
  slabs_.reserve(slabs_.size() + 1);  // so the push_back below cannot throw after new
  auto* slab =
      static_cast<std::byte*>(::operator new (slab_bytes(), std::align_val_t{kChunkAlign}));
  while (fresh_ != fresh_end_) {
    fresh_end_ -= stride_bytes_;
    Chunk* c = make_chunk(fresh_end_, slabs_.back().buffer_index);
    c->next = free_;
    free_ = c;
    ++free_count_;
  }
  slabs_.push_back(Slab{slab, kNoBufferIndex});
  ++grows_;
  fresh_ = slab;
  fresh_end_ = slab + slab_bytes();
  asan_poison(slab, slab_bytes());
  if (registrar_ != nullptr) announce(slabs_.size() - 1);
}

Chunk* ChunkPool::take_fresh() {
  if (fresh_ == fresh_end_) grow();
  Chunk* c = make_chunk(fresh_, slabs_.back().buffer_index);
  fresh_ += stride_bytes_;
  return c;
}

// A chunk header at `at`; its payload stays poisoned until get() hands it out.
Chunk* ChunkPool::make_chunk(std::byte* at, std::uint32_t buffer_index) {
  asan_unpoison(at, sizeof(Chunk));
  auto* c = ::new (at) Chunk{};
  c->capacity = static_cast<std::uint32_t>(chunk_bytes_);
  c->buffer_index = buffer_index;
  return c;
}

BufferChain::BufferChain(BufferChain&& other) noexcept
    : pool_(other.pool_),
      head_(std::exchange(other.head_, nullptr)),
      tail_(std::exchange(other.tail_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

BufferChain& BufferChain::operator=(BufferChain&& other) noexcept {
  if (this != &other) {
    clear();
    pool_ = other.pool_;
    head_ = std::exchange(other.head_, nullptr);
    tail_ = std::exchange(other.tail_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Chunk* BufferChain::push_chunk() {
  Chunk* c = pool_->get();
  if (tail_ != nullptr) {
    tail_->next = c;
  } else {
    head_ = c;
  }
  tail_ = c;
  return c;
}

void BufferChain::pop_front_chunk(ChunkSink* used) {
  Chunk* c = head_;
  head_ = c->next;
  if (head_ == nullptr) {
    tail_ = nullptr;
  }
  if (used != nullptr) {
    used->take(c);
  } else {
    pool_->put(c);
  }
}

void BufferChain::append(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    Chunk* c = tail_;
    if (c == nullptr || c->writable() == 0) {
      c = push_chunk();
    }
    const std::size_t n = std::min(bytes.size(), c->writable());
    std::memcpy(c->data() + c->end, bytes.data(), n);
    c->end += static_cast<std::uint32_t>(n);
    size_ += n;
    bytes = bytes.subspan(n);
  }
}

std::span<std::byte> BufferChain::prepare(std::size_t min_bytes) {
  // An empty tail (prepared earlier, never committed) can offer its whole payload again.
  if (tail_ != nullptr && tail_->readable() == 0) {
    tail_->begin = 0;
    tail_->end = 0;
  }
  if (tail_ == nullptr || tail_->writable() < std::max<std::size_t>(min_bytes, 1)) {
    if (tail_ == nullptr || tail_->readable() != 0) {
      push_chunk();
    }
  }
  return tail_->writable_bytes();
}

void BufferChain::commit(std::size_t n) {
  if (n == 0) {
    return;
  }
  assert(tail_ != nullptr && n <= tail_->writable());
  tail_->end += static_cast<std::uint32_t>(n);
  size_ += n;
}

void BufferChain::consume(std::size_t n, ChunkSink* used) {
  assert(n <= size_);
  n = std::min(n, size_);
  size_ -= n;
  while (n > 0) {
    Chunk* c = head_;
    const std::size_t take = std::min(n, c->readable());
    c->begin += static_cast<std::uint32_t>(take);
    n -= take;
    if (c->readable() == 0) {
      pop_front_chunk(used);
    }
  }
  // Also drops an uncommitted tail and any empty chunk left at the front by splice_back.
  while (head_ != nullptr && head_->readable() == 0) {
    pop_front_chunk(used);
  }
}

std::size_t BufferChain::gather(struct iovec* iov, std::size_t max_iov) const {
  std::size_t count = 0;
  for (const Chunk* c = head_; c != nullptr && count < max_iov; c = c->next) {
    if (c->readable() == 0) {
      continue;
    }
    // iovec is not const-correct; the bytes are only read by the send.
    iov[count].iov_base = const_cast<std::byte*>(c->data() + c->begin);
    iov[count].iov_len = c->readable();
    ++count;
  }
  return count;
}

std::uint32_t BufferChain::shared_buffer_index(std::size_t pieces) const {
  std::uint32_t shared = kNoBufferIndex;
  std::size_t seen = 0;
  for (const Chunk* c = head_; c != nullptr && seen < pieces; c = c->next) {
    if (c->readable() == 0) continue;
    if (seen++ == 0) {
      shared = c->buffer_index;
    } else if (c->buffer_index != shared) {
      return kNoBufferIndex;
    }
  }
  return shared;
}

void BufferChain::splice_back(BufferChain& other) {
  assert(other.pool_ == pool_ && "splice_back needs both chains on one pool");
  if (&other == this || other.head_ == nullptr) {
    return;
  }
  // A lone uncommitted chunk would otherwise sit empty in front of other's bytes. An empty
  // tail behind readable chunks stays (a singly linked list cannot unlink it in O(1)); every
  // reader skips empty chunks and consume() drops them.
  if (head_ != nullptr && head_ == tail_ && head_->readable() == 0) {
    pop_front_chunk();
  }
  if (tail_ != nullptr) {
    tail_->next = other.head_;
  } else {
    head_ = other.head_;
  }
  tail_ = other.tail_;
  size_ += other.size_;
  other.head_ = nullptr;
  other.tail_ = nullptr;
  other.size_ = 0;
}

void BufferChain::append_chunk(Chunk* chunk) {
  assert(chunk != nullptr && chunk->next == nullptr);
  // A lone uncommitted chunk would otherwise sit empty in front of the new bytes.
  if (head_ != nullptr && head_ == tail_ && head_->readable() == 0) {
    pop_front_chunk();
  }
  if (tail_ != nullptr) {
    tail_->next = chunk;
  } else {
    head_ = chunk;
  }
  tail_ = chunk;
  size_ += chunk->readable();
}

void BufferChain::clear() {
  while (head_ != nullptr) {
    pop_front_chunk();
  }
  size_ = 0;
}

std::size_t BufferChain::copy_out(std::size_t offset, std::span<std::byte> out) const {
  std::size_t copied = 0;
  for (const Chunk* c = head_; c != nullptr && copied < out.size(); c = c->next) {
    const std::size_t readable = c->readable();
    if (offset >= readable) {
      offset -= readable;
      continue;
    }
    const std::size_t n = std::min(readable - offset, out.size() - copied);
    std::memcpy(out.data() + copied, c->data() + c->begin + offset, n);
    copied += n;
    offset = 0;
  }
  return copied;
}

}  // namespace rs::core
