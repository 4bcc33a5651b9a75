#pragma once

// Fixed-type object pool: objects are carved from slabs of `objects_per_slab` slots and recycled
// through an intrusive free list, so after warm-up make() and destroy() never reach the heap.
// A new slab's slots are handed out in order, each first written when it is first used, so a
// slab costs memory (RSS) only for the slots a load has actually needed.
// A slab holds at least `objects_per_slab` objects, and as many more as fit in the power of two
// of bytes it is rounded up to: allocators serve large blocks from size classes, so the room up
// to the class boundary is paid for anyway (64 connections of 392 bytes asked 25,088 bytes and
// were served 28,672: 56 bytes more per connection).
// Not thread-safe: one event loop owns a pool.

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "core/asan.hpp"

namespace rs::core {

template <class T>
class SlabPool {
 public:
  explicit SlabPool(std::size_t objects_per_slab = 64)
      : objects_per_slab_(filling(std::max<std::size_t>(objects_per_slab, 1))) {}

  ~SlabPool() {
    // Outstanding objects are not destroyed: the pool cannot tell live slots from free ones.
    assert(outstanding_ == 0 && "SlabPool destroyed with objects still handed out");
    for (std::byte* slab : slabs_) {
      asan_unpoison(slab, slab_bytes());
      ::operator delete (slab, std::align_val_t{kSlotAlign});
    }
  }

  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  template <class... Args>
  T* make(Args&&... args) {
    FreeSlot* slot = free_;
    if (slot != nullptr) {
      asan_unpoison(slot, kSlotBytes);
      free_ = slot->next;
    } else if (!released_.empty()) {
      // Slots whose pages went back are taken last: writing them faults the pages in again.
      slot = released_.back();
      released_.pop_back();
      asan_unpoison(slot, kSlotBytes);
    } else {
      if (fresh_ == fresh_end_) grow();
      slot = reinterpret_cast<FreeSlot*>(fresh_);
      fresh_ += kSlotBytes;
      asan_unpoison(slot, kSlotBytes);
    }
    SlotReturn on_throw{this, slot};
    T* obj = ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
    on_throw.slot = nullptr;
    ++outstanding_;
    return obj;
  }

  // Like delete, a null pointer is ignored.
  void destroy(T* obj) {
    if (obj == nullptr) {
      return;
    }
    assert(outstanding_ > 0);
    obj->~T();
    push_free(reinterpret_cast<FreeSlot*>(obj));
    --outstanding_;
  }

  // Objects of a page or more have slots of whole pages, page-aligned. For them this is
  // destroy(), and then the slot's pages go back to the kernel (madvise MADV_DONTNEED): the
  // object stops costing memory until its slot is used again (writing it faults the pages in
  // anew). The slot is kept on a list of its own, outside its pages, so all of them go. One
  // system call: not for the request path. Smaller objects share pages: plain destroy().
  void destroy_and_release(T* obj) {
    if (obj == nullptr) return;
    if constexpr (!kPageSlots) {
      destroy(obj);
    } else {
      assert(outstanding_ > 0);
      obj->~T();
      --outstanding_;
      ::madvise(static_cast<void*>(obj), kSlotBytes, MADV_DONTNEED);
      asan_poison(obj, kSlotBytes);
      released_.push_back(reinterpret_cast<FreeSlot*>(obj));  // room reserved in grow()
    }
  }
  // Free slots whose pages went back to the kernel.
  std::size_t released() const { return released_.size(); }
  static constexpr bool releases_pages() { return kPageSlots; }

  void reserve(std::size_t objects) {
    while (capacity() < objects) {
      grow();
    }
  }

  std::size_t outstanding() const { return outstanding_; }
  std::size_t capacity() const { return slabs_.size() * objects_per_slab_; }
  std::uint64_t grows() const { return grows_; }
  std::size_t objects_per_slab() const { return objects_per_slab_; }

 private:
  // A free slot stores the free-list link in the bytes the object will occupy.
  struct FreeSlot {
    FreeSlot* next;
  };

  // Hands the slot back if T's constructor throws; optimised away when it cannot.
  struct SlotReturn {
    SlabPool* pool;
    FreeSlot* slot;
    ~SlotReturn() {
      if (slot != nullptr) {
        pool->push_free(slot);
      }
    }
  };

  // Objects of a page or more get slots of whole pages, page-aligned, so that a free one can
  // give all its memory back (destroy_and_release). Where pages are larger than this (some
  // arm64 kernels), a slot is not page-aligned and madvise refuses: nothing goes back.
  static constexpr std::size_t kPageBytes = 4096;
  static constexpr bool kPageSlots = sizeof(T) >= kPageBytes;
  static constexpr std::size_t kSlotAlign =
      kPageSlots ? kPageBytes : std::max(alignof(T), alignof(FreeSlot));
  static constexpr std::size_t kSlotBytes =
      (std::max(sizeof(T), sizeof(FreeSlot)) + kSlotAlign - 1) / kSlotAlign * kSlotAlign;

  std::size_t slab_bytes() const { return objects_per_slab_ * kSlotBytes; }

  // At least n objects: as many as fit in n's bytes rounded up to a power of two.
  static std::size_t filling(std::size_t n) {
    const std::size_t want = n * kSlotBytes;
    if (want / kSlotBytes != n || want > (std::size_t{1} << 40)) return n;  // absurd: as asked
    std::size_t bytes = 1;
    while (bytes < want)
      bytes <<= 1;
    return bytes / kSlotBytes;
  }

  void push_free(FreeSlot* slot) {
    slot->next = free_;
    free_ = slot;
    asan_poison(slot, kSlotBytes);
  }

  // Cold path: one heap allocation per slab. Its slots are not touched here: make() hands them
  // out in address order. Slots left of an earlier fresh slab (reserve() grows several) go to
  // the free list first.
  void grow() {
    // So the push_back below cannot throw after new; doubling, so that most slabs cost one
    // allocation, not two.
    if (slabs_.size() == slabs_.capacity())
      slabs_.reserve(std::max<std::size_t>(4, 2 * slabs_.size()));
    // Room for every slot to be released, so that releasing one never allocates (doubling too).
    if constexpr (kPageSlots) {
      const std::size_t slots = (slabs_.size() + 1) * objects_per_slab_;
      if (released_.capacity() < slots)
        released_.reserve(std::max(slots, 2 * released_.capacity()));
    }
    auto* slab =
        static_cast<std::byte*>(::operator new (slab_bytes(), std::align_val_t{kSlotAlign}));
    slabs_.push_back(slab);
    ++grows_;
    while (fresh_ != fresh_end_) {
      fresh_end_ -= kSlotBytes;
      asan_unpoison(fresh_end_, kSlotBytes);
      push_free(reinterpret_cast<FreeSlot*>(fresh_end_));
    }
    fresh_ = slab;
    fresh_end_ = slab + slab_bytes();
    asan_poison(slab, slab_bytes());
  }

  std::size_t objects_per_slab_;
  FreeSlot* free_ = nullptr;
  std::byte* fresh_ = nullptr;  // the newest slab's slots never handed out: [fresh_, fresh_end_)
  std::byte* fresh_end_ = nullptr;
  std::vector<std::byte*> slabs_;
  std::vector<FreeSlot*> released_;  // free slots whose pages went back (kPageSlots only)
  std::size_t outstanding_ = 0;
  std::uint64_t grows_ = 0;
};

}  // namespace rs::core
