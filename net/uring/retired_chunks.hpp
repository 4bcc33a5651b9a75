// The ring backend's sink for sent output chunks while zero-copy sends are out.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/buffer.hpp"

namespace rs::net::uring {

// Chunks whose bytes have been consumed but whose memory is still read elsewhere (the kernel
// sending them zero-copy). Each chunk is retired under a tag (the last zero-copy send that may
// read it) and goes back to its pool once every send up to that tag is done with its pages.
// Tags arrive in non-decreasing order; a bounded number of batches keeps it allocation-free
// (when they run out the newest batch takes the later tag, which only frees later).
class RetiredChunks final : public core::ChunkSink {
 public:
  explicit RetiredChunks(core::ChunkPool& pool) : pool_(&pool) {}
  ~RetiredChunks() { release_through(UINT64_MAX); }
  RetiredChunks(const RetiredChunks&) = delete;
  RetiredChunks& operator=(const RetiredChunks&) = delete;

  // Tag for the chunks taken from now on.
  void set_tag(std::uint64_t tag) { tag_ = tag; }
  void take(core::Chunk* c) override {
    c->next = nullptr;
    if (count_ == 0 || (back().tag != tag_ && count_ < kBatches)) push_batch();
    Batch& b = back();
    b.tag = tag_;  // joining the newest batch only ever raises its tag: it frees later
    if (b.tail == nullptr) {
      b.head = c;
    } else {
      b.tail->next = c;
    }
    b.tail = c;
  }
  // Gives back every chunk retired under a tag <= done.
  void release_through(std::uint64_t done) {
    while (count_ > 0 && batches_[front_].tag <= done) {
      Batch& b = batches_[front_];
      while (core::Chunk* c = b.head) {
        b.head = c->next;
        pool_->put(c);
      }
      b = Batch{};
      front_ = (front_ + 1) % kBatches;
      --count_;
    }
  }
  bool empty() const { return count_ == 0; }

 private:
  static constexpr std::size_t kBatches = 16;
  struct Batch {
    core::Chunk* head = nullptr;
    core::Chunk* tail = nullptr;
    std::uint64_t tag = 0;
  };
  Batch& back() { return batches_[(front_ + count_ - 1) % kBatches]; }
  void push_batch() {
    ++count_;
    back() = Batch{};
  }

  core::ChunkPool* pool_;
  Batch batches_[kBatches];
  std::size_t front_ = 0;
  std::size_t count_ = 0;
  std::uint64_t tag_ = 0;
};

}  // namespace rs::net::uring
